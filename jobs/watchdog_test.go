package jobs_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// clock is a fake clock for the job service: tests move it by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// watchWorld is a world whose job service runs on a fake clock, with a
// watchdog over it.
func watchWorld(t *testing.T, o worldOpts, wc jobs.WatchdogConfig) (*world, *clock, *jobs.Watchdog) {
	t.Helper()
	clk := newClock()
	inner := o.cfg
	o.cfg = func(c *jobs.Config) {
		c.Now = clk.Now
		if inner != nil {
			inner(c)
		}
	}
	w := newWorld(t, o)
	return w, clk, jobs.NewWatchdog(w.svc, wc)
}

func tick(t *testing.T, wd *jobs.Watchdog) {
	t.Helper()
	if err := wd.Tick(context.Background()); err != nil {
		t.Fatalf("tick: %v", err)
	}
}

func (r *recorder) alertsWith(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, a := range r.alerts {
		if strings.Contains(a, s) {
			n++
		}
	}
	return n
}

func TestWatchdogStopsJobAtBudget(t *testing.T) {
	w, clk, wd := watchWorld(t, worldOpts{trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 100 * time.Millisecond}}, jobs.WatchdogConfig{})
	budget := jobs.USD(0.10) // under 5 minutes at $1.29/h
	j := w.submit(jobs.SubmitRequest{Epochs: 500, Budget: budget})
	w.waitState(j.ID, jobs.StateTraining)
	const every = time.Minute
	for i := 0; i < 30; i++ {
		clk.Advance(every)
		tick(t, wd)
		if cur, _ := w.db.Job(context.Background(), j.ID); cur.StopRequest != "" {
			break
		}
	}
	j = w.waitState(j.ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeOverBudget {
		t.Fatalf("outcome %s (%s), want over-budget", j.Outcome, j.Reason)
	}
	price := j.PricePerHour
	base := clk.Now()
	slack := jobs.Cost(price, base, base.Add(every)) + jobs.Cost(price, base, base.Add(time.Minute))
	if over := j.Cost(clk.Now()) - budget; over > slack {
		t.Errorf("cost %s overshoots the %s budget by %s, more than a tick plus a minute (%s)", j.Cost(clk.Now()), budget, over, slack)
	}
	w.assertNothingBilling()
}

func TestWatchdogTeamAlertsOnce(t *testing.T) {
	w, clk, wd := watchWorld(t, worldOpts{}, jobs.WatchdogConfig{})
	ctx := context.Background()
	if err := w.svc.SetTeamBudget(ctx, jobs.USD(10), true); err != nil {
		t.Fatal(err)
	}
	m := clk.Now().Format("2006-01")
	spend := func(usd float64) {
		if err := w.db.RecordCost(ctx, 1000, "U1", m, jobs.USD(usd)); err != nil {
			t.Fatal(err)
		}
	}
	spend(4)
	tick(t, wd)
	if n := len(w.notes.alerts); n != 0 {
		t.Fatalf("%d alerts at 40%%", n)
	}
	spend(5.5)
	tick(t, wd)
	tick(t, wd)
	if n := w.notes.alertsWith("(55%)"); n != 1 {
		t.Errorf("%d alerts at 55%%, want 1", n)
	}
	spend(8.5)
	tick(t, wd)

	// A restarted bot does not alert again.
	w.svc.Close()
	w.start()
	wd = jobs.NewWatchdog(w.svc, jobs.WatchdogConfig{})
	tick(t, wd)
	if n := w.notes.alertsWith("(85%)"); n != 1 {
		t.Errorf("%d alerts at 85%% across a restart, want 1", n)
	}
	spend(10.2)
	tick(t, wd)
	tick(t, wd)
	if n := w.notes.alertsWith("(102%)"); n != 1 {
		t.Errorf("%d alerts at 102%%, want 1", n)
	}
	if n := len(w.notes.alerts); n != 3 {
		t.Errorf("%d alerts in all, want 3: %q", n, w.notes.alerts)
	}
	_, err := w.svc.Submit(ctx, jobs.SubmitRequest{Classes: []string{"obj1"}, Epochs: 1, Batch: 8, LR: 0.001, Requester: "U1"})
	if jobs.ErrorCode(err) != jobs.EBUDGET {
		t.Errorf("submit over the team budget: %v, want EBUDGET", err)
	}
}

