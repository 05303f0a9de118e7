package jobs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cpbot/cpbot/internal/testenv"
	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// BenchmarkExitToTerminate measures the time from the trainer writing
// train.exit on the instance to the bot's terminate call reaching Lambda,
// with a 200 ms poll interval (target < 2 s).
func BenchmarkExitToTerminate(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		tw := testenv.New(b, testenv.Options{})
		cfg := tw.Config
		cfg.PollInterval = 200 * time.Millisecond
		svc := jobs.NewService(cfg, tw.DB, newRecorder(), tw.Client)
		if err := svc.Open(context.Background()); err != nil {
			b.Fatal(err)
		}
		js, err := svc.Submit(context.Background(), jobs.SubmitRequest{Classes: []string{"obj1"}, Epochs: 1, Batch: 8, LR: 0.001, Requester: "U1"})
		if err != nil {
			b.Fatal(err)
		}
		j := tw.WaitState(b, js[0].ID, jobs.StateFinished)
		exitInfo, err := os.Stat(filepath.Join(tw.SimRoot, j.IP, "home", "contourpose", fmt.Sprint(j.ID), "train.exit"))
		if err != nil {
			b.Fatal(err)
		}
		var term time.Time
		for _, r := range tw.Cloud.Requests() {
			if r.Operation == lambdatest.OpTerminate && term.IsZero() {
				term = r.Time
			}
		}
		total += term.Sub(exitInfo.ModTime())
		svc.Close()
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "s/exit-to-terminate")
}

// BenchmarkHundredJobs runs 100 concurrent simulated jobs in one process and
// reports the peak heap and goroutine count (target < 100 MB).
func BenchmarkHundredJobs(b *testing.B) {
	const n = 100
	for i := 0; i < b.N; i++ {
		tw := testenv.New(b, testenv.Options{Trainer: lambdatest.TrainerConfig{ItersPerEpoch: 3, IterSleep: 50 * time.Millisecond}})
		cfg := tw.Config
		cfg.PollInterval = 500 * time.Millisecond
		cfg.BootTimeout = 2 * time.Minute
		cfg.SSHGrace = time.Minute
		cfg.TeamBudget = jobs.USD(1e6)
		svc := jobs.NewService(cfg, tw.DB, newRecorder(), tw.Client)
		if err := svc.Open(context.Background()); err != nil {
			b.Fatal(err)
		}
		var peakHeap uint64
		peakG := 0
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				peakHeap = max(peakHeap, ms.HeapAlloc)
				peakG = max(peakG, runtime.NumGoroutine())
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		for k := 0; k < n; k++ {
			if _, err := svc.Submit(context.Background(), jobs.SubmitRequest{Classes: []string{"obj1"}, Epochs: 3, Batch: 8,
				LR: 0.001, Requester: "U1", DedupeKey: fmt.Sprint("bench-", k)}); err != nil {
				b.Fatal(err)
			}
		}
		testenv.WaitFor(b, 5*time.Minute, "100 jobs to finish", func() bool {
			live, err := tw.DB.Jobs(context.Background(), jobs.JobFilter{Unfinished: true})
			return err == nil && len(live) == 0
		})
		close(stop)
		wg.Wait()
		svc.Close()
		all, _ := tw.DB.Jobs(context.Background(), jobs.JobFilter{})
		for _, j := range all {
			if j.Outcome != jobs.OutcomeSucceeded {
				b.Errorf("#%d: %s (%s)", j.ID, j.Outcome, j.Reason)
			}
		}
		tw.AssertNothingBilling(b)
		b.ReportMetric(float64(peakHeap)/(1<<20), "MB-peak-heap")
		b.ReportMetric(float64(peakG), "peak-goroutines")
	}
}
