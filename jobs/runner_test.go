package jobs_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

func TestRunnerHappyPath(t *testing.T) {
	w := newWorld(t, worldOpts{})
	j := w.submit(jobs.SubmitRequest{Epochs: 3, DedupeKey: "trigger-1"})
	j = w.waitState(j.ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeSucceeded {
		t.Fatalf("outcome %s (%s), want succeeded", j.Outcome, j.Reason)
	}
	if got := w.notes.epochsOf(j.ID); !slices.Equal(got, []int{1, 2, 3}) {
		t.Errorf("epochs notified %v, want [1 2 3]", got)
	}
	if j.Progress.Epoch != 3 || j.Progress.Epochs != 3 || len(j.Progress.LossHistory) != 3 {
		t.Errorf("progress %+v, want 3 epochs with losses", j.Progress)
	}
	if _, err := os.Stat(filepath.Join(w.dataDir, "artifacts", "1", "model", "obj1", "3.pkl")); err != nil {
		t.Errorf("final checkpoint not downloaded: %v", err)
	}
	waitFor(t, 5*time.Second, "the summary", func() bool { _, ok := w.notes.summary(j.ID); return ok })
	s, _ := w.notes.summary(j.ID)
	if s.Outcome != jobs.OutcomeSucceeded || len(s.Checkpoints) == 0 || s.Cost <= 0 {
		t.Errorf("summary %+v", s)
	}
	if n := w.cloud.Launches(); n != 1 {
		t.Errorf("%d launches, want 1", n)
	}
	w.assertNothingBilling()
	total, byUser, err := w.db.Spend(context.Background(), time.Now().UTC().Format("2006-01"))
	if err != nil || total != j.Cost(time.Now()) || byUser["U1"] != total {
		t.Errorf("ledger total %v by user %v (err %v), want the job's cost %v", total, byUser, err, j.Cost(time.Now()))
	}

	// The same trigger again creates nothing.
	again, err := w.svc.Submit(context.Background(), jobs.SubmitRequest{DedupeKey: "trigger-1", Classes: []string{"obj1"}, Epochs: 3, Batch: 8, LR: 0.001})
	if err != nil || len(again) != 1 || again[0].ID != j.ID {
		t.Errorf("resubmit: %v %v, want the same job", again, err)
	}
}

func TestSubmitRefusesBadInput(t *testing.T) {
	w := newWorld(t, worldOpts{})
	for _, tc := range []struct {
		name string
		req  jobs.SubmitRequest
		want string
	}{
		{"unknown class", jobs.SubmitRequest{Classes: []string{"obj99"}, Epochs: 3, Batch: 8, LR: 0.001}, "unknown class"},
		{"epochs", jobs.SubmitRequest{Classes: []string{"obj1"}, Epochs: 5000, Batch: 8, LR: 0.001}, "epochs"},
		{"batch", jobs.SubmitRequest{Classes: []string{"obj1"}, Epochs: 3, Batch: 0, LR: 0.001}, "batch"},
		{"lr", jobs.SubmitRequest{Classes: []string{"obj1"}, Epochs: 3, Batch: 8, LR: 2}, "lr"},
		{"gpu", jobs.SubmitRequest{Classes: []string{"obj1"}, Epochs: 3, Batch: 8, LR: 0.001, GPU: "gpu_9x_nope"}, "unknown GPU type"},
		{"metacharacters", jobs.SubmitRequest{Classes: []string{"obj1;rm"}, Epochs: 3, Batch: 8, LR: 0.001}, "unknown class"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.svc.Submit(context.Background(), tc.req)
			if jobs.ErrorCode(err) != jobs.EINVALID || !strings.Contains(jobs.ErrorMessage(err), tc.want) {
				t.Fatalf("err %v (code %s), want EINVALID mentioning %q", err, jobs.ErrorCode(err), tc.want)
			}
		})
	}
	if n := w.cloud.Launches(); n != 0 {
		t.Errorf("%d launches after bad input, want 0", n)
	}
}

func TestRunnerCapacityFallback(t *testing.T) {
	w := newWorld(t, worldOpts{cloud: func(s *lambdatest.Server) {
		for _, r := range lambdatest.DefaultRegions() {
			s.SetCapacity("gpu_1x_a100_sxm4", r.Name, false)
		}
	}})
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 1}).ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeSucceeded || j.InstanceType == "gpu_1x_a100_sxm4" {
		t.Fatalf("outcome %s on %s, want succeeded on a fallback type", j.Outcome, j.InstanceType)
	}
	w.assertNothingBilling()
}

