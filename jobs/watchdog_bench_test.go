package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cpbot/cpbot/internal/testenv"
	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// BenchmarkWatchdogTick measures one watchdog tick over 500 live jobs, each
// training on its own instance of the fake cloud (target < 50 ms of the
// bot's own work; the fake answers on loopback).
func BenchmarkWatchdogTick(b *testing.B) {
	const n = 500
	tw := testenv.New(b, testenv.Options{})
	ctx := context.Background()
	clk := newClock()
	now := clk.Now()
	batch := make([]*jobs.Job, 0, n)
	insts := make([]lambda.Instance, n)
	for i := range n {
		in, err := tw.Cloud.AddInstance(lambdatest.Seed{Name: fmt.Sprintf("cpbot-%d-1", i+1), InstanceTypeName: "gpu_1x_a100",
			RegionName: "us-west-1", Status: lambda.StatusActive})
		if err != nil {
			b.Fatal(err)
		}
		insts[i] = in
		batch = append(batch, &jobs.Job{Spec: jobs.Spec{Class: "obj1", Epochs: 150, Batch: 8, LR: 0.001,
			Budget: jobs.USD(1000), Requester: fmt.Sprint("U", i%7), Channel: "C0ONE"}})
	}
	created, _, err := tw.DB.CreateJobs(ctx, "", batch)
	if err != nil {
		b.Fatal(err)
	}
	for i, j := range created {
		in := insts[i]
		for _, to := range []jobs.State{jobs.StateLaunching, jobs.StateBooting, jobs.StatePreparing, jobs.StateTraining} {
			if _, err := tw.DB.UpdateJob(ctx, j.ID, "", func(x *jobs.Job) error {
				x.State = to
				x.InstanceID, x.InstanceName, x.InstanceType = in.ID, in.Name, "gpu_1x_a100"
				x.PricePerHour = jobs.PriceFromCents(129)
				x.LaunchedAt, x.BusyAt, x.ReachedAt = now.Add(-time.Hour), now, now
				return nil
			}); err != nil {
				b.Fatal(err)
			}
		}
	}
	cfg := tw.Config
	cfg.Now = clk.Now
	cfg.TeamBudget = jobs.USD(1e6)
	svc := jobs.NewService(cfg, tw.DB, newRecorder(), tw.Client) // not opened: no runners
	wd := jobs.NewWatchdog(svc, jobs.WatchdogConfig{OrphanGrace: time.Hour})
	b.ResetTimer()
	for range b.N {
		if err := wd.Tick(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	live, _ := tw.DB.Jobs(ctx, jobs.JobFilter{Unfinished: true})
	for _, j := range live {
		if j.StopRequest != "" {
			b.Fatalf("#%d was stopped: %s", j.ID, j.StopReason)
		}
	}
}
