package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/cpbot/cpbot/lambda"
)

// WatchdogConfig configures the watchdog.
type WatchdogConfig struct {
	Schedule       string        // cron spec of the checks; default "@every 1m"
	DigestSchedule string        // cron spec of the daily digest; default "0 9 * * *"; "-" = none
	IdleAfter      time.Duration // a training instance idle this long is stopped; default 15m
	// OrphanGrace is how long an orphan cpbot-… instance is left before it is
	// terminated; 0 = report only.
	OrphanGrace time.Duration
	// StuckAfter is how long past the runner's own limits (boot timeout, SSH
	// grace) the watchdog waits before it stops a job the runner did not;
	// default 5m.
	StuckAfter time.Duration
}

// InstancePrefix starts the name of every instance cpbot launches. The
// watchdog never touches an instance whose name lacks it.
const InstancePrefix = "cpbot-"

// Watchdog makes sure no GPU minute is billed for nothing. Each tick it
// records every live job's cost, stops jobs over their budget, idle or stuck,
// alerts the team at 50, 80 and 100% of its monthly budget, and reports then
// reaps orphan cpbot-… instances. Every alert is sent once, even across
// restarts.
type Watchdog struct {
	svc  *Service
	cfg  WatchdogConfig
	cron *cron.Cron
	log  *slog.Logger

	mu     sync.Mutex // one tick at a time
	ctx    context.Context
	cancel context.CancelFunc
}

// NewWatchdog returns a watchdog over the service's jobs.
func NewWatchdog(svc *Service, cfg WatchdogConfig) *Watchdog {
	if cfg.Schedule == "" {
		cfg.Schedule = "@every 1m"
	}
	if cfg.DigestSchedule == "" {
		cfg.DigestSchedule = "0 9 * * *"
	}
	if cfg.IdleAfter <= 0 {
		cfg.IdleAfter = 15 * time.Minute
	}
	if cfg.StuckAfter <= 0 {
		cfg.StuckAfter = 5 * time.Minute
	}
	return &Watchdog{svc: svc, cfg: cfg, log: svc.cfg.Logger.With("component", "watchdog")}
}

// Open starts the cron schedules. A bad cron spec is an error.
func (w *Watchdog) Open() error {
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.cron = cron.New(cron.WithChain(cron.SkipIfStillRunning(cron.DiscardLogger)))
	if _, err := w.cron.AddFunc(w.cfg.Schedule, func() { w.run("tick", w.Tick) }); err != nil {
		return fmt.Errorf("watchdog schedule %q: %w", w.cfg.Schedule, err)
	}
	if w.cfg.DigestSchedule != "-" {
		if _, err := w.cron.AddFunc(w.cfg.DigestSchedule, func() { w.run("digest", w.Digest) }); err != nil {
			return fmt.Errorf("digest schedule %q: %w", w.cfg.DigestSchedule, err)
		}
	}
	w.cron.Start()
	return nil
}

// Close stops the schedules and waits for a check in progress.
func (w *Watchdog) Close() error {
	if w.cron == nil {
		return nil
	}
	w.cancel()
	<-w.cron.Stop().Done()
	return nil
}

func (w *Watchdog) run(what string, fn func(context.Context) error) {
	if err := fn(w.ctx); err != nil && !errors.Is(err, context.Canceled) {
		w.log.Error("watchdog "+what, "err", err)
	}
}

