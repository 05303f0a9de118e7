package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/cpbot/cpbot/bot"
	"github.com/cpbot/cpbot/internal/fixture"
	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// runDemo runs the bot against an in-process fake Lambda Cloud whose
// instances are simulated SSH hosts, with the terminal as the chat. It needs
// no credentials; it leaves its data (store, logs, checkpoints, the loss
// chart) in a temporary directory it names, for a look afterwards.
func (m *Main) runDemo(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "cpbot-demo-")
	if err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "cpbot.log"))
	if err != nil {
		return err
	}
	m.onClose(logFile.Close)
	if m.Logger == nil {
		m.Logger = slog.New(slog.NewJSONHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}

	c := &m.Config
	c.DataDir = filepath.Join(dir, "data")
	c.CodeDir = filepath.Join(dir, "ContourPose")
	c.DatasetDir = filepath.Join(c.CodeDir, "data")
	if err := fixture.WriteCodeDir(c.CodeDir); err != nil {
		return err
	}
	if err := fixture.WriteDatasetDir(c.DatasetDir); err != nil {
		return err
	}

	sim := lambdatest.NewSim(lambdatest.HostConfig{Root: filepath.Join(dir, "instances"),
		Trainer: lambdatest.TrainerConfig{ItersPerEpoch: 4, IterSleep: 400 * time.Millisecond}})
	m.onClose(sim.Close)
	cloud := lambdatest.NewServer(lambdatest.Options{BootDelay: 3 * time.Second, TerminateDelay: time.Second, NewMachine: sim.NewMachine})
	m.onClose(func() error { cloud.Close(); return nil })

	c.LambdaRPS, c.LaunchInterval = 50, 0
	c.Watchdog, c.IdleAfter = "@every 5s", time.Minute
	console := &bot.Console{Out: m.Stdout, Dir: filepath.Join(dir, "uploads")}
	a, err := m.open(ctx, wiring{lambdaURL: cloud.URL(), lambdaKey: cloud.APIKey(), sshPort: sim.Port(), poster: console,
		tune: func(jc *jobs.Config, bc *bot.Config) {
			jc.PollInterval = 500 * time.Millisecond
			jc.BootTimeout = time.Minute
			jc.SSHGrace = 30 * time.Second
			bc.UpdateEvery = time.Second
		}})
	if err != nil {
		return err
	}
	m.demoHTTP(a)
	fmt.Fprintf(m.Stdout, "cpbot demo: a fake Lambda Cloud with simulated GPU instances; data in %s\n", dir)
	fmt.Fprintln(m.Stdout, "type a command such as `train obj1 3`, `gpus`, `jobs`, `cost` or `help`; Ctrl-D to finish")
	if err := a.bot.RunConsole(ctx, m.Stdin); err != nil {
		return err
	}
	// The input ended: let the jobs already started finish.
	for ctx.Err() == nil {
		live, err := a.svc.List(ctx, jobs.JobFilter{Unfinished: true})
		if err != nil || len(live) == 0 {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Let the last thread replies and card updates out.
	if err := a.bot.Close(); err != nil {
		return err
	}
	fmt.Fprintln(m.Stdout, "cpbot demo: done; every instance terminated:", allTerminated(cloud))
	return nil
}

func allTerminated(cloud *lambdatest.Server) bool {
	for _, in := range cloud.Instances() {
		if in.Status != "terminated" {
			return false
		}
	}
	return true
}

// demoHTTP serves /healthz and /metrics in the demo only when
// CPBOT_HTTP_ADDR was set explicitly; a busy port is reported, not fatal.
func (m *Main) demoHTTP(a *app) {
	if !m.Config.HTTPAddrSet {
		return
	}
	ln, err := m.listenHTTP()
	if err != nil {
		m.Logger.Warn("demo without /healthz and /metrics", "system", "http", "err", err)
		fmt.Fprintln(m.Stdout, "cpbot demo:", err)
		return
	}
	if ln == nil {
		return
	}
	m.serveHTTP(ln, newHTTPHandler(m.health(a, func() bool { return true }), m.metrics))
	fmt.Fprintf(m.Stdout, "cpbot demo: /healthz and /metrics on http://%s\n", ln.Addr())
}
