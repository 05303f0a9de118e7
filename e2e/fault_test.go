package e2e_test

import (
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// TestCapacityFallback: the first preferred type has no capacity in any
// region (though Lambda still advertises it); the job runs on the next.
func TestCapacityFallback(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{Cloud: func(c *lambdatest.Server) {
		for _, r := range lambdatest.DefaultRegions() {
			c.SetCapacity("gpu_1x_a100_sxm4", r.Name, false)
			c.SetAdvertised("gpu_1x_a100_sxm4", r.Name, true)
		}
	}})
	w.Slash(userA, chanA, "train obj1 2")
	w.WantOutcome(chanA, 1, "succeeded")
	w.AssertAllTerminated(1)
	refused := 0
	for _, r := range w.Cloud.Requests() {
		if r.Operation == lambdatest.OpLaunch && r.Status != 200 {
			if !strings.Contains(string(r.Body), "gpu_1x_a100_sxm4") || !strings.Contains(r.ErrorCode, "insufficient-capacity") {
				t.Errorf("unexpected failed launch: %s %s", r.ErrorCode, r.Body)
			}
			refused++
		}
	}
	if refused == 0 {
		t.Error("the bot never tried the first preferred type")
	}
	if ins := w.Cloud.Instances(); len(ins) != 1 || ins[0].InstanceType.Name != "gpu_1x_a100" {
		t.Errorf("instances %+v, want one gpu_1x_a100", ins)
	}
}

// TestNoCapacity: no type has capacity anywhere; the user is told and
// nothing is launched.
func TestNoCapacity(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{Cloud: func(c *lambdatest.Server) {
		for _, it := range lambdatest.DefaultCatalog() {
			for _, r := range lambdatest.DefaultRegions() {
				c.SetCapacity(it.InstanceType.Name, r.Name, false)
				c.SetAdvertised(it.InstanceType.Name, r.Name, true) // advisory only
			}
		}
	}})
	w.Slash(userA, chanA, "train obj1 2")
	summary := w.WantOutcome(chanA, 1, "failed")
	if !strings.Contains(summary, "no GPU capacity") {
		t.Errorf("the summary does not say why: %s", summary)
	}
	if n := len(w.Cloud.Instances()); n != 0 {
		t.Errorf("%d instances exist, want none", n)
	}
	w.AssertAllTerminated(0)
}

// TestKilledAndRestarted kills the bot with SIGKILL mid-training and
// starts it again on the same data dir: the job finishes on its one
// instance, no epoch is reported twice in its thread, and the thread goes
// on to the last epoch.
func TestKilledAndRestarted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{Trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 300 * time.Millisecond}})
	w.Slash(userA, chanA, "train obj1 10")
	w.WaitTrained(1, 3)
	w.Kill()
	w.Start()
	w.WantOutcome(chanA, 1, "succeeded")
	w.AssertAllTerminated(1)
	seen := w.Epochs(chanA, 1)
	var missing []int
	for e := 1; e <= 10; e++ {
		if seen[e] > 1 {
			t.Errorf("epoch %d reported %d times after the restart", e, seen[e])
		}
		if seen[e] == 0 {
			missing = append(missing, e)
		}
	}
	if seen[10] != 1 {
		t.Errorf("the last epoch is not in the thread after the restart: %v", seen)
	}
	// Replies still queued for the channel's rate limit when the bot was
	// killed were recorded as job events first; the restarted bot sends
	// them before anything new.
	if len(missing) > 0 {
		t.Errorf("epochs %v never reached the thread across the SIGKILL", missing)
	}
}

// TestStoppedAndRestarted ends the bot with SIGTERM mid-training, as a
// deploy does: the training goes on on its instance, and the next start
// picks it up and finishes it, one instance, each epoch reported once.
func TestStoppedAndRestarted(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{Trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 300 * time.Millisecond}})
	w.Slash(userA, chanA, "train obj1 8")
	in, _ := w.WaitTrained(1, 2)
	w.Stop()
	for _, i := range w.Cloud.Instances() {
		if i.ID == in.ID && i.Status != lambda.StatusActive {
			t.Fatalf("a graceful stop left the instance %s, want it training on", i.Status)
		}
	}
	w.Start()
	w.WantOutcome(chanA, 1, "succeeded")
	w.AssertAllTerminated(1)
	w.AssertEpochsOnce(chanA, 1, 8)
}

// TestSSHDropped drops every SSH connection to the job's instance
// mid-training: the job succeeds and no epoch is lost or repeated.
func TestSSHDropped(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{Trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 150 * time.Millisecond}})
	w.Slash(userA, chanA, "train obj1 6")
	_, h := w.WaitTrained(1, 2)
	h.DropConnections()
	w.WantOutcome(chanA, 1, "succeeded")
	w.AssertAllTerminated(1)
	w.AssertEpochsOnce(chanA, 1, 6)
}

