package jobs_test

import (
	"testing"
	"time"

	"github.com/cpbot/cpbot/jobs"
)

func TestCanTransition(t *testing.T) {
	all := []jobs.State{jobs.StateQueued, jobs.StateLaunching, jobs.StateBooting, jobs.StatePreparing,
		jobs.StateTraining, jobs.StateCollecting, jobs.StateTerminating, jobs.StateFinished}
	allowed := map[[2]jobs.State]bool{
		{jobs.StateQueued, jobs.StateLaunching}:       true,
		{jobs.StateLaunching, jobs.StateLaunching}:    true, // next candidate
		{jobs.StateLaunching, jobs.StateBooting}:      true,
		{jobs.StateBooting, jobs.StatePreparing}:      true,
		{jobs.StateBooting, jobs.StateLaunching}:      true, // failed boot
		{jobs.StatePreparing, jobs.StateTraining}:     true,
		{jobs.StateTraining, jobs.StateCollecting}:    true,
		{jobs.StateCollecting, jobs.StateTerminating}: true,
	}
	for _, from := range all {
		for _, to := range all {
			want := allowed[[2]jobs.State{from, to}]
			if from != jobs.StateFinished && (to == jobs.StateTerminating || to == jobs.StateFinished) {
				want = true // cancel, budget, idle, error, or nothing to terminate
			}
			if got := jobs.CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
		}
	}
}

func TestJobCost(t *testing.T) {
	launch := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	price := jobs.PriceFromCents(129) // $1.29/h
	for _, tc := range []struct {
		name string
		job  jobs.Job
		now  time.Time
		want jobs.Money
	}{
		{"never launched", jobs.Job{}, launch, 0},
		{"first second bills a minute", jobs.Job{LaunchedAt: launch, PricePerHour: price}, launch.Add(time.Second), jobs.Cost(price, launch, launch.Add(time.Minute))},
		{"an hour", jobs.Job{LaunchedAt: launch, PricePerHour: price}, launch.Add(time.Hour), jobs.USD(1.29)},
		{"spent attempts add", jobs.Job{LaunchedAt: launch, PricePerHour: price, Spent: jobs.USD(2)}, launch.Add(time.Hour), jobs.USD(3.29)},
		{"terminated: only spent", jobs.Job{PricePerHour: price, Spent: jobs.USD(2)}, launch.Add(time.Hour), jobs.USD(2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.job.Cost(tc.now); got != tc.want {
				t.Errorf("Cost = %v, want %v", got, tc.want)
			}
		})
	}
}
