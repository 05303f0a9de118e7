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

// recorder is a jobs.Notifier that remembers everything it is told.
type recorder struct {
	mu         sync.Mutex
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
	r.created = append(r.created, j.ID)
	return fmt.Sprintf("ref-%d", j.ID), nil
}
func (r *recorder) JobChanged(context.Context, *jobs.Job) error { return nil }
func (r *recorder) Milestone(_ context.Context, j *jobs.Job, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.milestones[j.ID] = append(r.milestones[j.ID], text)
	return nil
}
func (r *recorder) EpochsDone(_ context.Context, j *jobs.Job, eps []jobs.EpochReport) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range eps {
		r.epochs[j.ID] = append(r.epochs[j.ID], e.Epoch)
	}
	return nil
}
func (r *recorder) JobFinished(_ context.Context, j *jobs.Job, s jobs.Summary) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished[j.ID] = s
	return nil
}
func (r *recorder) Alert(_ context.Context, _, text string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = append(r.alerts, text)
	return nil
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
