package jobs

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// SettingTeamBudget is the setting that overrides the configured monthly
// team budget, in micro-dollars.
const SettingTeamBudget = "team_budget"

// bootOverhead is what a forecast adds for boot, setup and upload.
const bootOverhead = 10 * time.Minute

// TeamBudget returns the monthly team budget in force.
func (s *Service) TeamBudget(ctx context.Context) (Money, error) {
	v, ok, err := s.store.Setting(ctx, SettingTeamBudget)
	if err != nil || !ok {
		return s.cfg.TeamBudget, err
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return s.cfg.TeamBudget, fmt.Errorf("parse stored team budget %q: %w", v, err)
	}
	return Money(n), nil
}

// SetTeamBudget changes the monthly team budget. Only admins may.
func (s *Service) SetTeamBudget(ctx context.Context, m Money, admin bool) error {
	if !admin {
		return Errorf(EFORBIDDEN, "only an admin can change the team budget")
	}
	if m <= 0 {
		return Errorf(EINVALID, "the budget must be positive")
	}
	return s.store.SetSetting(ctx, SettingTeamBudget, strconv.FormatInt(int64(m), 10))
}

// MonthSpend returns this month's spend: total and by user.
func (s *Service) MonthSpend(ctx context.Context) (Money, map[string]Money, error) {
	return s.store.Spend(ctx, month(s.cfg.Now()))
}

// checkBudget refuses a launch when the team budget is used up, or when a
// forecast from measured history (same class and GPU type) exceeds the job's
// budget or what is left of the team's. With no history it allows the
// launch; the watchdog enforces the cap.
func (s *Service) checkBudget(ctx context.Context, classes, types []string, epochs int, jobBudget Money) error {
	team, err := s.TeamBudget(ctx)
	if err != nil {
		return err
	}
	spent, _, err := s.MonthSpend(ctx)
	if err != nil {
		return fmt.Errorf("month spend: %w", err)
	}
	if spent >= team {
		return Errorf(EBUDGET, "the team has spent %s of its %s budget this month; an admin can raise it with /contourpose budget set USD", spent, team)
	}
	history, err := s.store.Jobs(ctx, JobFilter{Limit: 500})
	if err != nil {
		return fmt.Errorf("job history: %w", err)
	}
	var total Money
	for _, c := range classes {
		f, ok := forecastFromHistory(history, c, types[0], epochs)
		if !ok {
			continue
		}
		if f > jobBudget {
			return Errorf(EBUDGET, "%s for %d epochs is forecast at %s on %s from past runs, over the job budget of %s; pass --budget or train fewer epochs", c, epochs, f, types[0], jobBudget)
		}
		total += f
	}
	if total > team-spent {
		return Errorf(EBUDGET, "this request is forecast at %s from past runs; the team has %s left of its %s budget this month", total, team-spent, team)
	}
	return nil
}

// forecastFromHistory estimates a run's cost from the mean seconds per epoch
// of finished runs of the same class on the same instance type.
func forecastFromHistory(history []*Job, class, typ string, epochs int) (Money, bool) {
	var secs float64
	var n int
	var price Money
	for _, j := range history {
		if j.Spec.Class != class || j.InstanceType != typ || j.Progress.EpochSeconds <= 0 || j.PricePerHour <= 0 {
			continue
		}
		secs += j.Progress.EpochSeconds
		price = j.PricePerHour
		n++
	}
	if n == 0 {
		return 0, false
	}
	d := time.Duration(secs/float64(n)*float64(epochs))*time.Second + bootOverhead
	base := time.Unix(0, 0) // Cost bills nothing from a zero launch time
	return Cost(price, base, base.Add(d)), true
}
