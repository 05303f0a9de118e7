package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cpbot/cpbot/internal/testenv"
)

// demoMain is Main in -demo mode with the given CPBOT_HTTP_ADDR (unset if
// addr is nil), its temporary directory under the test's.
func demoMain(t *testing.T, addr *string, stdin io.Reader, stdout io.Writer) *Main {
	t.Helper()
	t.Setenv("TMPDIR", t.TempDir())
	t.Setenv("CPBOT_HTTP_ADDR", "")
	if addr == nil {
		// t.Setenv registered the restore; now make it unset.
		unsetenv(t, "CPBOT_HTTP_ADDR")
	} else {
		t.Setenv("CPBOT_HTTP_ADDR", *addr)
	}
	m := &Main{Stdin: stdin, Stdout: stdout, Stderr: io.Discard}
	if err := m.ParseFlags([]string{"-demo"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestDemoHTTP(t *testing.T) {
	t.Run("off unless set", func(t *testing.T) {
		m := demoMain(t, nil, strings.NewReader(""), io.Discard)
		if m.Config.HTTPAddr == "" || m.Config.HTTPAddrSet {
			t.Fatalf("config %q set=%v, want the default and not set", m.Config.HTTPAddr, m.Config.HTTPAddrSet)
		}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if a := m.HTTPAddr(); a != "" {
			t.Errorf("the demo served on %s without CPBOT_HTTP_ADDR", a)
		}
	})
	t.Run("served when set", func(t *testing.T) {
		addr := "127.0.0.1:0"
		in, w := io.Pipe()
		m := demoMain(t, &addr, in, io.Discard)
		done := make(chan error, 1)
		go func() { done <- m.Run(context.Background()) }()
		testenv.WaitFor(t, 20*time.Second, "the demo's HTTP server", func() bool { return m.HTTPAddr() != "" })
		resp, err := http.Get("http://" + m.HTTPAddr() + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		var hr HealthReport
		err = json.NewDecoder(resp.Body).Decode(&hr)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(hr.Down) > 0 {
			t.Errorf("healthz %d %+v (%v)", resp.StatusCode, hr, err)
		}
		resp, err = http.Get("http://" + m.HTTPAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `cpbot_lambda_requests_total{code="200",operation="addSSHKey"} 1`) {
			t.Errorf("the demo's /metrics lacks the key registration:\n%s", body)
		}
		w.Close()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("busy port is not fatal", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		addr := busy.Addr().String()
		var out syncBuffer
		m := demoMain(t, &addr, strings.NewReader(""), &out)
		if err := m.Run(context.Background()); err != nil {
			t.Fatalf("demo with a busy port: %v", err)
		}
		if !strings.Contains(out.String(), "CPBOT_HTTP_ADDR "+addr) {
			t.Errorf("the demo did not say the port is busy:\n%s", out.String())
		}
	})
}

// TestRealRunBusyPort checks that a real run refuses to start without its
// HTTP server, before it wires anything.
func TestRealRunBusyPort(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	for k, v := range map[string]string{"SLACK_APP_TOKEN": "xapp-1-test", "SLACK_BOT_TOKEN": "xoxb-test",
		"LAMBDA_API_KEY": "secret_test", "LAMBDA_API_URL": "http://127.0.0.1:1/api/v1", "SLACK_API_URL": "http://127.0.0.1:1/api/",
		"CPBOT_CODE_DIR": dir, "CPBOT_DATA_DIR": dir + "/data", "CPBOT_HTTP_ADDR": busy.Addr().String()} {
		t.Setenv(k, v)
	}
	m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}
	if err := m.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "CPBOT_HTTP_ADDR "+busy.Addr().String()) {
		t.Fatalf("Run = %v, want a CPBOT_HTTP_ADDR error", err)
	}
}

// unsetenv unsets key for the rest of the test; call t.Setenv(key, …)
// first so that the old value comes back afterwards.
func unsetenv(t *testing.T, key string) {
	t.Helper()
	if err := os.Unsetenv(key); err != nil {
		t.Fatal(err)
	}
}
