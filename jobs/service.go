package jobs

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cpbot/cpbot/lambda"
)

// Service submits, cancels and lists jobs, and runs one runner goroutine per
// unfinished job. Open resumes the jobs a previous process left; Close stops
// the runners and leaves trainings running on their instances, so the next
// Open picks them up.
type Service struct {
	cfg      Config
	store    Store
	notifier Notifier
	cloud    *lambda.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[int64]chan struct{} // wake-up channel of each job's runner
	closed  bool
}

// NewService returns a service. Call Open before use.
func NewService(cfg Config, store Store, notifier Notifier, cloud *lambda.Client) *Service {
	cfg.setDefaults()
	return &Service{cfg: cfg, store: store, notifier: notifier, cloud: cloud, running: map[int64]chan struct{}{}}
}

// Open reconciles every unfinished job with Lambda's instance list and
// starts its runner.
func (s *Service) Open(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	unfinished, err := s.store.Jobs(ctx, JobFilter{Unfinished: true})
	if err != nil {
		return fmt.Errorf("list unfinished jobs: %w", err)
	}
	recent, err := s.store.Jobs(ctx, JobFilter{Since: s.cfg.Now().Add(-2 * replayWindow)})
	if err != nil {
		return fmt.Errorf("list recent jobs: %w", err)
	}
	// Messages the last process recorded but did not deliver go out first,
	// in order, before the runners add new ones.
	for _, j := range recent {
		if j.Finished() && s.cfg.Now().Sub(j.FinishedAt) < replayWindow {
			if err := s.replay(ctx, j); err != nil {
				s.cfg.Logger.Warn("replay", "job", j.ID, "err", err)
			}
		}
	}
	for _, j := range unfinished {
		if err := s.replay(ctx, j); err != nil {
			s.cfg.Logger.Warn("replay", "job", j.ID, "err", err)
		}
		s.start(j.ID)
	}
	return nil
}

// Close stops all runners and waits for them. Instances keep running.
func (s *Service) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	return nil
}

// start launches the runner of a job unless one is running.
func (s *Service) start(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ctx == nil || s.running[id] != nil {
		return
	}
	wake := make(chan struct{}, 1)
	s.running[id] = wake
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, id)
			s.mu.Unlock()
		}()
		r := &runner{svc: s, id: id, wake: wake, log: s.cfg.Logger.With("job", id)}
		r.run(s.ctx)
	}()
}