func TestRunnerNoCapacityAnywhere(t *testing.T) {
	w := newWorld(t, worldOpts{cfg: func(c *jobs.Config) { c.InstanceTypes = []string{"gpu_1x_a10"} }})
	for _, r := range lambdatest.DefaultRegions() {
		w.cloud.SetCapacity("gpu_1x_a10", r.Name, false)
	}
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 1}).ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeFailed || !strings.Contains(j.Reason, "capacity") {
		t.Fatalf("outcome %s (%s), want failed for capacity", j.Outcome, j.Reason)
	}
	if len(w.cloud.Instances()) != 0 {
		t.Errorf("instances exist after a capacity failure: %v", w.cloud.Instances())
	}
}

func TestRunnerBootTimeout(t *testing.T) {
	w := newWorld(t, worldOpts{bootDelay: time.Hour, cfg: func(c *jobs.Config) {
		c.BootTimeout = 200 * time.Millisecond
		c.MaxAttempts = 2
	}})
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 1}).ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeFailed || j.Attempt != 2 {
		t.Fatalf("outcome %s after %d attempts (%s), want failed after 2", j.Outcome, j.Attempt, j.Reason)
	}
	if n := w.cloud.Launches(); n != 2 {
		t.Errorf("%d launches, want 2", n)
	}
	w.assertNothingBilling()
}

func TestRunnerTrainerCrash(t *testing.T) {
	w := newWorld(t, worldOpts{trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, Mode: lambdatest.ModeOOM}})
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 5}).ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeFailed || !strings.Contains(j.Reason, "out of memory") {
		t.Fatalf("outcome %s (%s), want failed with CUDA out of memory", j.Outcome, j.Reason)
	}
	waitFor(t, 5*time.Second, "the summary", func() bool { _, ok := w.notes.summary(j.ID); return ok })
	s, _ := w.notes.summary(j.ID)
	if len(s.LogTail) == 0 {
		t.Error("failure summary has no log tail")
	}
	w.assertNothingBilling()
}

func TestRunnerCancelInEveryState(t *testing.T) {
	for _, st := range []jobs.State{jobs.StateLaunching, jobs.StateBooting, jobs.StatePreparing, jobs.StateTraining} {
		t.Run(string(st), func(t *testing.T) {
			o := worldOpts{trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 200 * time.Millisecond}}
			switch st {
			case jobs.StateLaunching:
				// Every launch answers 503: the runner stays in launching.
				o.cloud = func(s *lambdatest.Server) { s.FailNext(lambdatest.OpLaunch, 429, 1000) }
			case jobs.StateBooting:
				o.bootDelay = time.Hour
			case jobs.StatePreparing:
				o.cfg = func(c *jobs.Config) { c.SSH.Port = 1 } // nothing answers: stuck dialing
			}
			w := newWorld(t, o)
			j := w.submit(jobs.SubmitRequest{Epochs: 50})
			w.waitState(j.ID, st)
			if _, err := w.svc.Cancel(context.Background(), j.ID, "U2", false); jobs.ErrorCode(err) != jobs.EFORBIDDEN {
				t.Errorf("a stranger's cancel: %v, want EFORBIDDEN", err)
			}
			if _, err := w.svc.Cancel(context.Background(), j.ID, "U1", false); err != nil {
				t.Fatal(err)
			}
			j = w.waitState(j.ID, jobs.StateFinished)
			if j.Outcome != jobs.OutcomeCancelled {
				t.Fatalf("outcome %s (%s), want cancelled", j.Outcome, j.Reason)
			}
			w.assertNothingBilling()
		})
	}
}

func TestRunnerSurvivesRestartMidTraining(t *testing.T) {
	w := newWorld(t, worldOpts{trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 60 * time.Millisecond}})
	j := w.submit(jobs.SubmitRequest{Epochs: 6})
	waitFor(t, 30*time.Second, "two epochs", func() bool { return len(w.notes.epochsOf(j.ID)) >= 2 })
	w.svc.Close() // the bot stops; the trainer goes on
	time.Sleep(200 * time.Millisecond)
	w.start()
	j = w.waitState(j.ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeSucceeded {
		t.Fatalf("outcome %s (%s), want succeeded", j.Outcome, j.Reason)
	}
	if got := w.notes.epochsOf(j.ID); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6}) {
		t.Errorf("epochs notified %v, want each of 1..6 once", got)
	}
	if n := w.cloud.Launches(); n != 1 {
		t.Errorf("%d launches, want 1", n)
	}
	w.assertNothingBilling()
}