func TestWatchdogKillsHungTrainer(t *testing.T) {
	w, clk, wd := watchWorld(t, worldOpts{trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, Mode: lambdatest.ModeHang}},
		jobs.WatchdogConfig{IdleAfter: 15 * time.Minute})
	j := w.submit(jobs.SubmitRequest{Epochs: 50})
	waitFor(t, 30*time.Second, "the first epoch", func() bool { return len(w.notes.epochsOf(j.ID)) >= 1 })
	// The trainer hangs after its first epoch: its GPU goes quiet.
	time.Sleep(300 * time.Millisecond)
	clk.Advance(10 * time.Minute)
	time.Sleep(300 * time.Millisecond) // a poll sees the GPU idle at the new time
	tick(t, wd)
	if cur, _ := w.db.Job(context.Background(), j.ID); cur.StopRequest != "" {
		t.Fatalf("stopped after 10 idle minutes: %s", cur.StopReason)
	}
	clk.Advance(10 * time.Minute)
	time.Sleep(300 * time.Millisecond) // a poll sees the GPU idle at the new time
	tick(t, wd)
	j = w.waitState(j.ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeIdle {
		t.Fatalf("outcome %s (%s), want idle", j.Outcome, j.Reason)
	}
	w.assertNothingBilling()
}

func TestIdleIgnoresSetupAndUpload(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	old := now.Add(-time.Hour)
	for _, tc := range []struct {
		state jobs.State
		busy  time.Time
		want  bool
	}{
		{jobs.StatePreparing, old, false}, // a long upload is work
		{jobs.StateBooting, old, false},
		{jobs.StateTraining, old, true},
		{jobs.StateTraining, now.Add(-time.Minute), false},
		{jobs.StateTraining, time.Time{}, false},
		{jobs.StateCollecting, old, false},
	} {
		j := &jobs.Job{State: tc.state, BusyAt: tc.busy}
		if got := jobs.Idle(j, now, 15*time.Minute); got != tc.want {
			t.Errorf("Idle(%s, busy %v ago) = %v, want %v", tc.state, now.Sub(tc.busy), got, tc.want)
		}
	}
}

func TestWatchdogOrphans(t *testing.T) {
	var orphan, foreign lambda.Instance
	w, clk, wd := watchWorld(t, worldOpts{cloud: func(s *lambdatest.Server) {
		var err error
		if orphan, err = s.AddInstance(lambdatest.Seed{Name: "cpbot-77-1", InstanceTypeName: "gpu_1x_a10", RegionName: "us-east-1", Status: lambda.StatusActive}); err != nil {
			t.Fatal(err)
		}
		if foreign, err = s.AddInstance(lambdatest.Seed{Name: "alice-notebook", InstanceTypeName: "gpu_1x_a10", RegionName: "us-east-1", Status: lambda.StatusActive}); err != nil {
			t.Fatal(err)
		}
	}}, jobs.WatchdogConfig{OrphanGrace: 30 * time.Minute})
	tick(t, wd)
	tick(t, wd)
	if n := w.notes.alertsWith("orphan instance cpbot-77-1"); n != 1 {
		t.Fatalf("%d orphan reports, want 1: %q", n, w.notes.alerts)
	}
	if n := w.notes.alertsWith("alice-notebook"); n != 0 {
		t.Errorf("an unprefixed instance was reported")
	}
	clk.Advance(31 * time.Minute)
	tick(t, wd)
	for _, in := range w.cloud.Instances() {
		switch in.ID {
		case orphan.ID:
			if in.Status != lambda.StatusTerminating && in.Status != lambda.StatusTerminated {
				t.Errorf("orphan is %s after the grace period", in.Status)
			}
		case foreign.ID:
			if in.Status != lambda.StatusActive {
				t.Errorf("the unprefixed instance is %s", in.Status)
			}
		}
	}
	for _, r := range w.cloud.Requests() {
		if r.Operation == lambdatest.OpTerminate && strings.Contains(string(r.Body), foreign.ID) {
			t.Errorf("a terminate request named the unprefixed instance: %s", r.Body)
		}
	}
	if n := w.notes.alertsWith("terminated orphan instance cpbot-77-1"); n != 1 {
		t.Errorf("%d reap alerts, want 1", n)
	}
}

func TestWatchdogOrphanReportOnly(t *testing.T) {
	w, clk, wd := watchWorld(t, worldOpts{cloud: func(s *lambdatest.Server) {
		if _, err := s.AddInstance(lambdatest.Seed{Name: "cpbot-5-2", InstanceTypeName: "gpu_1x_a10", RegionName: "us-east-1", Status: lambda.StatusActive}); err != nil {
			t.Fatal(err)
		}
	}}, jobs.WatchdogConfig{})
	tick(t, wd)
	clk.Advance(24 * time.Hour)
	tick(t, wd)
	if n := w.notes.alertsWith("report only"); n != 1 {
		t.Errorf("%d reports, want 1", n)
	}
	for _, in := range w.cloud.Instances() {
		if in.Status != lambda.StatusActive {
			t.Errorf("report-only mode changed %s to %s", in.Name, in.Status)
		}
	}
}

