package jobs_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cpbot/cpbot/internal/testenv"
	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/lambda/lambdatest"
	"github.com/cpbot/cpbot/store"
)

// world is a job service wired to a fake cloud with simulated instances and
// a real bbolt file.
type world struct {
	*testenv.World
	t       *testing.T
	cloud   *lambdatest.Server
	dataDir string
	cfg     jobs.Config
	db      *store.DB
	svc     *jobs.Service
	notes   *recorder
}

type worldOpts struct {
	bootDelay time.Duration
	trainer   lambdatest.TrainerConfig
	cfg       func(*jobs.Config)
	cloud     func(*lambdatest.Server)
}

func newWorld(t *testing.T, o worldOpts) *world {
	t.Helper()
	tw := testenv.New(t, testenv.Options{BootDelay: o.bootDelay, Trainer: o.trainer, Cloud: o.cloud})
	w := &world{World: tw, t: t, cloud: tw.Cloud, dataDir: tw.DataDir, cfg: tw.Config, db: tw.DB, notes: newRecorder()}
	if o.cfg != nil {
		o.cfg(&w.cfg)
	}
	w.start()
	return w
}

// start opens a new service on the world's store, as a restarted bot does.
func (w *world) start() {
	w.svc = jobs.NewService(w.cfg, w.db, w.notes, w.Client)
	w.notes.mu.Lock()
	w.notes.deliver = w.svc.Delivered
	w.notes.mu.Unlock()
	if err := w.svc.Open(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	svc := w.svc
	w.t.Cleanup(func() { svc.Close() })
}

func (w *world) submit(req jobs.SubmitRequest) *jobs.Job {
	w.t.Helper()
	if req.Epochs == 0 {
		req.Epochs = 3
	}
	if req.Batch == 0 {
		req.Batch = 8
	}
	if req.LR == 0 {
		req.LR = 0.001
	}
	if req.Requester == "" {
		req.Requester = "U1"
	}
	if len(req.Classes) == 0 && !req.All {
		req.Classes = []string{"obj1"}
	}
	js, err := w.svc.Submit(context.Background(), req)
	if err != nil {
		w.t.Fatalf("submit: %v", err)
	}
	return js[0]
}

func (w *world) waitState(id int64, s jobs.State) *jobs.Job {
	w.t.Helper()
	return w.WaitState(w.t, id, s)
}

func (w *world) assertNothingBilling() {
	w.t.Helper()
	w.AssertNothingBilling(w.t)
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.WaitFor(t, d, what, cond)
}

// recorder is a jobs.Notifier that remembers everything it is told and,
// like the bot, reports delivery. While lose is set it drops thread messages
// unsent and undelivered, as a bot killed with messages queued does.
type recorder struct {
	mu         sync.Mutex
	deliver    func(ctx context.Context, id, seq int64) error
	lose       bool
	failCreate int // JobCreated fails this many more times
	created    []int64
	milestones map[int64][]string
	epochs     map[int64][]int
	finished   map[int64]jobs.Summary
	alerts     []string
}

func newRecorder() *recorder {
	return &recorder{milestones: map[int64][]string{}, epochs: map[int64][]int{}, finished: map[int64]jobs.Summary{}}
}

func (r *recorder) JobCreated(_ context.Context, j *jobs.Job) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failCreate > 0 {
		r.failCreate--
		return "", fmt.Errorf("chat unreachable")
	}
	r.created = append(r.created, j.ID)
	return fmt.Sprintf("ref-%d", j.ID), nil
}

func (r *recorder) JobChanged(context.Context, *jobs.Job) error { return nil }

// thread records a thread message unless messages are being lost, then
// reports its delivery.
func (r *recorder) thread(ctx context.Context, id, seq int64, record func()) error {
	r.mu.Lock()
	if r.lose {
		r.mu.Unlock()
		return nil
	}
	record()
	deliver := r.deliver
	r.mu.Unlock()
	if deliver != nil {
		return deliver(ctx, id, seq)
	}
	return nil
}

func (r *recorder) Milestone(ctx context.Context, j *jobs.Job, seq int64, text string) error {
	if j.NotifyRef == "" {
		return fmt.Errorf("job #%d has no card", j.ID)
	}
	return r.thread(ctx, j.ID, seq, func() { r.milestones[j.ID] = append(r.milestones[j.ID], text) })
}

func (r *recorder) EpochsDone(ctx context.Context, j *jobs.Job, seq int64, eps []jobs.EpochReport) error {
	if j.NotifyRef == "" {
		return fmt.Errorf("job #%d has no card", j.ID)
	}
	return r.thread(ctx, j.ID, seq, func() {
		for _, e := range eps {
			r.epochs[j.ID] = append(r.epochs[j.ID], e.Epoch)
		}
	})
}

func (r *recorder) JobFinished(ctx context.Context, j *jobs.Job, seq int64, s jobs.Summary) error {
	return r.thread(ctx, j.ID, seq, func() { r.finished[j.ID] = s })
}

func (r *recorder) Alert(_ context.Context, _, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, text)
	return nil
}

func (r *recorder) setLose(lose bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lose = lose
}

func (r *recorder) epochsOf(id int64) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.epochs[id]...)
}

func (r *recorder) summary(id int64) (jobs.Summary, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.finished[id]
	return s, ok
}
