package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpbot/cpbot/bot/slacktest"
	"github.com/cpbot/cpbot/internal/fixture"
	"github.com/cpbot/cpbot/internal/testenv"
	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// syncBuffer is a bytes.Buffer safe for the logger and the test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// realRun is Main in its real (Slack) mode against the fake Slack and the
// fake Lambda Cloud with simulated instances.
type realRun struct {
	main   *Main
	slack  *slacktest.Server
	cloud  *lambdatest.Server
	logs   *syncBuffer
	data   string
	cancel context.CancelFunc
	done   chan error
}

func startRealRun(t *testing.T) *realRun {
	t.Helper()
	sim := lambdatest.NewSim(lambdatest.HostConfig{Root: t.TempDir(),
		Trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 5 * time.Millisecond}})
	t.Cleanup(func() { sim.Close() })
	cloud := lambdatest.NewServer(lambdatest.Options{BootDelay: 50 * time.Millisecond, TerminateDelay: 30 * time.Millisecond, NewMachine: sim.NewMachine})
	t.Cleanup(cloud.Close)
	sl := slacktest.NewServer()
	t.Cleanup(sl.Close)
	code := t.TempDir()
	if err := fixture.WriteCodeDir(code); err != nil {
		t.Fatal(err)
	}
	dataset := filepath.Join(code, "data")
	if err := fixture.WriteDatasetDir(dataset); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "cpbot-data")
	for k, v := range map[string]string{
		"SLACK_APP_TOKEN": sl.AppToken(), "SLACK_BOT_TOKEN": sl.BotToken(), "SLACK_API_URL": sl.URL() + "/api/",
		"LAMBDA_API_KEY": cloud.APIKey(), "LAMBDA_API_URL": cloud.URL(),
		"CPBOT_DATA_DIR": data, "CPBOT_CODE_DIR": code, "CPBOT_DATASET_DIR": dataset,
		"CPBOT_SSH_PORT": strconv.Itoa(sim.Port()), "CPBOT_HTTP_ADDR": "127.0.0.1:0",
		"CPBOT_LAMBDA_RPS": "100", "CPBOT_LAUNCH_INTERVAL": "0",
		"CPBOT_POLL_INTERVAL": "50ms", "CPBOT_BOOT_TIMEOUT": "30s",
		"CPBOT_USERS": "", "CPBOT_ADMINS": "", "CPBOT_REGIONS": "", "CPBOT_TRAIN_COMMAND": "",
	} {
		t.Setenv(k, v)
	}
	r := &realRun{slack: sl, cloud: cloud, logs: &syncBuffer{}, data: data, done: make(chan error, 1)}
	r.main = &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: r.logs}
	if err := r.main.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	// Debug level: stricter than a real run, every request line included.
	r.main.Logger = slog.New(slog.NewJSONHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.main.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop ends the run and waits for it; safe to call twice.
func (r *realRun) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	<-r.done
	r.main.Close()
}

// get fetches a path of the bot's HTTP server.
func (r *realRun) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + r.main.HTTPAddr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRealRunLogsNoSecrets runs the real wiring through a whole training
// job and checks the logs: JSON lines, each naming its system, job lines
// naming the job, and none holding a token, the API key or the SSH private
// key. On the way it checks /healthz and /metrics of the real wiring.
func TestRealRunLogsNoSecrets(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a whole job")
	}
	r := startRealRun(t)
	testenv.WaitFor(t, 20*time.Second, "the HTTP server and the Slack connection", func() bool {
		return r.main.HTTPAddr() != "" && r.slack.Connected()
	})
	testenv.WaitFor(t, 10*time.Second, "/healthz to say 200", func() bool {
		code, _ := r.get(t, "/healthz")
		return code == http.StatusOK
	})
	_, body := r.get(t, "/healthz")
	var hr HealthReport
	if err := json.Unmarshal([]byte(body), &hr); err != nil || !hr.Slack || !hr.Store || !hr.Lambda || hr.LambdaLastOK == "" {
		t.Errorf("healthz body %s (%v)", body, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := r.slack.SendSlashCommand(ctx, slacktest.SlashCommand{UserID: "U1", ChannelID: "C0ONE", Text: "train obj1 1"}); err != nil {
		t.Fatal(err)
	}
	succeeded := func() bool {
		for _, m := range r.slack.Messages("C0ONE") {
			if strings.Contains(m.Text, "succeeded") {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(40 * time.Second)
	for !succeeded() {
		if time.Now().After(deadline) {
			var texts []string
			for _, m := range r.slack.Messages("C0ONE") {
				texts = append(texts, m.Text)
			}
			t.Fatalf("the job did not succeed; messages:\n%s\nlogs:\n%s", strings.Join(texts, "\n"), r.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, metrics := r.get(t, "/metrics")
	for _, want := range []string{
		`cpbot_jobs{state="finished"} 1`,
		`cpbot_lambda_requests_total{code="200",operation="launchInstance"} 1`,
		`cpbot_lambda_requests_total{code="200",operation="addSSHKey"} 1`,
		`cpbot_slack_requests_total{code="200",method="apps.connections.open"}`,
		`cpbot_slack_requests_total{code="200",method="chat.postMessage"}`,
		`cpbot_rate_limited_total{api="lambda"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	_, health := r.get(t, "/healthz")
	r.stop()

	logs := r.logs.String()
	key, err := os.ReadFile(filepath.Join(r.data, lambda.PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{"SLACK_APP_TOKEN": r.slack.AppToken(), "SLACK_BOT_TOKEN": r.slack.BotToken(), "LAMBDA_API_KEY": r.cloud.APIKey()}
	for i, line := range strings.Split(string(key), "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			secrets["SSH private key line "+strconv.Itoa(i)] = line
		}
	}
	if len(secrets) < 4 {
		t.Fatalf("the private key file has no body:\n%s", key)
	}
	for name, s := range secrets {
		if s == "" {
			t.Fatalf("%s is empty", name)
		}
		for where, text := range map[string]string{"the logs": logs, "/metrics": metrics, "/healthz": health} {
			if strings.Contains(text, s) {
				t.Errorf("%s hold %s", where, name)
			}
		}
	}

	var jobLines, lines int
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		lines++
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not a JSON line: %s", line)
			continue
		}
		if _, ok := rec["system"]; !ok {
			t.Errorf("no system: %s", line)
		}
		if rec["system"] == "jobs" {
			// What the job service and runners say is about a job. (The
			// SSH connections' lines name the instance; the jobs package
			// would have to hand its runner's logger to DialRemote for
			// them to name the job.)
			if _, ok := rec["job"]; !ok {
				t.Errorf("a job line without the job id: %s", line)
			}
		}
		if rec["job"] == float64(1) {
			jobLines++
		}
	}
	if jobLines == 0 {
		t.Errorf("no line names job 1 among %d:\n%s", lines, logs)
	}
	t.Logf("%d log lines, %d about job 1", lines, jobLines)
	if testing.Verbose() {
		t.Log(logs)
	}
}