func TestWatchdogCountsDowntime(t *testing.T) {
	w, clk, wd := watchWorld(t, worldOpts{trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 100 * time.Millisecond}}, jobs.WatchdogConfig{})
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 500, Budget: jobs.USD(100)}).ID, jobs.StateTraining)
	tick(t, wd)
	w.svc.Close() // the bot goes down for 45 minutes; the instance bills on
	clk.Advance(45 * time.Minute)
	w.start()
	wd = jobs.NewWatchdog(w.svc, jobs.WatchdogConfig{})
	tick(t, wd)
	total, byUser, err := w.db.Spend(context.Background(), clk.Now().Format("2006-01"))
	if err != nil {
		t.Fatal(err)
	}
	want := jobs.Cost(j.PricePerHour, j.LaunchedAt, clk.Now())
	if total != want || byUser["U1"] != want || want < jobs.USD(0.9) {
		t.Errorf("ledger %s (U1 %s), want %s for 45+ minutes at %s/h", total, byUser["U1"], want, j.PricePerHour)
	}
}

func TestWatchdogDigestOnce(t *testing.T) {
	w, clk, wd := watchWorld(t, worldOpts{}, jobs.WatchdogConfig{})
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 1}).ID, jobs.StateFinished)
	clk.Advance(24 * time.Hour)
	ctx := context.Background()
	if err := wd.Digest(ctx); err != nil {
		t.Fatal(err)
	}
	if err := wd.Digest(ctx); err != nil {
		t.Fatal(err)
	}
	if n := w.notes.alertsWith("daily digest"); n != 1 {
		t.Fatalf("%d digests, want 1", n)
	}
	if w.notes.alertsWith(j.Label()+" by <@U1>: succeeded") != 1 || w.notes.alertsWith("month to date") != 1 {
		t.Errorf("digest lacks the job or the month: %q", w.notes.alerts)
	}
}

func TestSubmitRefusesForecastOverBudget(t *testing.T) {
	w := newWorld(t, worldOpts{})
	ctx := context.Background()
	j := w.waitState(w.submit(jobs.SubmitRequest{Epochs: 1}).ID, jobs.StateFinished)
	// Pretend the measured run took an hour per epoch on its GPU type.
	if _, err := w.db.UpdateJob(ctx, j.ID, "", func(x *jobs.Job) error { x.Progress.EpochSeconds = 3600; return nil }); err != nil {
		t.Fatal(err)
	}
	_, err := w.svc.Submit(ctx, jobs.SubmitRequest{Classes: []string{"obj1"}, Epochs: 100, Batch: 8, LR: 0.001, Requester: "U1", Budget: jobs.USD(20)})
	if jobs.ErrorCode(err) != jobs.EBUDGET || !strings.Contains(jobs.ErrorMessage(err), "forecast") {
		t.Fatalf("submit: %v, want a forecast refusal", err)
	}
	// Another class has no history: it launches, and the watchdog enforces the cap.
	js, err := w.svc.Submit(ctx, jobs.SubmitRequest{Classes: []string{"obj2"}, Epochs: 1, Batch: 8, LR: 0.001, Requester: "U1", Budget: jobs.USD(20)})
	if err != nil {
		t.Fatalf("submit without history: %v", err)
	}
	w.waitState(js[0].ID, jobs.StateFinished)
	if n := w.cloud.Launches(); n != 2 {
		t.Errorf("%d launches, want 2 (the refused one launched nothing)", n)
	}
}

// TestCardPostedLateWhenChatWasDown submits while the chat is unreachable:
// the job trains anyway, and when the chat answers again its card goes up
// and the messages recorded meanwhile follow, in order, each once.
func TestCardPostedLateWhenChatWasDown(t *testing.T) {
	clk := newClock()
	w := newWorld(t, worldOpts{
		trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 80 * time.Millisecond},
		cfg:     func(c *jobs.Config) { c.Now = clk.Now },
	})
	w.notes.mu.Lock()
	w.notes.failCreate = 2 // at submit and at the runner's first retry
	w.notes.mu.Unlock()
	j := w.submit(jobs.SubmitRequest{Epochs: 8})
	waitFor(t, 30*time.Second, "two epochs read", func() bool {
		cur, err := w.db.Job(context.Background(), j.ID)
		return err == nil && cur.NotifiedEpoch >= 2
	})
	if got := w.notes.epochsOf(j.ID); len(got) != 0 {
		t.Fatalf("epochs %v delivered without a card", got)
	}
	clk.Advance(2 * time.Minute) // the runner tries the card again
	j = w.waitState(j.ID, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeSucceeded || j.NotifyRef == "" {
		t.Fatalf("outcome %s (%s), card %q", j.Outcome, j.Reason, j.NotifyRef)
	}
	waitFor(t, 5*time.Second, "the summary", func() bool { _, ok := w.notes.summary(j.ID); return ok })
	if got := w.notes.epochsOf(j.ID); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("epochs delivered %v, want 1..8 once, in order", got)
	}
	w.notes.mu.Lock()
	defer w.notes.mu.Unlock()
	if n := strings.Count(strings.Join(w.notes.milestones[j.ID], "\n"), "training started"); n != 1 {
		t.Errorf("\"training started\" delivered %d times: %q", n, w.notes.milestones[j.ID])
	}
}
