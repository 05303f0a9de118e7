package lambda_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cpbot/cpbot/lambda"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartDetachedSurvivesAndTails(t *testing.T) {
	e := newRemoteEnv(t)
	ctx := testCtx(t)
	jobDir := e.dir + "/job 1" // a space, to prove quoting
	workDir := e.dir + "/code"
	if err := os.MkdirAll(filepath.Join(e.localDir, "code"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The trainer waits for go1 and go2 (created by the test) in its work
	// dir, leaves a partial line in between, and exits 7.
	command := `for i in 0 1 2 3 4; do echo "epoch $i"; done
while [ ! -f go1 ]; do sleep 0.02; done
for i in 5 6 7; do echo "epoch $i"; done
printf 'half'
while [ ! -f go2 ]; do sleep 0.02; done
echo ' line'
echo "it's done" >&2
exit 7`

	st, err := e.remote.TrainStatus(ctx, jobDir)
	if err != nil || st.Started {
		t.Fatalf("status before start: %+v, %v", st, err)
	}
	pid, err := e.remote.StartDetached(ctx, jobDir, workDir, command)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	if pid <= 0 {
		t.Fatalf("pid %d", pid)
	}
	if _, err := e.remote.StartDetached(ctx, jobDir, workDir, command); !errors.Is(err, lambda.ErrAlreadyRunning) {
		t.Fatalf("second start: %v, want ErrAlreadyRunning", err)
	}

	// Close the connection: the trainer must live on.
	if err := e.remote.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("trainer died with the connection: %v", err)
	}
	r := e.dial(t, "i-test")
	st, err = r.TrainStatus(ctx, jobDir)
	if err != nil {
		t.Fatal(err)
	}
	if want := (lambda.TrainStatus{Started: true, Running: true, PID: pid}); st != want {
		t.Fatalf("status while running: %+v, want %+v", st, want)
	}

	var got []string
	var off int64
	tail := func(max int64) {
		t.Helper()
		lines, next, err := r.Tail(ctx, jobDir+"/train.log", off, max)
		if err != nil {
			t.Fatalf("tail: %v", err)
		}
		got = append(got, lines...)
		off = next
	}
	eventually(t, "5 lines", func() bool { tail(0); return len(got) >= 5 })
	touch(t, filepath.Join(e.localDir, "code", "go1"))
	// Small reads force many resumptions from the stored offset.
	eventually(t, "8 lines", func() bool { tail(9); return len(got) >= 8 })
	for range 3 {
		tail(0) // "half" has no newline yet: nothing new, offset kept
	}
	if len(got) != 8 {
		t.Fatalf("partial line returned early: %q", got)
	}
	touch(t, filepath.Join(e.localDir, "code", "go2"))
	eventually(t, "exit", func() bool {
		st, err = r.TrainStatus(ctx, jobDir)
		return err == nil && st.Exited
	})
	tail(0)
	want := []string{"epoch 0", "epoch 1", "epoch 2", "epoch 3", "epoch 4",
		"epoch 5", "epoch 6", "epoch 7", "half line", "it's done"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tailed lines:\n got %q\nwant %q", got, want)
	}
	if want := (lambda.TrainStatus{Started: true, Exited: true, ExitCode: 7, PID: pid}); st != want {
		t.Errorf("status after exit: %+v, want %+v", st, want)
	}
	exit, err := os.ReadFile(filepath.Join(e.localDir, "job 1", "train.exit"))
	if err != nil || string(exit) != "7\n" {
		t.Errorf("train.exit = %q, %v", exit, err)
	}

	// A finished job can be started again; the log is appended to, so the
	// offset stays valid.
	pid2, err := r.StartDetached(ctx, jobDir, workDir, "echo again")
	if err != nil || pid2 == pid {
		t.Fatalf("restart: pid %d, %v", pid2, err)
	}
	eventually(t, "second run", func() bool {
		st, err = r.TrainStatus(ctx, jobDir)
		return err == nil && st.Exited && st.PID == pid2
	})
	lines, _, err := r.Tail(ctx, jobDir+"/train.log", off, 0)
	if err != nil || !reflect.DeepEqual(lines, []string{"again"}) {
		t.Errorf("tail after restart: %q, %v", lines, err)
	}
}