// wake nudges a job's runner to look at its job now.
func (s *Service) wake(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.running[id]; ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// SubmitRequest is a request to train one or more classes.
type SubmitRequest struct {
	DedupeKey string   // e.g. Slack's trigger id; a repeat creates nothing
	Classes   []string // lowercased class names
	All       bool     // every class of the code dir
	Epochs    int
	Batch     int
	LR        float64
	GPU       string // one instance type, empty = the configured preference
	Budget    Money  // per job, 0 = the default
	Requester string
	Channel   string
}

// Limits of a training request.
const (
	MaxEpochs = 1000
	MaxBatch  = 256
)

// Submit validates a request, stores one job per class and starts them. A
// request whose dedupe key was seen before returns the jobs it created then.
func (s *Service) Submit(ctx context.Context, req SubmitRequest) ([]*Job, error) {
	specs, err := s.specs(ctx, req)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now()
	jobs := make([]*Job, len(specs))
	for i, sp := range specs {
		jobs[i] = &Job{Spec: sp, State: StateQueued, CreatedAt: now, UpdatedAt: now, DedupeKey: req.DedupeKey}
	}
	out, created, err := s.store.CreateJobs(ctx, req.DedupeKey, jobs)
	if err != nil {
		return nil, fmt.Errorf("create jobs: %w", err)
	}
	if !created {
		return out, nil
	}
	for _, j := range out {
		s.announce(ctx, j)
		s.start(j.ID)
	}
	return out, nil
}

// announce tells the notifier of a new job and keeps its reference.
// It reports whether the job now has a card; a job without one tries again
// from its runner.
func (s *Service) announce(ctx context.Context, j *Job) bool {
	ref, err := s.notifier.JobCreated(ctx, j)
	if err != nil {
		s.cfg.Logger.Warn("announce job", "job", j.ID, "err", err)
		return false
	}
	if ref == "" {
		return false
	}
	if _, err := s.store.UpdateJob(ctx, j.ID, "", func(j *Job) error { j.NotifyRef = ref; return nil }); err != nil {
		s.cfg.Logger.Warn("store notify ref", "job", j.ID, "err", err)
		return false
	}
	j.NotifyRef = ref
	return true
}

// specs validates a request and turns it into one spec per class.
func (s *Service) specs(ctx context.Context, req SubmitRequest) ([]Spec, error) {
	known, err := Classes(s.cfg.CodeDir)
	if err != nil {
		return nil, Errorf(EINTERNAL, "cannot read the classes of the ContourPose checkout: %v", err)
	}
	classes := req.Classes
	if req.All {
		classes = known
	}
	if len(classes) == 0 {
		return nil, Errorf(EINVALID, "name a class to train, or all; known: %s", joinClasses(known))
	}
	for _, c := range classes {
		if !slices.Contains(known, c) {
			return nil, Errorf(EINVALID, "unknown class %q; known: %s", c, joinClasses(known))
		}
	}
	if req.Epochs < 1 || req.Epochs > MaxEpochs {
		return nil, Errorf(EINVALID, "epochs must be from 1 to %d, got %d", MaxEpochs, req.Epochs)
	}
	if req.Batch < 1 || req.Batch > MaxBatch {
		return nil, Errorf(EINVALID, "batch must be from 1 to %d, got %d", MaxBatch, req.Batch)
	}
	if !(req.LR > 0 && req.LR <= 1) || math.IsNaN(req.LR) {
		return nil, Errorf(EINVALID, "lr must be in (0, 1], got %g", req.LR)
	}
	if req.Budget < 0 {
		return nil, Errorf(EINVALID, "budget must be positive")
	}
	types := s.cfg.InstanceTypes
	if req.GPU != "" {
		types = []string{req.GPU}
	}
	if err := s.checkGPUTypes(ctx, types, req.GPU != ""); err != nil {
		return nil, err
	}
	if _, err := (Preflight{CodeDir: s.cfg.CodeDir, DatasetDir: s.cfg.DatasetDir, Classes: classes, GPUs: 1}).Check(); err != nil {
		return nil, err
	}
	budget := req.Budget
	if budget == 0 {
		budget = s.cfg.JobBudget
	}
	if err := s.checkBudget(ctx, classes, types, req.Epochs, budget); err != nil {
		return nil, err
	}
	specs := make([]Spec, len(classes))
	for i, c := range classes {
		specs[i] = Spec{Class: c, Epochs: req.Epochs, Batch: req.Batch, LR: req.LR, GPUTypes: types,
			Budget: budget, Requester: req.Requester, Channel: req.Channel}
	}
	return specs, nil
}

// checkGPUTypes refuses an instance type Lambda does not offer.
func (s *Service) checkGPUTypes(ctx context.Context, types []string, asked bool) error {
	if !asked {
		return nil
	}
	avail, err := s.cloud.ListInstanceTypes(ctx)
	if err != nil {
		return fmt.Errorf("list instance types: %w", err)
	}
	var names []string
	for _, a := range avail {
		names = append(names, a.InstanceType.Name)
	}
	for _, t := range types {
		if !slices.Contains(names, t) {
			return Errorf(EINVALID, "unknown GPU type %q; see /contourpose gpus", t)
		}
	}
	return nil
}

// Get returns one job.
func (s *Service) Get(ctx context.Context, id int64) (*Job, error) { return s.store.Job(ctx, id) }

// List returns jobs, newest first.
func (s *Service) List(ctx context.Context, f JobFilter) ([]*Job, error) { return s.store.Jobs(ctx, f) }

// Logs returns the last lines of a job's training log the bot has read.
func (s *Service) Logs(ctx context.Context, id int64, n int) ([]string, error) {
	j, err := s.store.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	tail := j.LogTail
	if n > 0 && len(tail) > n {
		tail = tail[len(tail)-n:]
	}
	return tail, nil
}

// Cancel asks a job to stop. Only its requester or an admin may. The runner
// collects what it can and terminates the instance; the job finishes as
// cancelled once Lambda reports the instance terminated.
func (s *Service) Cancel(ctx context.Context, id int64, by string, admin bool) (*Job, error) {
	return s.Stop(ctx, id, OutcomeCancelled, "stopped by <@"+by+">", func(j *Job) error {
		if !admin && j.Spec.Requester != by {
			return Errorf(EFORBIDDEN, "only <@%s> or an admin can stop #%d", j.Spec.Requester, j.ID)
		}
		return nil
	})
}

// Stop asks a job's runner to stop it with the given outcome (used by Cancel
// and the watchdog). check, if not nil, may refuse. Stopping a finished job
// is an EINVALID error; a second stop keeps the first reason.
func (s *Service) Stop(ctx context.Context, id int64, outcome Outcome, reason string, check func(*Job) error) (*Job, error) {
	j, err := s.store.UpdateJob(ctx, id, "", func(j *Job) error {
		if check != nil {
			if err := check(j); err != nil {
				return err
			}
		}
		if j.Finished() {
			return Errorf(EINVALID, "#%d has already finished (%s)", j.ID, j.Outcome)
		}
		if j.StopRequest == "" {
			j.StopRequest, j.StopReason = outcome, reason
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.wake(id)
	s.start(id) // in case its runner had ended (it will finish the job)
	return j, nil
}

func joinClasses(c []string) string {
	if len(c) == 0 {
		return "(none: the code dir has no keypoints/*.txt)"
	}
	return strings.Join(c, " ")
}

// month is the ledger's month key of t.
func month(t time.Time) string { return t.UTC().Format("2006-01") }

// GPUOption is an instance type on offer, for the gpus command.
type GPUOption struct {
	Name         string
	Description  string
	GPUs         int
	PricePerHour Money
	Regions      []string // regions with capacity now (a hint)
	Preferred    bool     // in the configured preference list
}

// GPUs lists Lambda's instance types, cheapest first, with the regions that
// have capacity now.
func (s *Service) GPUs(ctx context.Context) ([]GPUOption, error) {
	avail, err := s.cloud.ListInstanceTypes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list instance types: %w", err)
	}
	out := make([]GPUOption, 0, len(avail))
	for _, a := range avail {
		o := GPUOption{Name: a.InstanceType.Name, Description: a.InstanceType.GPUDescription, GPUs: a.InstanceType.Specs.GPUs,
			PricePerHour: PriceFromCents(a.InstanceType.PriceCentsPerHour), Preferred: slices.Contains(s.cfg.InstanceTypes, a.InstanceType.Name)}
		for _, r := range a.RegionsWithCapacityAvailable {
			if len(s.cfg.Regions) == 0 || slices.Contains(s.cfg.Regions, r.Name) {
				o.Regions = append(o.Regions, r.Name)
			}
		}
		out = append(out, o)
	}
	sort.Slice(out, func(i, k int) bool {
		if out[i].PricePerHour != out[k].PricePerHour {
			return out[i].PricePerHour < out[k].PricePerHour
		}
		return out[i].Name < out[k].Name
	})
	return out, nil
}