// Tick runs every check once.
func (w *Watchdog) Tick(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.svc.cfg.Now()
	all, err := w.svc.store.Jobs(ctx, JobFilter{Unfinished: true})
	if err != nil {
		return fmt.Errorf("live jobs: %w", err)
	}
	var errs []error
	recs := make([]CostRecord, 0, len(all))
	for _, j := range all {
		if cost := j.Cost(now); cost > 0 {
			recs = append(recs, CostRecord{JobID: j.ID, User: j.Spec.Requester, Month: month(j.CreatedAt), Amount: cost})
		}
	}
	if err := w.svc.store.RecordCosts(ctx, recs); err != nil {
		errs = append(errs, fmt.Errorf("record costs: %w", err))
	}
	for _, j := range all {
		if err := w.checkJob(ctx, j, now); err != nil {
			errs = append(errs, fmt.Errorf("job %d: %w", j.ID, err))
		}
	}
	if err := w.checkTeam(ctx, now); err != nil {
		errs = append(errs, err)
	}
	if err := w.checkOrphans(ctx, all, now); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkJob stops a live job when it is over budget, idle or stuck.
func (w *Watchdog) checkJob(ctx context.Context, j *Job, now time.Time) error {
	cost := j.Cost(now)
	if j.StopRequest != "" {
		return nil
	}
	outcome, reason := w.verdict(j, now, cost)
	if outcome == "" {
		return nil
	}
	w.log.Info("stopping job", "job", j.ID, "outcome", outcome, "reason", reason)
	_, err := w.svc.Stop(ctx, j.ID, outcome, reason, nil)
	if ErrorCode(err) == EINVALID { // finished meanwhile
		return nil
	}
	return err
}

// verdict decides whether a live job must be stopped, and why.
func (w *Watchdog) verdict(j *Job, now time.Time, cost Money) (Outcome, string) {
	cfg := w.svc.cfg
	switch {
	case j.Spec.Budget > 0 && cost >= j.Spec.Budget:
		return OutcomeOverBudget, fmt.Sprintf("reached its %s budget (%s spent)", j.Spec.Budget, cost)
	case Idle(j, now, w.cfg.IdleAfter):
		return OutcomeIdle, fmt.Sprintf("no training progress and the GPU under %d%% for %s", idleGPUPercent, roundDuration(now.Sub(j.BusyAt)))
	case j.State == StateBooting && !j.LaunchedAt.IsZero() && now.Sub(j.LaunchedAt) > cfg.BootTimeout+w.cfg.StuckAfter:
		return OutcomeFailed, fmt.Sprintf("stuck booting for %s", roundDuration(now.Sub(j.LaunchedAt)))
	case j.State == StateTraining && !j.ReachedAt.IsZero() && now.Sub(j.ReachedAt) > cfg.SSHGrace+w.cfg.StuckAfter:
		return OutcomeFailed, fmt.Sprintf("instance unreachable over SSH for %s", roundDuration(now.Sub(j.ReachedAt)))
	}
	return "", ""
}

// Idle reports whether a job's instance has done no useful work (training
// output or a busy GPU) for longer than after. Only training counts: setup
// and uploads are work even when the GPU is idle.
func Idle(j *Job, now time.Time, after time.Duration) bool {
	if j.State != StateTraining || j.BusyAt.IsZero() {
		return false
	}
	return now.Sub(j.BusyAt) > after
}

// teamThresholds are the shares of the monthly team budget that alert.
var teamThresholds = []int{50, 80, 100}

// checkTeam alerts once per month at each threshold of the team budget.
func (w *Watchdog) checkTeam(ctx context.Context, now time.Time) error {
	budget, err := w.svc.TeamBudget(ctx)
	if err != nil {
		return err
	}
	m := month(now)
	spent, _, err := w.svc.store.Spend(ctx, m)
	if err != nil {
		return fmt.Errorf("month spend: %w", err)
	}
	if budget <= 0 {
		return nil
	}
	reached := 0
	for _, t := range teamThresholds {
		if int64(spent)*100 >= int64(budget)*int64(t) {
			reached = t
		}
	}
	if reached == 0 {
		return nil
	}
	// One alert for the highest threshold reached; the lower ones are
	// marked too, so a jump from 40% to 85% does not alert twice.
	first := false
	for _, t := range teamThresholds {
		if t > reached {
			break
		}
		f, err := w.svc.store.Once(ctx, fmt.Sprintf("alert:team:%s:%d", m, t))
		if err != nil {
			return err
		}
		if t == reached {
			first = f
		}
	}
	if !first {
		return nil
	}
	text := fmt.Sprintf("the team has spent %s of its %s budget for %s (%d%%)", spent, budget, m, int64(spent)*100/int64(budget))
	if reached >= 100 {
		text += "; new training is refused until an admin raises it with /contourpose budget set USD"
	}
	return w.alert(ctx, text)
}

// alert posts to the alert channel (the notifier's default).
func (w *Watchdog) alert(ctx context.Context, text string) error {
	w.log.Warn("alert", "text", text)
	return w.svc.notifier.Alert(ctx, w.lastChannel(ctx), text)
}

// lastChannel is the channel of the newest job: where alerts go when no
// alert channel is configured.
func (w *Watchdog) lastChannel(ctx context.Context) string {
	js, err := w.svc.store.Jobs(ctx, JobFilter{Limit: 1})
	if err != nil || len(js) == 0 {
		return ""
	}
	return js[0].Spec.Channel
}

// checkOrphans reports cpbot-… instances that no live job owns, then, after
// OrphanGrace, terminates them. Instances without the prefix are never
// touched.
func (w *Watchdog) checkOrphans(ctx context.Context, live []*Job, now time.Time) error {
	insts, err := w.svc.cloud.ListInstances(ctx)
	if err != nil {
		return fmt.Errorf("list instances: %w", err)
	}
	owned := map[string]bool{}
	for _, j := range live {
		if j.InstanceID != "" {
			owned[j.InstanceID] = true
		}
		if j.InstanceName != "" {
			owned[j.InstanceName] = true
		}
	}
	var errs []error
	for _, in := range insts {
		if !strings.HasPrefix(in.Name, InstancePrefix) || owned[in.ID] || owned[in.Name] ||
			in.Status == lambda.StatusTerminated || in.Status == lambda.StatusTerminating {
			continue
		}
		if err := w.orphan(ctx, in, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (w *Watchdog) orphan(ctx context.Context, in lambda.Instance, now time.Time) error {
	seen, err := w.firstSeen(ctx, "orphan-seen:"+in.ID, now)
	if err != nil {
		return err
	}
	age := now.Sub(seen)
	cost := Cost(PriceFromCents(in.InstanceType.PriceCentsPerHour), seen, now)
	first, err := w.svc.store.Once(ctx, "alert:orphan:"+in.ID)
	if err != nil {
		return err
	}
	if first {
		what := "report only (CPBOT_ORPHAN_GRACE=0)"
		if w.cfg.OrphanGrace > 0 {
			what = fmt.Sprintf("it will be terminated in %s unless a job claims it", roundDuration(w.cfg.OrphanGrace-age))
		}
		if err := w.alert(ctx, fmt.Sprintf("orphan instance %s (%s, %s, %s) is running with no cpbot job: seen %s ago, about %s so far; %s",
			in.Name, in.ID, in.InstanceType.Name, in.Region.Name, roundDuration(age), cost, what)); err != nil {
			return err
		}
	}
	if w.cfg.OrphanGrace <= 0 || age < w.cfg.OrphanGrace {
		return nil
	}
	if _, err := w.svc.cloud.Terminate(ctx, in.ID); err != nil && !lambda.IsNotFound(err) {
		return fmt.Errorf("terminate orphan %s: %w", in.ID, err)
	}
	if first, err := w.svc.store.Once(ctx, "alert:orphan-reaped:"+in.ID); err == nil && first {
		return w.alert(ctx, fmt.Sprintf("terminated orphan instance %s (%s) after %s, about %s", in.Name, in.ID, roundDuration(age), cost))
	}
	return nil
}

// firstSeen returns when key was first recorded, recording now if never.
func (w *Watchdog) firstSeen(ctx context.Context, key string, now time.Time) (time.Time, error) {
	v, ok, err := w.svc.store.Setting(ctx, key)
	if err != nil {
		return now, err
	}
	if ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t, nil
		}
	}
	return now, w.svc.store.SetSetting(ctx, key, now.UTC().Format(time.RFC3339Nano))
}
