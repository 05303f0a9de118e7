package lambda

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Files a detached training run keeps in its job dir.
const (
	TrainLogFile  = "train.log"
	TrainPIDFile  = "train.pid"
	TrainExitFile = "train.exit"
)

// DefaultTailMax is the most bytes Tail reads per call when max <= 0.
const DefaultTailMax = 1 << 20

// ErrAlreadyRunning is returned by StartDetached when the job dir's trainer
// is still alive.
var ErrAlreadyRunning = errors.New("trainer already running")

// TrainStatus is what the job dir says about a detached run. Started with
// neither Running nor Exited means the trainer died without writing its exit
// code (killed, or the instance rebooted).
type TrainStatus struct {
	Started  bool // train.pid exists
	Running  bool // its process is alive and has not written train.exit
	Exited   bool // train.exit exists
	ExitCode int  // from train.exit, when Exited
	PID      int
}

// aliveFunc defines the shell function alive PID: the process exists and is
// not a zombie (a detached trainer's parent is whatever adopted it, which in
// a container may never reap it).
const aliveFunc = `alive() {
  kill -0 "$1" 2>/dev/null || return 1
  s=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null)
  [ "$s" != Z ]
}`

// StartDetached starts command (a shell command line, already rendered and
// quoted by the caller) in workDir, detached from the SSH connection with
// setsid and nohup, so it outlives it. Output is appended to
// <jobDir>/train.log; the process id goes to <jobDir>/train.pid and, when the
// command ends, its exit status to <jobDir>/train.exit (written atomically).
// The log is appended to, not truncated, so tail offsets stay valid across a
// restart. If the job dir's previous trainer is alive (its process lives and
// train.exit is absent) it returns ErrAlreadyRunning, with that pid, and
// starts nothing. A stale train.exit is removed before the start. Both dirs are relative to the home
// directory unless absolute.
func (r *Remote) StartDetached(ctx context.Context, jobDir, workDir, command string) (pid int, err error) {
	inner := "(\n" + command + "\n)\n" +
		`echo $? > "$CPBOT_JOB_DIR/train.exit.tmp" && mv -f "$CPBOT_JOB_DIR/train.exit.tmp" "$CPBOT_JOB_DIR/train.exit"`
	script := `j=` + ShellQuote(jobDir) + `; w=` + ShellQuote(workDir) + `
mkdir -p -- "$j" && j=$(cd -- "$j" && pwd -P) || exit 1
` + aliveFunc + `
if [ -f "$j/train.pid" ] && [ ! -f "$j/train.exit" ]; then
  p=$(cat "$j/train.pid")
  if [ -n "$p" ] && alive "$p"; then echo "cpbot-running:$p"; exit 0; fi
fi
cd -- "$w" || exit 1
rm -f -- "$j/train.exit"
CPBOT_JOB_DIR="$j" setsid nohup sh -c ` + ShellQuote(inner) + ` >> "$j/train.log" 2>&1 < /dev/null &
p=$!
echo "$p" > "$j/train.pid.tmp" && mv -f "$j/train.pid.tmp" "$j/train.pid" || exit 1
echo "cpbot-started:$p"
`
	res, err := r.Exec(ctx, script)
	if err != nil {
		return 0, fmt.Errorf("start trainer in %s: %w", jobDir, err)
	}
	if res.ExitStatus != 0 {
		return 0, fmt.Errorf("start trainer in %s: exit %d: %s", jobDir, res.ExitStatus, firstLine(res.Stderr))
	}
	out := strings.TrimSpace(string(res.Stdout))
	if s, ok := strings.CutPrefix(out, "cpbot-running:"); ok {
		return atoiOr0(s), fmt.Errorf("start trainer in %s: pid %s: %w", jobDir, s, ErrAlreadyRunning)
	}
	s, ok := strings.CutPrefix(out, "cpbot-started:")
	if !ok {
		return 0, fmt.Errorf("start trainer in %s: unexpected output %q", jobDir, firstLine(res.Stdout))
	}
	pid, err = strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("start trainer in %s: bad pid %q", jobDir, s)
	}
	return pid, nil
}

