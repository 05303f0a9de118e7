// Package testenv builds, for tests, the world a job service lives in: a
// fake Lambda Cloud whose instances are simulated SSH hosts, the bot's SSH
// key registered with it, a ContourPose fixture checkout and dataset, and a
// real bbolt store, all under t.TempDir() and closed with the test.
package testenv

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cpbot/cpbot/internal/fixture"
	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
	"github.com/cpbot/cpbot/store"
)

// Options shape the world. Zero values give fast timings.
type Options struct {
	BootDelay time.Duration // default 50 ms
	Trainer   lambdatest.TrainerConfig
	Cloud     func(*lambdatest.Server) // fault setup before anything runs
}

// World is the fake cloud and everything a job service needs from it.
type World struct {
	Cloud   *lambdatest.Server
	Sim     *lambdatest.Sim
	Client  *lambda.Client
	DataDir string
	// SimRoot holds the simulated instances' sandboxes: the home of the
	// instance at ip is SimRoot/<ip>/home, kept after it is terminated.
	SimRoot string
	DB      *store.DB
	// Config is a job service configuration for this world with fast
	// timings; tests change what they need before use.
	Config jobs.Config
}

// New builds a world.
func New(t testing.TB, o Options) *World {
	t.Helper()
	w := &World{DataDir: t.TempDir(), SimRoot: t.TempDir()}
	if o.Trainer.ItersPerEpoch == 0 {
		o.Trainer = lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 5 * time.Millisecond}
	}
	if o.BootDelay == 0 {
		o.BootDelay = 50 * time.Millisecond
	}
	w.Sim = lambdatest.NewSim(lambdatest.HostConfig{Root: w.SimRoot, Trainer: o.Trainer})
	t.Cleanup(func() { w.Sim.Close() })
	w.Cloud = lambdatest.NewServer(lambdatest.Options{BootDelay: o.BootDelay, TerminateDelay: 30 * time.Millisecond, NewMachine: w.Sim.NewMachine})
	t.Cleanup(w.Cloud.Close)
	if o.Cloud != nil {
		o.Cloud(w.Cloud)
	}
	var err error
	w.Client, err = lambda.NewClient(lambda.Config{BaseURL: w.Cloud.URL(), APIKey: w.Cloud.APIKey(),
		RequestsPerSecond: -1, LaunchInterval: lambda.NoLaunchSpacing, RetryBaseDelay: 5 * time.Millisecond})
	must(t, err)
	signer, err := lambda.LoadOrCreateKey(w.DataDir)
	must(t, err)
	key, err := lambda.RegisterKey(context.Background(), w.Client, signer.PublicKey())
	must(t, err)
	hk, err := lambda.OpenHostKeys(w.DataDir)
	must(t, err)
	code, data := t.TempDir(), filepath.Join(t.TempDir(), "data")
	must(t, fixture.WriteCodeDir(code))
	must(t, fixture.WriteDatasetDir(data))
	w.Config = jobs.Config{CodeDir: code, DatasetDir: data, DataDir: w.DataDir, SSHKeyName: key.Name,
		SSH:          lambda.SSHConfig{User: "ubuntu", Port: w.Sim.Port(), Signer: signer, HostKeys: hk, DialTimeout: 2 * time.Second},
		PollInterval: 40 * time.Millisecond, BootTimeout: 5 * time.Second, SSHGrace: 3 * time.Second}
	w.DB, err = store.Open(filepath.Join(w.DataDir, "cpbot.db"), store.Options{})
	must(t, err)
	t.Cleanup(func() { w.DB.Close() })
	return w
}

// AssertNothingBilling fails the test unless every instance the fake cloud
// ever launched is terminated.
func (w *World) AssertNothingBilling(t testing.TB) {
	t.Helper()
	for _, in := range w.Cloud.Instances() {
		if in.Status != lambda.StatusTerminated {
			t.Errorf("instance %s (%s) is %s, want terminated", in.ID, in.Name, in.Status)
		}
	}
}

// WaitFor polls cond until it holds, failing the test after d.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitState waits until job id is in state s or finished, and fails the
// test if it finished elsewhere.
func (w *World) WaitState(t testing.TB, id int64, s jobs.State) *jobs.Job {
	t.Helper()
	var j *jobs.Job
	WaitFor(t, 30*time.Second, "job to reach "+string(s), func() bool {
		var err error
		j, err = w.DB.Job(context.Background(), id)
		return err == nil && (j.State == s || j.Finished())
	})
	if j.State != s {
		t.Fatalf("job #%d reached %s (%s: %s), want %s", id, j.State, j.Outcome, j.Reason, s)
	}
	return j
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