// TestTrainerCrash: the trainer dies with CUDA out of memory; the job
// fails with the error and the log tail in its thread, and its instance is
// terminated.
func TestTrainerCrash(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{Trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 20 * time.Millisecond, Mode: lambdatest.ModeOOM}})
	w.Slash(userA, chanA, "train obj1 5")
	summary := w.WantOutcome(chanA, 1, "failed")
	for _, want := range []string{"CUDA out of memory", "```", "Epoch: 01"} {
		if !strings.Contains(summary, want) {
			t.Errorf("the summary lacks %q:\n%s", want, summary)
		}
	}
	w.AssertAllTerminated(1)
}

// TestHostKeyChanged: the job's instance presents a new SSH host key after
// a reconnect; the job fails with a clear message and the instance is
// terminated.
func TestHostKeyChanged(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{Trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 300 * time.Millisecond}})
	w.Slash(userA, chanA, "train obj1 30")
	_, h := w.WaitTrained(1, 1)
	must(t, h.RotateHostKey())
	h.DropConnections()
	summary := w.WantOutcome(chanA, 1, "failed")
	if !strings.Contains(summary, "host key changed") {
		t.Errorf("the summary does not say the host key changed:\n%s", summary)
	}
	w.AssertAllTerminated(1)
}

// TestLambdaFaults answers a share of Lambda calls with 500 and 429, and
// one launch with a 500 after creating the instance: the jobs still
// finish, one instance each, all terminated.
func TestLambdaFaults(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	w.Cloud.FailLaunchAfterCreate(1)
	w.Cloud.FailTerminate(1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); failShare(w.Cloud, 4, stop) }()
	w.Slash(userA, chanA, "train obj1,obj2 2")
	w.WantOutcome(chanA, 1, "succeeded")
	w.WantOutcome(chanA, 2, "succeeded")
	close(stop)
	wg.Wait()
	w.AssertAllTerminated(2)
	faults := map[int]int{}
	for _, r := range w.Cloud.Requests() {
		faults[r.Status]++
	}
	if faults[500] < 2 || faults[429] == 0 {
		t.Errorf("answers by status %v: the faults were not exercised", faults)
	}
}

// TestSlackRateLimited answers some Slack calls with 429: the bot waits
// and retries, and nothing is lost.
func TestSlackRateLimited(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	w.Slack.RateLimitNext("files.getUploadURLExternal", 1, time.Second)
	w.Slack.RateLimitNext("chat.postMessage", 3, time.Second)
	w.Slack.RateLimitNext("chat.update", 2, time.Second)
	w.Slash(userA, chanA, "train obj1 3")
	w.Ephemeral(userA, chanA, "queued #1 obj1")
	w.WantOutcome(chanA, 1, "succeeded")
	w.AssertEpochsOnce(chanA, 1, 3)
	thread := strings.Join(w.Thread(chanA, w.Card(chanA, 1)), "\n")
	for _, want := range []string{"instance up", "training started"} {
		if !strings.Contains(thread, want) {
			t.Errorf("the thread lacks %q:\n%s", want, thread)
		}
	}
	waitFor(t, 30*time.Second, "the loss chart", func() bool { return len(w.Slack.Uploads()) == 1 })
	waitFor(t, 30*time.Second, "the final card", func() bool {
		card, _ := w.findCard(chanA, 1)
		return strings.Contains(card.Text, "succeeded")
	})
	limited := map[string]int{}
	for _, c := range w.Slack.Calls() {
		if c.Status == 429 {
			limited[c.Method]++
		}
	}
	if want := map[string]int{"files.getUploadURLExternal": 1, "chat.postMessage": 3, "chat.update": 2}; !maps.Equal(limited, want) {
		t.Errorf("calls answered 429: %v, want the injected %v", limited, want)
	}
	w.AssertAllTerminated(1)
}

// failShare makes about one in every n list and get calls answer 500
// (list) or 429 (get) until stop is closed: whenever n more calls of an
// operation arrived, the next one fails.
func failShare(c *lambdatest.Server, n int, stop <-chan struct{}) {
	next := map[string]int{lambdatest.OpListInstances: n, lambdatest.OpGetInstance: n}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		count := map[string]int{}
		for _, r := range c.Requests() {
			count[r.Operation]++
		}
		for op, at := range next {
			if count[op] < at {
				continue
			}
			if op == lambdatest.OpListInstances {
				c.FailNext(op, 500, 1)
			} else {
				c.FailNextRetryAfter(op, 429, 1, 0)
			}
			next[op] = count[op] + 1 + n
		}
	}
}
