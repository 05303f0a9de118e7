package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cpbot/cpbot/internal/fixture"
	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// benchChannel is a fresh channel per iteration, so one job's messages
// never wait on another's pacing.
func benchChannel(i int) string { return fmt.Sprintf("C0BENCH%03d", i) }

// BenchmarkCommandToTrainingStart measures the time from a train command
// to the "training started" reply in the job's thread, less the fake's
// boot delay (cmd→started-s), and to the trainer's start on the instance
// (cmd→trainer-s, the bot's own work without Slack's pacing of the six
// replies before it).
func BenchmarkCommandToTrainingStart(b *testing.B) {
	w := newWorld(b, options{BootDelay: time.Second})
	var toReply, toTrainer time.Duration
	for i := 0; i < b.N; i++ {
		ch := benchChannel(i)
		start := time.Now()
		w.Slash(userA, ch, "train obj1 1")
		w.ThreadHas(ch, i+1, "training started", jobWait)
		card := w.Card(ch, i+1)
		for _, c := range w.Slack.Calls() {
			if c.Method == "chat.postMessage" && c.ThreadTS == card.TS && strings.Contains(c.Text, "training started") {
				toReply += c.At.Sub(start) - w.BootDelay
			}
		}
		in := w.instanceNamed(fmt.Sprintf("cpbot-%d-", i+1))
		pid, ok := w.jobFileTime(in, "train.pid")
		if !ok {
			b.Fatalf("#%d: no train.pid on its instance", i+1)
		}
		toTrainer += pid.Sub(start) - w.BootDelay
		w.Outcome(ch, i+1)
	}
	b.ReportMetric(toReply.Seconds()/float64(b.N), "cmd→started-s")
	b.ReportMetric(toTrainer.Seconds()/float64(b.N), "cmd→trainer-s")
}

// BenchmarkExitToTerminate measures the time from the trainer's exit (the
// mtime of train.exit on the instance) to the bot's terminate request.
func BenchmarkExitToTerminate(b *testing.B) {
	w := newWorld(b, options{})
	var total time.Duration
	for i := 0; i < b.N; i++ {
		ch := benchChannel(i)
		w.Slash(userA, ch, "train obj1 2")
		if got, summary := w.Outcome(ch, i+1); got != "succeeded" {
			b.Fatalf("#%d %s: %s", i+1, got, summary)
		}
		in := w.instanceNamed(fmt.Sprintf("cpbot-%d-", i+1))
		exit, ok := w.jobFileTime(in, "train.exit")
		if !ok {
			b.Fatalf("#%d: no train.exit on its instance", i+1)
		}
		term, ok := w.terminateTimes()[in.ID]
		if !ok {
			b.Fatalf("#%d: its instance was never terminated", i+1)
		}
		total += term.Sub(exit)
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "exit→terminate-s")
}

// BenchmarkSlackCallsPerEpoch counts the Slack Web API calls of a 10-epoch
// job at one second per epoch, from the command to its final card, per
// epoch.
func BenchmarkSlackCallsPerEpoch(b *testing.B) {
	const epochs = 10
	calls := 0
	for i := 0; i < b.N; i++ {
		w := newWorld(b, options{Trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 500 * time.Millisecond}})
		w.Slash(userA, chanA, "train obj1 "+strconv.Itoa(epochs))
		w.Outcome(chanA, 1)
		waitFor(b, time.Minute, "the chart and the final card", func() bool {
			card, _ := w.findCard(chanA, 1)
			return len(w.Slack.Uploads()) == 1 && strings.Contains(card.Text, "succeeded")
		})
		for _, c := range w.Slack.Calls() {
			if c.Method != "apps.connections.open" {
				calls++
			}
		}
		w.Stop()
	}
	b.ReportMetric(float64(calls)/float64(b.N*epochs), "calls/epoch")
}

// BenchmarkPeakRSS100Jobs runs 100 one-epoch jobs (two per channel, 100
// simulated instances) and reports the bot process's peak resident set.
func BenchmarkPeakRSS100Jobs(b *testing.B) {
	const channels = 50
	classes := fixture.Classes()
	var peak float64
	for i := 0; i < b.N; i++ {
		w := newWorld(b, options{Overload: true})
		for c := 0; c < channels; c++ {
			pair := classes[(2*c)%len(classes)] + "," + classes[(2*c+1)%len(classes)]
			w.Slash(userA, benchChannel(c), "train "+pair+" 1")
		}
		waitFor(b, 5*time.Minute, "100 summaries", func() bool {
			n := 0
			for c := 0; c < channels; c++ {
				for _, m := range w.Slack.Messages(benchChannel(c)) {
					if m.ThreadTS != "" && summaryRE.MatchString(m.Text) {
						n++
					}
				}
			}
			return n == 2*channels
		})
		w.AssertAllTerminated(2 * channels)
		kb, err := vmHWM(w.PID())
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, float64(kb)/1024)
		w.Stop()
	}
	b.ReportMetric(peak, "peak-RSS-MB")
}

// vmHWM reads a process's peak resident set size in kB.
func vmHWM(pid int) (int, error) {
	body, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read the bot's status: %w", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// instanceNamed returns the instance whose name starts with prefix.
func (w *world) instanceNamed(prefix string) lambda.Instance {
	w.t.Helper()
	for _, in := range w.Cloud.Instances() {
		if strings.HasPrefix(in.Name, prefix) {
			return in
		}
	}
	w.t.Fatalf("no instance named %s…", prefix)
	return lambda.Instance{}
}

// jobFileTime returns the modification time of a file the trainer left in
// the job dir of an instance.
func (w *world) jobFileTime(in lambda.Instance, name string) (time.Time, bool) {
	matches, _ := filepath.Glob(filepath.Join(w.SimRoot, in.IP, "home", "*", "*", name))
	if len(matches) == 0 {
		return time.Time{}, false
	}
	fi, err := os.Stat(matches[0])
	if err != nil {
		return time.Time{}, false
	}
	return fi.ModTime(), true
}
