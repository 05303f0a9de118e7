package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cpbot/cpbot/lambda"
)

// runner drives one job through its states until it is finished or its
// context ends. Every state can be resumed from what is stored, so a
// restarted bot picks the job up where it was.
type runner struct {
	svc       *Service
	id        int64
	wake      chan struct{}
	log       *slog.Logger
	remote    *lambda.Remote
	announced time.Time // last try to post the card of a job that has none
}

// announceRetry is how often a job whose card could not be posted tries
// again.
const announceRetry = time.Minute

// errRetry asks the loop to wait a poll interval and look again.
var errRetry = errors.New("retry later")

func (r *runner) cfg() *Config   { return &r.svc.cfg }
func (r *runner) now() time.Time { return r.svc.cfg.Now() }

func (r *runner) run(ctx context.Context) {
	defer r.closeRemote()
	reconciled := false
	for ctx.Err() == nil {
		j, err := r.svc.store.Job(ctx, r.id)
		if err != nil {
			r.log.Warn("load job", "err", err)
			r.sleep(ctx, r.cfg().PollInterval)
			continue
		}
		if j.Finished() {
			return
		}
		if !reconciled {
			if err := r.reconcile(ctx, j); err != nil {
				r.log.Warn("reconcile", "err", err)
				r.sleep(ctx, r.cfg().PollInterval)
				continue
			}
			reconciled = true
			continue
		}
		if j.NotifyRef == "" && r.now().Sub(r.announced) >= announceRetry {
			// The chat was down when the job was submitted: post its card
			// now, then what it recorded meanwhile.
			r.announced = r.now()
			if r.svc.announce(ctx, j) {
				if err := r.svc.replay(ctx, j); err != nil {
					r.log.Warn("replay", "err", err)
				}
			}
			continue
		}
		err = r.stepWakeable(ctx, j)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
		case errors.Is(err, errRetry):
			r.sleep(ctx, r.cfg().PollInterval)
		default:
			r.log.Error("job failed", "state", j.State, "err", err)
			r.abort(ctx, j, OutcomeFailed, ErrorMessage(err))
		}
	}
}

// stepWakeable runs step with a context that a wake-up (a stop request)
// cancels, so a stop is seen at once even during a long dial or boot wait.
// The loop then reloads the job and sees the request.
func (r *runner) stepWakeable(ctx context.Context, j *Job) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-r.wake:
			cancel()
		case <-done:
		}
	}()
	err := r.step(sctx, j)
	if sctx.Err() != nil && ctx.Err() == nil {
		return nil
	}
	return err
}

// step does the work of the job's current state, usually ending in a
// transition.
func (r *runner) step(ctx context.Context, j *Job) error {
	if j.StopRequest != "" && j.State != StateCollecting && j.State != StateTerminating {
		return r.stop(ctx, j)
	}
	switch j.State {
	case StateQueued:
		_, err := r.transition(ctx, j, StateLaunching, nil)
		return err
	case StateLaunching:
		return r.launch(ctx, j)
	case StateBooting:
		return r.boot(ctx, j)
	case StatePreparing:
		return r.prepare(ctx, j)
	case StateTraining:
		return r.train(ctx, j)
	case StateCollecting:
		return r.collect(ctx, j)
	case StateTerminating:
		return r.terminate(ctx, j)
	}
	return fmt.Errorf("unknown state %q", j.State)
}

// transition moves the job from its current state to another in one store
// update, applying fn, and tells the notifier.
func (r *runner) transition(ctx context.Context, j *Job, to State, fn func(*Job)) (*Job, error) {
	from := j.State
	nj, err := r.svc.store.UpdateJob(ctx, j.ID, from, func(x *Job) error {
		if fn != nil {
			fn(x)
		}
		x.State = to
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("transition %s → %s: %w", from, to, err)
	}
	r.log.Info("state", "from", from, "to", to)
	r.event(ctx, Event{Kind: EventState, State: to, Text: nj.Reason})
	r.notifyChanged(ctx, nj)
	return nj, nil
}

// update stores fn's changes without a state change; the stored state must
// still be j's.
func (r *runner) update(ctx context.Context, j *Job, fn func(*Job)) (*Job, error) {
	return r.svc.store.UpdateJob(ctx, j.ID, j.State, func(x *Job) error { fn(x); return nil })
}

// stop handles a stop request (cancel, budget, idle) in any live state.
func (r *runner) stop(ctx context.Context, j *Job) error {
	reason := j.StopReason
	switch {
	case j.State == StateTraining:
		// Collect the checkpoints written so far before terminating.
		_, err := r.transition(ctx, j, StateCollecting, func(x *Job) { x.Outcome, x.Reason = x.StopRequest, reason })
		return err
	case j.InstanceID == "" && j.InstanceName == "":
		_, err := r.finish(ctx, j, j.StopRequest, reason, nil)
		return err
	default:
		_, err := r.transition(ctx, j, StateTerminating, func(x *Job) { x.Outcome, x.Reason = x.StopRequest, reason })
		return err
	}
}

// abort ends the job with an outcome: through terminating when an instance
// may exist, straight to finished otherwise.
func (r *runner) abort(ctx context.Context, j *Job, o Outcome, reason string) {
	var err error
	if j.InstanceID == "" && j.InstanceName == "" {
		_, err = r.finish(ctx, j, o, reason, nil)
	} else {
		_, err = r.transition(ctx, j, StateTerminating, func(x *Job) {
			if x.Outcome == "" {
				x.Outcome, x.Reason = o, reason
			}
		})
	}
	if err != nil && ctx.Err() == nil {
		r.log.Error("abort", "err", err)
		r.sleep(ctx, r.cfg().PollInterval)
	}
}

// finish moves the job to finished with its outcome and tells the notifier.
// The caller has made sure no instance of the job is left billing.
func (r *runner) finish(ctx context.Context, j *Job, o Outcome, reason string, fn func(*Job)) (*Job, error) {
	nj, err := r.transition(ctx, j, StateFinished, func(x *Job) {
		if fn != nil {
			fn(x)
		}
		if x.Outcome == "" {
			x.Outcome, x.Reason = o, reason
		}
		x.FinishedAt = r.now()
	})
	if err != nil {
		return nil, err
	}
	r.recordCost(ctx, nj)
	r.notifyFinished(ctx, nj)
	return nj, nil
}

// sleep waits d, a wake-up or the end of ctx.
func (r *runner) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-r.wake:
	case <-t.C:
	}
}

// event records an event of the job and returns its sequence number (0 if
// it could not be stored).
func (r *runner) event(ctx context.Context, e Event) int64 {
	e.JobID, e.Time = r.id, r.now()
	seq, err := r.svc.store.AddEvent(ctx, e)
	if err != nil && ctx.Err() == nil {
		r.log.Warn("store event", "err", err)
	}
	return seq
}

func (r *runner) recordCost(ctx context.Context, j *Job) {
	if err := r.svc.store.RecordCost(ctx, j.ID, j.Spec.Requester, month(j.CreatedAt), j.Cost(r.now())); err != nil && ctx.Err() == nil {
		r.log.Warn("record cost", "err", err)
	}
}

func (r *runner) closeRemote() {
	if r.remote != nil {
		r.remote.Close()
		r.remote = nil
	}
}