func touch(t testing.TB, name string) {
	t.Helper()
	if err := os.WriteFile(name, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTail(t *testing.T) {
	e := newRemoteEnv(t)
	ctx := testCtx(t)
	if err := os.MkdirAll(e.localDir, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content *string // nil: file missing
		offset  int64
		max     int64
		lines   []string
		next    int64
	}{
		{"missing file", nil, 5, 0, nil, 5},
		{"complete lines only", ptr("a\nb\nc"), 0, 0, []string{"a", "b"}, 4},
		{"partial line waits", ptr("a\nb\nc"), 4, 0, nil, 4},
		{"resume mid file", ptr("a\nb\nc\n"), 2, 0, []string{"b", "c"}, 6},
		{"at end", ptr("a\n"), 2, 0, nil, 2},
		{"crlf", ptr("a\r\nb\r\n"), 0, 0, []string{"a", "b"}, 6},
		{"empty lines", ptr("\n\n"), 0, 0, []string{"", ""}, 2},
		{"max cuts at last newline", ptr("aaaa\nbbbb\n"), 0, 7, []string{"aaaa"}, 5},
		{"line longer than max", ptr("xxxxxxxxxx\n"), 0, 4, []string{"xxxx"}, 4},
		{"replaced file restarts at 0", ptr("new\n"), 100, 0, []string{"new"}, 4},
		{"utf-8", ptr("lösš:0.5 ✓\n"), 0, 0, []string{"lösš:0.5 ✓"}, int64(len("lösš:0.5 ✓\n"))},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("log%d", i)
			if tt.content != nil {
				if err := os.WriteFile(filepath.Join(e.localDir, name), []byte(*tt.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			lines, next, err := e.remote.Tail(ctx, e.dir+"/"+name, tt.offset, tt.max)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(lines, tt.lines) || next != tt.next {
				t.Errorf("got %q, %d; want %q, %d", lines, next, tt.lines, tt.next)
			}
		})
	}
}

func ptr(s string) *string { return &s }

func TestRunOnce(t *testing.T) {
	e := newRemoteEnv(t)
	ctx := testCtx(t)
	marker := e.dir + "/state/setup.done"
	count := e.dir + "/count"
	script := `mkdir -p ` + lambda.ShellQuote(e.dir) + `
echo "it's \"run\" $((1+1))" >> ` + lambda.ShellQuote(count) + `
echo ok`

	ran, res, err := e.remote.RunOnce(ctx, marker, script)
	if err != nil || !ran || res.ExitStatus != 0 || string(res.Stdout) != "ok\n" {
		t.Fatalf("first run: ran=%v res=%+v err=%v", ran, res, err)
	}
	ran, _, err = e.remote.RunOnce(ctx, marker, script)
	if err != nil || ran {
		t.Fatalf("second run: ran=%v err=%v, want skipped", ran, err)
	}
	data, err := os.ReadFile(filepath.Join(e.sshd.home, count))
	if err != nil || string(data) != "it's \"run\" 2\n" {
		t.Errorf("count file %q, %v; want the script run exactly once", data, err)
	}

	failMarker := e.dir + "/fail.done"
	for range 2 {
		ran, res, err = e.remote.RunOnce(ctx, failMarker, "echo nope >&2; exit 2")
		if err != nil || !ran || res.ExitStatus != 2 || !strings.Contains(string(res.Stderr), "nope") {
			t.Fatalf("failing script: ran=%v res=%+v err=%v", ran, res, err)
		}
	}
	if _, err := os.Stat(filepath.Join(e.sshd.home, failMarker)); !os.IsNotExist(err) {
		t.Errorf("marker created after a failed script: %v", err)
	}
}

// BenchmarkTailLargeLog tails the last 4 KiB of a 16 MiB log: the cost
// must not grow with the bytes before the offset.
func BenchmarkTailLargeLog(b *testing.B) {
	e := newRemoteEnv(b)
	ctx := testCtx(b)
	if err := os.MkdirAll(e.localDir, 0o755); err != nil {
		b.Fatal(err)
	}
	line := "loss:0.512825  heatmap_loss:0.451616  contour_loss:0.061210\n"
	big := strings.Repeat(line, (16<<20)/len(line))
	if err := os.WriteFile(filepath.Join(e.localDir, "train.log"), []byte(big), 0o644); err != nil {
		b.Fatal(err)
	}
	off := int64(len(big) - 64*len(line))
	b.ResetTimer()
	for b.Loop() {
		lines, _, err := e.remote.Tail(ctx, e.dir+"/train.log", off, 0)
		if err != nil || len(lines) != 64 {
			b.Fatalf("tail: %d lines, %v", len(lines), err)
		}
	}
}
