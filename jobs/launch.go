package jobs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cpbot/cpbot/lambda"
)

// reconcile matches a job resumed after a restart with Lambda's view of its
// instance: an instance that vanished mid-run ends the job as lost.
func (r *runner) reconcile(ctx context.Context, j *Job) error {
	if j.InstanceID == "" || j.State == StateLaunching || j.State == StateQueued {
		return nil
	}
	inst, err := r.svc.cloud.GetInstance(ctx, j.InstanceID)
	gone := lambda.IsNotFound(err) || (err == nil && (inst.Status == lambda.StatusTerminated || inst.Status == lambda.StatusPreempted))
	if err != nil && !gone {
		return fmt.Errorf("get instance %s: %w", j.InstanceID, err)
	}
	if !gone {
		return nil
	}
	switch j.State {
	case StateBooting:
		return r.discard(ctx, j, fmt.Sprintf("instance %s disappeared while booting", j.InstanceID), true)
	case StateTerminating:
		_, err := r.finishTerminated(ctx, j)
		return err
	default:
		reason := fmt.Sprintf("instance %s was %s outside cpbot", j.InstanceID, orGone(inst.Status, err))
		r.milestone(ctx, j, "instance lost: "+reason)
		_, err := r.finish(ctx, j, OutcomeLost, reason, r.foldCost)
		return err
	}
}

func orGone(status string, err error) string {
	if err != nil {
		return "removed"
	}
	return status
}

// launch tries the launch candidates in order until one instance exists.
func (r *runner) launch(ctx context.Context, j *Job) error {
	cloud := r.svc.cloud
	// A launch that crashed or timed out may have created the instance.
	if j.InstanceName != "" && j.InstanceID == "" {
		inst, found, err := cloud.FindInstanceByName(ctx, j.InstanceName)
		if err != nil {
			return fmt.Errorf("%w: find %s: %v", errRetry, j.InstanceName, err)
		}
		if found {
			return r.launched(ctx, j, inst.ID)
		}
		var uerr error
		if j, uerr = r.update(ctx, j, notLaunched); uerr != nil {
			return uerr
		}
	}
	avail, err := cloud.ListInstanceTypes(ctx)
	if err != nil {
		return fmt.Errorf("%w: list instance types: %v", errRetry, err)
	}
	cands := lambda.Candidates(avail, j.Spec.GPUTypes, r.cfg().Regions)
	for _, c := range cands {
		key := c.InstanceType.Name + "/" + c.Region
		if slices.Contains(j.Tried, key) {
			continue
		}
		if j.Attempt >= r.cfg().MaxAttempts {
			break
		}
		if cur, err := r.svc.store.Job(ctx, j.ID); err == nil && cur.StopRequest != "" {
			return nil // the loop handles the stop
		}
		name := fmt.Sprintf("cpbot-%d-%d", j.ID, j.Attempt+1)
		launchAt := r.now()
		j, err = r.update(ctx, j, func(x *Job) {
			x.Attempt++
			x.InstanceName = name
			x.LaunchedAt = launchAt // billing may start with the call
			x.InstanceType, x.Region = c.InstanceType.Name, c.Region
			x.PricePerHour = PriceFromCents(c.InstanceType.PriceCentsPerHour)
			x.Tried = append(x.Tried, key)
		})
		if err != nil {
			return err
		}
		id, err := cloud.Launch(ctx, lambda.LaunchRequest{Name: name, RegionName: c.Region,
			InstanceTypeName: c.InstanceType.Name, SSHKeyName: r.cfg().SSHKeyName})
		switch {
		case err == nil:
			return r.launched(ctx, j, id)
		case errors.Is(err, lambda.ErrAmbiguousLaunch):
			// The instance may exist: the next pass looks it up by name.
			return fmt.Errorf("%w: launch %s: %v", errRetry, name, err)
		case lambda.IsCapacity(err):
			r.log.Info("no capacity", "type", c.InstanceType.Name, "region", c.Region)
			if j, err = r.update(ctx, j, notLaunched); err != nil {
				return err
			}
		case lambda.IsRateLimited(err):
			// Nothing was created: the next pass tries this candidate again.
			if _, err := r.update(ctx, j, func(x *Job) {
				notLaunched(x)
				x.Tried = x.Tried[:len(x.Tried)-1]
				x.Attempt--
			}); err != nil {
				return err
			}
			return fmt.Errorf("%w: launch rate limited", errRetry)
		case ctx.Err() != nil:
			// Interrupted: the outcome is unknown, the next pass looks the
			// instance up by name.
			return ctx.Err()
		default:
			// Quota, key or request problems: another candidate would fail
			// the same way. Nothing was created.
			_, ferr := r.finish(ctx, j, OutcomeFailed, "Lambda refused the launch: "+launchErrorText(err), notLaunched)
			return ferr
		}
	}
	reason := fmt.Sprintf("no GPU capacity: tried %s", strings.Join(j.Tried, ", "))
	if len(j.Tried) == 0 {
		reason = fmt.Sprintf("none of the GPU types %s is offered in the allowed regions", strings.Join(j.Spec.GPUTypes, ", "))
	}
	_, err = r.finish(ctx, j, OutcomeFailed, reason, notLaunched)
	return err
}

// notLaunched forgets a launch that Lambda refused: nothing was created,
// nothing bills.
func notLaunched(x *Job) {
	x.InstanceName = ""
	x.LaunchedAt = time.Time{}
}

func launchErrorText(err error) string {
	var ae *lambda.APIError
	if errors.As(err, &ae) {
		if ae.Suggestion != "" {
			return ae.Message + " (" + ae.Suggestion + ")"
		}
		return ae.Message
	}
	return "request failed"
}

