package e2e_test

import (
	"strings"
	"testing"
)

// TestTrainOneClass is the happy path: one job from the command to the
// summary, with its instance terminated.
func TestTrainOneClass(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	if got := w.Slash(userA, chanA, "train obj1 3 --budget 20"); got != "" {
		t.Errorf("a good command was answered in its ack: %q", got)
	}
	w.Ephemeral(userA, chanA, "queued #1 obj1")
	summary := w.WantOutcome(chanA, 1, "succeeded")
	w.AssertAllTerminated(1)
	w.AssertEpochsOnce(chanA, 1, 3)
	thread := strings.Join(w.Thread(chanA, w.Card(chanA, 1)), "\n")
	for _, want := range []string{"instance up", "training started", "epoch 3/3"} {
		if !strings.Contains(thread, want) {
			t.Errorf("the thread lacks %q:\n%s", want, thread)
		}
	}
	for _, want := range []string{"final loss", "checkpoints in"} {
		if !strings.Contains(summary, want) {
			t.Errorf("the summary lacks %q: %s", want, summary)
		}
	}
}

// TestTrainAll trains every class of the checkout: ten jobs, ten
// instances, all terminated, each billed for its one started minute.
func TestTrainAll(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	w.Slash(userA, chanA, "train all 1")
	w.Ephemeral(userA, chanA, "queued #1 obj1")
	for id := 1; id <= 10; id++ {
		w.WantOutcome(chanA, id, "succeeded")
	}
	w.AssertAllTerminated(10)
	names := map[string]bool{}
	for _, in := range w.Cloud.Instances() {
		names[in.Name] = true
		if m := w.Cloud.BilledMinutes(in.ID); m != 1 {
			t.Errorf("%s billed %d minutes, want 1", in.Name, m)
		}
	}
	if len(names) != 10 {
		t.Errorf("instances %v, want ten distinct names", names)
	}
}

// TestConcurrentJobs runs twenty jobs from four users in two channels at
// once: all finish, one instance each, all terminated.
func TestConcurrentJobs(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{})
	cmds := []struct{ user, channel, text string }{
		{userA, chanA, "train obj1,obj2,obj3,obj6,obj7 2"},
		{userB, chanA, "train obj13,obj16,obj18,obj21,obj32 2"},
		{"U0CAROL03", chanB, "train obj1,obj2,obj3,obj6,obj7 2"},
		{"U0DAVE004", chanB, "train obj13,obj16,obj18,obj21,obj32 2"},
	}
	done := make(chan string, len(cmds))
	for _, c := range cmds {
		go func() { done <- w.slashAsync(c.user, c.channel, c.text) }()
	}
	for range cmds {
		if err := <-done; err != "" {
			t.Fatal(err)
		}
	}
	// Job ids are handed out in the order the commands arrive: find each
	// job's channel by its card.
	perChannel := map[string]int{}
	for id := 1; id <= 20; id++ {
		var ch string
		waitFor(t, jobWait, "the card of a job", func() bool {
			for _, c := range []string{chanA, chanB} {
				if _, ok := w.findCard(c, id); ok {
					ch = c
					return true
				}
			}
			return false
		})
		perChannel[ch]++
		w.WantOutcome(ch, id, "succeeded")
		w.AssertEpochsOnce(ch, id, 2)
	}
	if perChannel[chanA] != 10 || perChannel[chanB] != 10 {
		t.Errorf("jobs per channel %v, want 10 each", perChannel)
	}
	w.AssertAllTerminated(20)
}
