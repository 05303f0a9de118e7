package e2e_test

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cpbot/cpbot/bot/slacktest"
	"github.com/cpbot/cpbot/internal/fixture"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// botBin is the bot binary built once by TestMain.
var botBin string

func TestMain(m *testing.M) {
	flag.Parse()
	parallelSet := false
	flag.Visit(func(f *flag.Flag) { parallelSet = parallelSet || f.Name == "test.parallel" })
	if !parallelSet {
		// The scenarios mostly wait on Slack's pacing, not on the CPU.
		flag.Set("test.parallel", "16")
	}
	dir, err := os.MkdirTemp("", "cpbot-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	botBin = filepath.Join(dir, "cpbot")
	if !testing.Short() {
		out, err := exec.Command("go", "build", "-o", botBin, "github.com/cpbot/cpbot/cmd/bot").CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: build the bot: %v\n%s", err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Ids of the fake workspace the scenarios use.
const (
	alertChannel = "C0ALERTS"
	chanA        = "C0ALPHA1"
	chanB        = "C0BRAVO2"
	userA        = "U0ALICE01"
	userB        = "U0BOB0002"
	admin        = "U0ADMIN01"
)

// options shape a world. Zero values give fast timings.
type options struct {
	// Trainer is the simulated trainer's pace and mode; default 2
	// iterations per epoch, 20 ms each.
	Trainer lambdatest.TrainerConfig
	// BootDelay is how long instances stay booting; default 100 ms.
	BootDelay time.Duration
	// Env overrides or adds bot environment variables.
	Env map[string]string
	// Cloud, if set, runs on the fake cloud before the bot starts.
	Cloud func(*lambdatest.Server)
	// Overload marks a run that saturates the machine on purpose (the
	// 100-job memory benchmark): request arrival times at the fake jitter
	// by more than the pacing check allows, so it is skipped. The pacing
	// is checked by every test.
	Overload bool
}

// world is one bot process and the fakes it talks to.
type world struct {
	t       testing.TB
	Slack   *slacktest.Server
	Cloud   *lambdatest.Server
	Sim     *lambdatest.Sim
	SimRoot string
	DataDir string
	env     []string
	logDir  string
	logs    []string    // stderr files, one per process started
	starts  []time.Time // when each process was started
	proc    *exec.Cmd
	done    chan error // the process's Wait result
	// BootDelay is the fake's boot delay.
	BootDelay time.Duration
}

// newWorld builds the fakes and starts the bot. Everything is stopped
// and checked (secrets, Slack pacing) when the test ends.
func newWorld(t testing.TB, o options) *world {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the bot binary")
	}
	if o.Trainer.ItersPerEpoch == 0 {
		o.Trainer.ItersPerEpoch = 2
		if o.Trainer.IterSleep == 0 {
			o.Trainer.IterSleep = 20 * time.Millisecond
		}
	}
	if o.BootDelay == 0 {
		o.BootDelay = 100 * time.Millisecond
	}
	w := &world{t: t, SimRoot: t.TempDir(), DataDir: t.TempDir(), logDir: t.TempDir(), BootDelay: o.BootDelay}
	w.Slack = slacktest.NewServer()
	t.Cleanup(w.Slack.Close)
	w.Sim = lambdatest.NewSim(lambdatest.HostConfig{Root: w.SimRoot, Trainer: o.Trainer})
	t.Cleanup(func() { w.Sim.Close() })
	w.Cloud = lambdatest.NewServer(lambdatest.Options{BootDelay: o.BootDelay, TerminateDelay: 30 * time.Millisecond, NewMachine: w.Sim.NewMachine})
	t.Cleanup(w.Cloud.Close)
	if o.Cloud != nil {
		o.Cloud(w.Cloud)
	}
	code, data := t.TempDir(), filepath.Join(t.TempDir(), "data")
	must(t, fixture.WriteCodeDir(code))
	must(t, fixture.WriteDatasetDir(data))

	env := map[string]string{
		"SLACK_API_URL":           w.Slack.URL() + "/api/",
		"SLACK_APP_TOKEN":         w.Slack.AppToken(),
		"SLACK_BOT_TOKEN":         w.Slack.BotToken(),
		"LAMBDA_API_URL":          w.Cloud.URL(),
		"LAMBDA_API_KEY":          w.Cloud.APIKey(),
		"CPBOT_SSH_PORT":          fmt.Sprint(w.Sim.Port()),
		"CPBOT_CODE_DIR":          code,
		"CPBOT_DATASET_DIR":       data,
		"CPBOT_DATA_DIR":          w.DataDir,
		"CPBOT_POLL_INTERVAL":     "200ms",
		"CPBOT_LAUNCH_INTERVAL":   "0",
		"CPBOT_LAMBDA_RPS":        "100",
		"CPBOT_WATCHDOG_SCHEDULE": "@every 1s",
		"CPBOT_IDLE_AFTER":        "10m",
		"CPBOT_ORPHAN_GRACE":      "0",
		"CPBOT_HTTP_ADDR":         "",
		"CPBOT_BOOT_TIMEOUT":      "30s",
	}
	for k, v := range o.Env {
		env[k] = v
	}
	// Nothing of the caller's own configuration leaks in.
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !strings.HasPrefix(k, "SLACK_") && !strings.HasPrefix(k, "LAMBDA_") && !strings.HasPrefix(k, "CPBOT_") {
			w.env = append(w.env, kv)
		}
	}
	for k, v := range env {
		w.env = append(w.env, k+"="+v)
	}
	t.Cleanup(func() {
		w.Stop()
		w.checkSecrets()
		if !t.Failed() && !o.Overload {
			w.assertPaced()
		}
		if t.Failed() {
			w.dumpLogs(60)
		}
	})
	w.Start()
	return w
}

// Start starts a bot process on the world's data dir and waits until it
// has connected to the fake Slack.
func (w *world) Start() {
	w.t.Helper()
	if w.proc != nil {
		w.t.Fatal("start: a bot process is already running")
	}
	before := w.Slack.Connections()
	path := filepath.Join(w.logDir, fmt.Sprintf("bot-%d.log", len(w.logs)+1))
	f, err := os.Create(path)
	must(w.t, err)
	w.logs = append(w.logs, path)
	cmd := exec.Command(botBin)
	cmd.Env = w.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		w.t.Fatalf("start the bot: %v", err)
	}
	w.starts = append(w.starts, time.Now())
	w.proc, w.done = cmd, make(chan error, 1)
	go func() { w.done <- cmd.Wait(); f.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for w.Slack.Connections() <= before || !w.Slack.Connected() {
		select {
		case err := <-w.done:
			w.proc = nil
			w.dumpLogs(40)
			w.t.Fatalf("the bot exited before connecting: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatal("the bot did not connect to Slack within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// PID returns the running bot's process id.
func (w *world) PID() int { return w.proc.Process.Pid }

// Stop ends the bot gracefully: SIGTERM, then SIGKILL after 10 s.
func (w *world) Stop() {
	if w.proc == nil {
		return
	}
	w.proc.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			w.t.Errorf("bot wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		w.t.Errorf("the bot did not stop within 10s of SIGTERM; killing it")
		w.proc.Process.Kill()
		<-w.done
	}
	w.proc = nil
}

// Kill ends the bot with SIGKILL, as a crash or a power cut would.
func (w *world) Kill() {
	w.t.Helper()
	if w.proc == nil {
		return
	}
	must(w.t, w.proc.Process.Kill())
	<-w.done
	w.proc = nil
}

// logText returns everything every bot process of the world wrote.
func (w *world) logText() string {
	var b strings.Builder
	for _, p := range w.logs {
		body, err := os.ReadFile(p)
		if err == nil {
			b.Write(body)
		}
	}
	return b.String()
}

// dumpLogs prints the last n lines of the bot's output to the test log.
func (w *world) dumpLogs(n int) {
	lines := strings.Split(strings.TrimSpace(w.logText()), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	w.t.Logf("last %d lines of the bot's stderr:\n%s", len(lines), strings.Join(lines, "\n"))
}

// waitFor polls cond every 20 ms until it holds, failing the test after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