// TrainStatus reads train.pid, checks the process with kill -0 and reads
// train.exit, in one round trip.
func (r *Remote) TrainStatus(ctx context.Context, jobDir string) (TrainStatus, error) {
	script := `j=` + ShellQuote(jobDir) + `
` + aliveFunc + `
p=; [ -f "$j/train.pid" ] && p=$(cat "$j/train.pid")
echo "pid=$p"
if [ -n "$p" ] && alive "$p"; then echo alive=1; else echo alive=0; fi
if [ -f "$j/train.exit" ]; then echo "exit=$(cat "$j/train.exit")"; fi
exit 0
`
	res, err := r.Exec(ctx, script)
	if err != nil {
		return TrainStatus{}, fmt.Errorf("train status of %s: %w", jobDir, err)
	}
	if res.ExitStatus != 0 {
		return TrainStatus{}, fmt.Errorf("train status of %s: exit %d: %s", jobDir, res.ExitStatus, firstLine(res.Stderr))
	}
	var st TrainStatus
	var alive bool
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		k, v, _ := strings.Cut(line, "=")
		v = strings.TrimSpace(v)
		switch k {
		case "pid":
			if v != "" {
				st.Started = true
				st.PID = atoiOr0(v)
			}
		case "alive":
			alive = v == "1"
		case "exit":
			st.Exited = true
			code, err := strconv.Atoi(v)
			if err != nil {
				return TrainStatus{}, fmt.Errorf("train status of %s: bad exit code %q", jobDir, v)
			}
			st.ExitCode = code
		}
	}
	st.Running = alive && !st.Exited
	return st, nil
}

// Tail reads the file at path from byte offset and returns the complete
// lines after it (without their newline) and the offset just past the last
// one; a partial last line is left for the next call. At most max bytes are
// read (DefaultTailMax when max <= 0); a line longer than max is returned in
// pieces of max bytes. A missing file yields no lines and the same offset;
// a file shorter than offset was replaced, and reading restarts at 0.
func (r *Remote) Tail(ctx context.Context, path string, offset, max int64) (lines []string, next int64, err error) {
	if max <= 0 {
		max = DefaultTailMax
	}
	if offset < 0 {
		offset = 0
	}
	script := `f=` + ShellQuote(path) + `; o=` + strconv.FormatInt(offset, 10) + `
[ -f "$f" ] || { echo missing; exit 0; }
n=$(wc -c < "$f") || exit 1
[ "$n" -lt "$o" ] && o=0
echo "$o"
tail -c +$((o + 1)) -- "$f" | head -c ` + strconv.FormatInt(max, 10) + `
`
	res, err := r.Exec(ctx, script)
	if err != nil {
		return nil, offset, fmt.Errorf("tail %s: %w", path, err)
	}
	if res.ExitStatus != 0 {
		return nil, offset, fmt.Errorf("tail %s: exit %d: %s", path, res.ExitStatus, firstLine(res.Stderr))
	}
	head, data, ok := bytes.Cut(res.Stdout, []byte("\n"))
	if !ok {
		return nil, offset, fmt.Errorf("tail %s: unexpected output %q", path, firstLine(res.Stdout))
	}
	if string(head) == "missing" {
		return nil, offset, nil
	}
	start, err := strconv.ParseInt(string(head), 10, 64)
	if err != nil {
		return nil, offset, fmt.Errorf("tail %s: bad offset %q", path, head)
	}
	lines, used := splitLines(data, max)
	return lines, start + used, nil
}

// splitLines returns the complete lines of data and the bytes they span. A
// chunk of max bytes without a newline counts as one line, so a reader
// always makes progress.
func splitLines(data []byte, max int64) ([]string, int64) {
	end := bytes.LastIndexByte(data, '\n')
	if end < 0 {
		if int64(len(data)) >= max && len(data) > 0 {
			return []string{string(data)}, int64(len(data))
		}
		return nil, 0
	}
	parts := bytes.Split(data[:end], []byte("\n"))
	lines := make([]string, len(parts))
	for i, p := range parts {
		lines[i] = string(bytes.TrimSuffix(p, []byte("\r")))
	}
	return lines, int64(end + 1)
}

// RunOnce runs script with sh -c unless the marker file exists, and creates
// the marker only when the script exits 0. ran is false when the marker was
// already there. A non-zero exit is in res, not an error.
func (r *Remote) RunOnce(ctx context.Context, marker, script string) (ran bool, res ExecResult, err error) {
	q := ShellQuote(marker)
	check, err := r.Exec(ctx, "test -e "+q)
	if err != nil {
		return false, ExecResult{}, fmt.Errorf("run once %s: %w", marker, err)
	}
	if check.ExitStatus == 0 {
		return false, ExecResult{}, nil
	}
	res, err = r.Exec(ctx, "sh -c "+ShellQuote(script))
	if err != nil {
		return true, res, fmt.Errorf("run once %s: %w", marker, err)
	}
	if res.ExitStatus != 0 {
		return true, res, nil
	}
	mark, err := r.Exec(ctx, `mkdir -p -- "$(dirname -- `+q+`)" && touch -- `+q)
	if err != nil {
		return true, res, fmt.Errorf("run once %s: mark: %w", marker, err)
	}
	if mark.ExitStatus != 0 {
		return true, res, fmt.Errorf("run once %s: mark: exit %d: %s", marker, mark.ExitStatus, firstLine(mark.Stderr))
	}
	return true, res, nil
}

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(line) > 200 {
		line = line[:200] + "…"
	}
	return line
}

func atoiOr0(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}
