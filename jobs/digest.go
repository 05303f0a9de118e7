package jobs

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Digest posts the daily spend digest once per day: yesterday's jobs, this
// month's spend by user and the month to date against the team budget.
func (w *Watchdog) Digest(ctx context.Context) error {
	now := w.svc.cfg.Now()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	yesterday := today.AddDate(0, 0, -1)
	first, err := w.svc.store.Once(ctx, "digest:"+yesterday.Format("2006-01-02"))
	if err != nil || !first {
		return err
	}
	text, err := w.digestText(ctx, yesterday, today, now)
	if err != nil {
		return err
	}
	return w.alert(ctx, text)
}

func (w *Watchdog) digestText(ctx context.Context, from, to, now time.Time) (string, error) {
	recent, err := w.svc.store.Jobs(ctx, JobFilter{Since: from.AddDate(0, 0, -31)})
	if err != nil {
		return "", fmt.Errorf("jobs: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cpbot daily digest for %s\n", from.Format("Mon 2 Jan 2006"))
	n := 0
	for _, j := range recent {
		started := !j.CreatedAt.Before(from) && j.CreatedAt.Before(to)
		ended := j.Finished() && !j.FinishedAt.Before(from) && j.FinishedAt.Before(to)
		if !started && !ended {
			continue
		}
		n++
		state := string(j.State)
		if j.Finished() {
			state = string(j.Outcome)
		}
		fmt.Fprintf(&b, "• %s by <@%s>: %s, %d/%d epochs, %s\n", j.Label(), j.Spec.Requester, state, j.Progress.Epoch, j.Spec.Epochs, j.Cost(now))
	}
	if n == 0 {
		b.WriteString("• no jobs started or ended\n")
	}
	m := month(now)
	spent, byUser, err := w.svc.store.Spend(ctx, m)
	if err != nil {
		return "", fmt.Errorf("spend: %w", err)
	}
	budget, err := w.svc.TeamBudget(ctx)
	if err != nil {
		return "", err
	}
	users := make([]string, 0, len(byUser))
	for u := range byUser {
		users = append(users, u)
	}
	sort.Slice(users, func(i, k int) bool { return byUser[users[i]] > byUser[users[k]] })
	fmt.Fprintf(&b, "month to date (%s): %s of %s", m, spent, budget)
	if budget > 0 {
		fmt.Fprintf(&b, " (%d%%)", int64(spent)*100/int64(budget))
	}
	for _, u := range users {
		fmt.Fprintf(&b, "\n  <@%s> %s", u, byUser[u])
	}
	return b.String(), nil
}