// TestRunnerRedeliversAfterCrash loses the thread messages of two epochs, as
// a bot killed with them queued does; the next start delivers them, once.
func TestRunnerRedeliversAfterCrash(t *testing.T) {
	w := newWorld(t, worldOpts{trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 60 * time.Millisecond}})
	j := w.submit(jobs.SubmitRequest{Epochs: 6})
	waitFor(t, 30*time.Second, "the first epoch", func() bool { return len(w.notes.epochsOf(j.ID)) >= 1 })
	w.notes.setLose(true)
	waitFor(t, 30*time.Second, "two more epochs read", func() bool {
		cur, err := w.db.Job(context.Background(), j.ID)
		return err == nil && cur.NotifiedEpoch >= 3
	})
	w.svc.Close()
	w.notes.setLose(false)
	w.start()
	j = w.waitState(j.ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeSucceeded {
		t.Fatalf("outcome %s (%s)", j.Outcome, j.Reason)
	}
	waitFor(t, 5*time.Second, "the summary", func() bool { _, ok := w.notes.summary(j.ID); return ok })
	if got := w.notes.epochsOf(j.ID); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6}) {
		t.Errorf("epochs delivered %v, want each of 1..6 once, in order", got)
	}
}

func TestRunnerTerminateRetried(t *testing.T) {
	w := newWorld(t, worldOpts{cloud: func(s *lambdatest.Server) { s.FailTerminate(3) }})
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 1}).ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeSucceeded {
		t.Fatalf("outcome %s (%s)", j.Outcome, j.Reason)
	}
	w.assertNothingBilling()
}

func TestRunnerInstanceLost(t *testing.T) {
	w := newWorld(t, worldOpts{trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 100 * time.Millisecond}})
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 50}).ID, jobs.StateTraining)
	if err := w.cloud.Preempt(j.InstanceID); err != nil {
		t.Fatal(err)
	}
	j = w.waitState(j.ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeLost {
		t.Fatalf("outcome %s (%s), want lost", j.Outcome, j.Reason)
	}
}

func TestRunnerAmbiguousLaunchResolvedByName(t *testing.T) {
	// The launch creates the instance but answers 500: the runner must find
	// it by name instead of launching a second one.
	w := newWorld(t, worldOpts{cloud: func(s *lambdatest.Server) { s.FailLaunchAfterCreate(1) }})
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 1}).ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeSucceeded {
		t.Fatalf("outcome %s (%s)", j.Outcome, j.Reason)
	}
	if n := len(w.cloud.Instances()); n != 1 {
		t.Errorf("%d instances exist, want 1", n)
	}
	w.assertNothingBilling()
}

func TestRunnerUnhealthyBootTriesNext(t *testing.T) {
	w := newWorld(t, worldOpts{cloud: func(s *lambdatest.Server) { s.UnhealthyOnBoot(1) }})
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 1}).ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeSucceeded || j.Attempt != 2 {
		t.Fatalf("outcome %s after %d attempts (%s), want success on the 2nd", j.Outcome, j.Attempt, j.Reason)
	}
	w.assertNothingBilling()
}

func TestRunnerSSHLostBeyondGrace(t *testing.T) {
	w := newWorld(t, worldOpts{
		trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 100 * time.Millisecond},
		cfg:     func(c *jobs.Config) { c.SSHGrace = 500 * time.Millisecond },
	})
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 50}).ID, jobs.StateTraining)
	host := w.Sim.Host(j.IP)
	host.RefuseFor(time.Minute)
	host.DropConnections()
	j = w.waitState(j.ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeFailed || !strings.Contains(j.Reason, "unreachable") {
		t.Fatalf("outcome %s (%s), want failed as unreachable", j.Outcome, j.Reason)
	}
	w.assertNothingBilling()
}

func TestRunnerSurvivesDroppedConnection(t *testing.T) {
	w := newWorld(t, worldOpts{trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 50 * time.Millisecond}})
	j := w.submit(jobs.SubmitRequest{Epochs: 6})
	waitFor(t, 30*time.Second, "an epoch", func() bool { return len(w.notes.epochsOf(j.ID)) >= 1 })
	cur, err := w.db.Job(context.Background(), j.ID)
	if err != nil {
		t.Fatal(err)
	}
	w.Sim.Host(cur.IP).DropConnections()
	j = w.waitState(j.ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeSucceeded {
		t.Fatalf("outcome %s (%s)", j.Outcome, j.Reason)
	}
	if got := w.notes.epochsOf(j.ID); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6}) {
		t.Errorf("epochs notified %v, want each of 1..6 once", got)
	}
}

func TestRunnerHostKeyChangeEndsJob(t *testing.T) {
	w := newWorld(t, worldOpts{trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 100 * time.Millisecond}})
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 50}).ID, jobs.StateTraining)
	host := w.Sim.Host(j.IP)
	if err := host.RotateHostKey(); err != nil {
		t.Fatal(err)
	}
	host.DropConnections()
	j = w.waitState(j.ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeFailed || !strings.Contains(j.Reason, "host key") {
		t.Fatalf("outcome %s (%s), want failed for the host key", j.Outcome, j.Reason)
	}
	w.assertNothingBilling()
}