// launched records the instance of the current attempt and moves to booting.
func (r *runner) launched(ctx context.Context, j *Job, id string) error {
	now := r.now()
	nj, err := r.transition(ctx, j, StateBooting, func(x *Job) {
		x.InstanceID = id
		if x.LaunchedAt.IsZero() {
			x.LaunchedAt = now
		}
	})
	if err != nil {
		return err
	}
	r.milestone(ctx, nj, fmt.Sprintf("launching %s in %s at %s/h (attempt %d)", nj.InstanceType, nj.Region, nj.PricePerHour, nj.Attempt))
	return nil
}

// boot waits for the instance to be active with an address.
func (r *runner) boot(ctx context.Context, j *Job) error {
	inst, err := r.svc.cloud.GetInstance(ctx, j.InstanceID)
	if lambda.IsNotFound(err) {
		return r.discard(ctx, j, "instance disappeared while booting", true)
	}
	if err != nil {
		return fmt.Errorf("%w: get instance: %v", errRetry, err)
	}
	waited := r.now().Sub(j.LaunchedAt)
	switch {
	case inst.Status == lambda.StatusActive && inst.IP != "":
		nj, err := r.transition(ctx, j, StatePreparing, func(x *Job) {
			x.IP, x.ActiveAt, x.BusyAt, x.ReachedAt = inst.IP, r.now(), r.now(), r.now()
		})
		if err == nil {
			r.milestone(ctx, nj, fmt.Sprintf("instance up (%s)", roundDuration(waited)))
		}
		return err
	case inst.Status == lambda.StatusUnhealthy, inst.Status == lambda.StatusTerminated,
		inst.Status == lambda.StatusPreempted, inst.Status == lambda.StatusTerminating:
		return r.discard(ctx, j, "instance turned "+inst.Status+" while booting", false)
	case waited > r.cfg().BootTimeout:
		return r.discard(ctx, j, fmt.Sprintf("instance still %s after %s", inst.Status, roundDuration(waited)), false)
	}
	return errRetry
}

// discard terminates a failed attempt's instance and goes back to launching
// for the next candidate.
func (r *runner) discard(ctx context.Context, j *Job, why string, gone bool) error {
	r.milestone(ctx, j, fmt.Sprintf("%s on %s/%s; trying the next GPU option", why, j.InstanceType, j.Region))
	if !gone {
		if _, err := r.terminateAndConfirm(ctx, j.InstanceID); err != nil {
			return err
		}
	}
	_, err := r.transition(ctx, j, StateLaunching, func(x *Job) {
		r.foldCost(x)
		x.InstanceID, x.InstanceName, x.IP = "", "", ""
	})
	return err
}

// terminate ends the instance, waits until Lambda lists it as terminated,
// then finishes the job.
func (r *runner) terminate(ctx context.Context, j *Job) error {
	if j.InstanceID == "" && j.InstanceName != "" {
		inst, found, err := r.svc.cloud.FindInstanceByName(ctx, j.InstanceName)
		if err != nil {
			return fmt.Errorf("%w: find %s: %v", errRetry, j.InstanceName, err)
		}
		if found {
			if j, err = r.update(ctx, j, func(x *Job) {
				x.InstanceID = inst.ID
				if x.LaunchedAt.IsZero() {
					x.LaunchedAt = r.now()
				}
			}); err != nil {
				return err
			}
		}
	}
	if j.InstanceID != "" {
		if _, err := r.terminateAndConfirm(ctx, j.InstanceID); err != nil {
			return err
		}
	}
	_, err := r.finishTerminated(ctx, j)
	return err
}

func (r *runner) finishTerminated(ctx context.Context, j *Job) (*Job, error) {
	if j.InstanceID != "" && r.cfg().SSH.HostKeys != nil {
		r.cfg().SSH.HostKeys.Forget(j.InstanceID)
	}
	return r.finish(ctx, j, OutcomeFailed, "terminated", r.foldCost)
}

// foldCost moves the live instance's cost into Spent: its instance is gone.
func (r *runner) foldCost(x *Job) {
	if !x.LaunchedAt.IsZero() {
		x.Spent += Cost(x.PricePerHour, x.LaunchedAt, r.now())
		x.LaunchedAt = time.Time{}
	}
}

// terminateAndConfirm asks Lambda to terminate an instance until it does,
// then polls until Lambda lists it as terminated. It gives up only when ctx
// ends (a restarted bot resumes from the terminating state).
func (r *runner) terminateAndConfirm(ctx context.Context, id string) (time.Time, error) {
	cloud := r.svc.cloud
	backoff := r.cfg().PollInterval / 4
	asked := false
	for {
		if !asked {
			_, err := cloud.Terminate(ctx, id)
			switch {
			case err == nil, lambda.IsNotFound(err):
				asked = true
			default:
				r.log.Warn("terminate failed; will retry", "instance", id, "err", err)
			}
		}
		if asked {
			inst, err := cloud.GetInstance(ctx, id)
			if lambda.IsNotFound(err) || (err == nil && inst.Status == lambda.StatusTerminated) {
				r.log.Info("instance terminated", "instance", id)
				return r.now(), nil
			}
			if err == nil && inst.Status != lambda.StatusTerminating {
				asked = false // Lambda did not take it: ask again
			}
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return time.Time{}, ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, time.Minute)
		if backoff <= 0 {
			backoff = time.Second
		}
	}
}

func roundDuration(d time.Duration) time.Duration {
	if d > time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(100 * time.Millisecond)
}
