package lambda_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

const testPubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICN+lJwsONkwrdsSnQsu1ydUkIuIg5oOC+Eslvmtt60T test"

// fakeClock is a settable clock for the fake cloud.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newCloud starts a fake cloud with the "cpbot" key registered.
func newCloud(t testing.TB, opts lambdatest.Options) *lambdatest.Server {
	t.Helper()
	srv := lambdatest.NewServer(opts)
	t.Cleanup(srv.Close)
	srv.AddSSHKey("cpbot", testPubKey)
	return srv
}

// newClient returns a client of srv with fast retries and no rate limits
// unless cfg says otherwise.
func newClient(t testing.TB, srv *lambdatest.Server, cfg lambda.Config) *lambda.Client {
	t.Helper()
	cfg.BaseURL = srv.URL()
	if cfg.APIKey == "" {
		cfg.APIKey = srv.APIKey()
	}
	if cfg.RequestsPerSecond == 0 {
		cfg.RequestsPerSecond = -1
	}
	if cfg.LaunchInterval == 0 {
		cfg.LaunchInterval = lambda.NoLaunchSpacing
	}
	if cfg.RetryBaseDelay == 0 {
		cfg.RetryBaseDelay = time.Millisecond
	}
	c, err := lambda.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var a10East = lambda.LaunchRequest{Name: "cpbot-1-1", RegionName: "us-east-1", InstanceTypeName: "gpu_1x_a10", SSHKeyName: "cpbot"}

// count returns how many logged requests had operation op.
func count(srv *lambdatest.Server, op string) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Operation == op {
			n++
		}
	}
	return n
}

func TestClientLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2025, 5, 1, 9, 0, 0, 0, time.UTC)}
	srv := newCloud(t, lambdatest.Options{Now: clk.Now, BootDelay: 3 * time.Minute, TerminateDelay: 30 * time.Second})
	c := newClient(t, srv, lambda.Config{})

	id, err := c.Launch(ctx, a10East)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance time.Duration
		action  func() error
		status  string
		hasIP   bool
	}{
		{0, nil, lambda.StatusBooting, false},
		{3 * time.Minute, nil, lambda.StatusActive, true},
		{10 * time.Minute, func() error { _, err := c.Terminate(ctx, id); return err }, lambda.StatusTerminating, true},
		{30 * time.Second, nil, lambda.StatusTerminated, true},
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		if st.action != nil {
			if err := st.action(); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
		inst, err := c.GetInstance(ctx, id)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if inst.Status != st.status || (inst.IP != "") != st.hasIP {
			t.Fatalf("step %d: status %q ip %q, want %q with ip=%v", i, inst.Status, inst.IP, st.status, st.hasIP)
		}
		if inst.Name != a10East.Name || inst.InstanceType.PriceCentsPerHour != 75 || inst.Region.Name != "us-east-1" {
			t.Fatalf("step %d: instance %+v", i, inst)
		}
	}
	if got := srv.BilledMinutes(id); got != 14 { // 13m30s, per started minute
		t.Errorf("BilledMinutes = %d, want 14", got)
	}
	found, ok, err := c.FindInstanceByName(ctx, a10East.Name)
	if err != nil || !ok || found.ID != id {
		t.Errorf("FindInstanceByName = %+v, %v, %v", found, ok, err)
	}
	if _, ok, err := c.FindInstanceByName(ctx, "cpbot-none"); ok || err != nil {
		t.Errorf("FindInstanceByName(missing) = %v, %v", ok, err)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		op        string
		status    int
		failures  int
		call      func(c *lambda.Client) error
		wantCalls int
		wantErr   bool
	}{
		{"get 503 recovers", lambdatest.OpListInstances, 503, 2, listInstances, 3, false},
		{"get 429 recovers", lambdatest.OpListRegions, 429, 1, listRegions, 2, false},
		{"get 500 gives up after max retries", lambdatest.OpListInstances, 500, 10, listInstances, 4, true},
		{"terminate 502 recovers", lambdatest.OpTerminate, 502, 1, terminateSeeded, 2, false},
		{"delete 503 recovers", lambdatest.OpDeleteSSHKey, 503, 2, deleteCpbotKey, 3, false},
		{"add key 500 not retried", lambdatest.OpAddSSHKey, 500, 1, addKey, 1, true},
		{"add key 429 retried", lambdatest.OpAddSSHKey, 429, 1, addKey, 2, false},
		{"400 not retried", lambdatest.OpListInstances, 400, 1, listInstances, 1, true},
		{"launch 429 retried", lambdatest.OpLaunch, 429, 2, launch, 3, false},
		{"launch 429 gives up", lambdatest.OpLaunch, 429, 9, launch, 4, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newCloud(t, lambdatest.Options{})
			if _, err := srv.AddInstance(lambdatest.Seed{Name: "seed", InstanceTypeName: "gpu_1x_a10", RegionName: "us-east-1"}); err != nil {
				t.Fatal(err)
			}
			c := newClient(t, srv, lambda.Config{MaxRetries: 3})
			srv.FailNext(tt.op, tt.status, tt.failures)
			err := tt.call(c)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := count(srv, tt.op); got != tt.wantCalls {
				t.Fatalf("%s requests = %d, want %d", tt.op, got, tt.wantCalls)
			}
			if tt.wantErr && errors.Is(err, lambda.ErrAmbiguousLaunch) {
				t.Fatalf("err %v must not be ambiguous", err)
			}
		})
	}
}

func listInstances(c *lambda.Client) error {
	_, err := c.ListInstances(context.Background())
	return err
}
func listRegions(c *lambda.Client) error { _, err := c.ListRegions(context.Background()); return err }
func launch(c *lambda.Client) error      { _, err := c.Launch(context.Background(), a10East); return err }
func addKey(c *lambda.Client) error {
	_, err := c.AddSSHKey(context.Background(), "extra", testPubKey)
	return err
}

func terminateSeeded(c *lambda.Client) error {
	found, ok, err := c.FindInstanceByName(context.Background(), "seed")
	if err != nil || !ok {
		return fmt.Errorf("seed not found: %v", err)
	}
	_, err = c.Terminate(context.Background(), found.ID)
	return err
}

func deleteCpbotKey(c *lambda.Client) error {
	keys, err := c.ListSSHKeys(context.Background())
	if err != nil || len(keys) == 0 {
		return fmt.Errorf("no keys: %v", err)
	}
	return c.DeleteSSHKey(context.Background(), keys[0].ID)
}

func TestRetryAfterHonoured(t *testing.T) {
	srv := newCloud(t, lambdatest.Options{})
	c := newClient(t, srv, lambda.Config{})
	srv.FailNextRetryAfter(lambdatest.OpListRegions, http.StatusTooManyRequests, 1, time.Second)
	if _, err := c.ListRegions(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("requests = %d, want 2", len(reqs))
	}
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < time.Second {
		t.Fatalf("retried after %v, want at least the 1s Retry-After", gap)
	}
}

func TestAmbiguousLaunch(t *testing.T) {
	ctx := context.Background()
	t.Run("created but answered 500", func(t *testing.T) {
		srv := newCloud(t, lambdatest.Options{})
		c := newClient(t, srv, lambda.Config{MaxRetries: 4})
		srv.FailLaunchAfterCreate(1)
		_, err := c.Launch(ctx, a10East)
		if !errors.Is(err, lambda.ErrAmbiguousLaunch) {
			t.Fatalf("err = %v, want ErrAmbiguousLaunch", err)
		}
		var apiErr *lambda.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != 500 {
			t.Fatalf("err = %v, want the 500 inside", err)
		}
		if got := count(srv, lambdatest.OpLaunch); got != 1 {
			t.Fatalf("launch requests = %d, want exactly 1", got)
		}
		inst, ok, err := c.FindInstanceByName(ctx, a10East.Name)
		if err != nil || !ok || inst.Status != lambda.StatusActive {
			t.Fatalf("FindInstanceByName = %+v, %v, %v", inst, ok, err)
		}
	})
	t.Run("5xx without creating", func(t *testing.T) {
		srv := newCloud(t, lambdatest.Options{})
		c := newClient(t, srv, lambda.Config{})
		srv.FailNext(lambdatest.OpLaunch, 503, 1)
		if _, err := c.Launch(ctx, a10East); !errors.Is(err, lambda.ErrAmbiguousLaunch) {
			t.Fatalf("err = %v, want ambiguous", err)
		}
		if got := count(srv, lambdatest.OpLaunch); got != 1 {
			t.Fatalf("launch requests = %d, want 1", got)
		}
		if _, ok, _ := c.FindInstanceByName(ctx, a10East.Name); ok {
			t.Fatal("found an instance that was never created")
		}
	})
	t.Run("transport failure", func(t *testing.T) {
		srv := newCloud(t, lambdatest.Options{})
		ft := &failingTransport{fail: 1}
		c := newClient(t, srv, lambda.Config{HTTPClient: &http.Client{Transport: ft}})
		if _, err := c.Launch(ctx, a10East); !errors.Is(err, lambda.ErrAmbiguousLaunch) {
			t.Fatalf("err = %v, want ambiguous", err)
		}
		if ft.calls() != 1 {
			t.Fatalf("transport saw %d launch attempts, want 1", ft.calls())
		}
		// The same failure on a GET is retried.
		ft.reset(2)
		if _, err := c.ListInstances(ctx); err != nil {
			t.Fatalf("list after 2 transport failures: %v", err)
		}
		if ft.calls() != 3 {
			t.Fatalf("transport saw %d list attempts, want 3", ft.calls())
		}
	})
	t.Run("timeout", func(t *testing.T) {
		srv := newCloud(t, lambdatest.Options{})
		ft := &failingTransport{delay: time.Second}
		c := newClient(t, srv, lambda.Config{HTTPClient: &http.Client{Transport: ft}, RequestTimeout: 20 * time.Millisecond})
		if _, err := c.Launch(ctx, a10East); !errors.Is(err, lambda.ErrAmbiguousLaunch) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want ambiguous deadline exceeded", err)
		}
		if ft.calls() != 1 {
			t.Fatalf("attempts = %d, want 1", ft.calls())
		}
	})
}

// failingTransport fails the first n round trips, or delays each by delay.
type failingTransport struct {
	mu    sync.Mutex
	fail  int
	n     int
	delay time.Duration
}

func (f *failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	f.n++
	fail := f.n <= f.fail
	f.mu.Unlock()
	if fail {
		return nil, errors.New("connection reset by peer")
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (f *failingTransport) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *failingTransport) reset(fail int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n, f.fail = 0, fail
}

func TestCancelledContextStopsRetries(t *testing.T) {
	srv := newCloud(t, lambdatest.Options{})
	c := newClient(t, srv, lambda.Config{RetryBaseDelay: time.Hour, MaxRetryDelay: time.Hour})
	srv.FailNext(lambdatest.OpListInstances, 503, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.ListInstances(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if got := count(srv, lambdatest.OpListInstances); got != 1 {
		t.Fatalf("requests = %d, want 1", got)
	}
}

func TestNewClientRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  lambda.Config
	}{
		{"no key", lambda.Config{}},
		{"bad url", lambda.Config{APIKey: "k", BaseURL: "ftp://x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := lambda.NewClient(tt.cfg); err == nil {
				t.Fatal("NewClient accepted a bad config")
			}
		})
	}
	c, err := lambda.NewClient(lambda.Config{APIKey: "k"})
	if err != nil || !strings.Contains(c.String(), lambda.DefaultBaseURL) {
		t.Fatalf("default client %v, err %v", c, err)
	}
}

func TestKeyRedaction(t *testing.T) {
	const key = "secret_live_5f3a9c2e7b_DO_NOT_PRINT"
	srv := newCloud(t, lambdatest.Options{APIKey: key})
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newClient(t, srv, lambda.Config{APIKey: key, Logger: logger, MaxRetries: 1})
	bad := newClient(t, srv, lambda.Config{APIKey: key + "x", Logger: logger})

	ctx := context.Background()
	srv.FailNext(lambdatest.OpListInstances, 503, 2)
	_, errList := c.ListInstances(ctx)
	_, errAuth := bad.ListInstances(ctx)
	if !lambda.IsUnauthorized(errAuth) {
		t.Fatalf("bad key: %v", errAuth)
	}
	_, errLaunch := c.Launch(ctx, lambda.LaunchRequest{RegionName: "x", InstanceTypeName: "y", SSHKeyName: "z"})
	logger.Info("client", "client", c, "config", lambda.Config{APIKey: key})

	cfg := lambda.Config{APIKey: key}
	outputs := map[string]string{
		"fmt client":  fmt.Sprintf("%v %+v %#v %s", c, c, c, c),
		"fmt value":   fmt.Sprintf("%v %+v %#v", *c, *c, *c),
		"fmt config":  fmt.Sprintf("%v %+v %#v %s", cfg, cfg, &cfg, cfg),
		"list error":  fmt.Sprint(errList),
		"auth error":  fmt.Sprintf("%v %+v", errAuth, errAuth),
		"launch err":  fmt.Sprint(errLaunch),
		"slog output": logs.String(),
	}
	for name, out := range outputs {
		if strings.Contains(out, key) || strings.Contains(out, "5f3a9c2e7b") {
			t.Errorf("%s reveals the key: %s", name, out)
		}
	}
	if errList == nil || errLaunch == nil || !strings.Contains(logs.String(), "lambda retry") {
		t.Fatalf("test did not exercise errors and logs: %v %v %q", errList, errLaunch, logs.String())
	}
}

func TestRateLimits(t *testing.T) {
	ctx := context.Background()
	t.Run("requests per second", func(t *testing.T) {
		const rps, n = 20, 11
		srv := newCloud(t, lambdatest.Options{})
		c := newClient(t, srv, lambda.Config{RequestsPerSecond: rps})
		for range n + 1 { // the first warms the connection
			if _, err := c.ListRegions(ctx); err != nil {
				t.Fatal(err)
			}
		}
		reqs := srv.Requests()[1:]
		span := reqs[len(reqs)-1].Time.Sub(reqs[0].Time)
		// Arrival jitter on either end is tolerated.
		if want := time.Duration(n-1) * time.Second / rps; span < want-25*time.Millisecond {
			t.Fatalf("%d requests spanned %v, want at least %v", n, span, want)
		}
	})
	t.Run("launch interval", func(t *testing.T) {
		const interval = 150 * time.Millisecond
		srv := newCloud(t, lambdatest.Options{})
		c := newClient(t, srv, lambda.Config{LaunchInterval: interval})
		if _, err := c.ListRegions(ctx); err != nil { // warm the connection
			t.Fatal(err)
		}
		for i := range 4 {
			req := a10East
			req.Name = fmt.Sprintf("cpbot-%d-1", i)
			if _, err := c.Launch(ctx, req); err != nil {
				t.Fatal(err)
			}
			if _, err := c.ListInstances(ctx); err != nil { // not spaced by the launch limit
				t.Fatal(err)
			}
		}
		var launches []time.Time
		for _, r := range srv.Requests() {
			if r.Operation == lambdatest.OpLaunch {
				launches = append(launches, r.Time)
			}
		}
		// The limiter spaces the sends; the fake sees arrivals, which
		// jitter on a loaded machine: any k+1 consecutive launches span at
		// least k intervals, less one jitter.
		const jitter = 25 * time.Millisecond
		for i := 1; i < len(launches); i++ {
			for k := 1; k <= i; k++ {
				if span := launches[i].Sub(launches[i-k]); span < time.Duration(k)*interval-jitter {
					t.Fatalf("launches %d..%d span %v, want at least %v", i-k, i, span, time.Duration(k)*interval)
				}
			}
		}
	})
}

func BenchmarkClientListInstances(b *testing.B) {
	srv := newCloud(b, lambdatest.Options{})
	for i := range 10 {
		if _, err := srv.AddInstance(lambdatest.Seed{Name: fmt.Sprintf("cpbot-%d-1", i), InstanceTypeName: "gpu_1x_a10", RegionName: "us-east-1", Status: lambda.StatusActive}); err != nil {
			b.Fatal(err)
		}
	}
	c := newClient(b, srv, lambda.Config{RequestsPerSecond: 1e9})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		insts, err := c.ListInstances(ctx)
		if err != nil || len(insts) != 10 {
			b.Fatalf("list = %d, %v", len(insts), err)
		}
	}
}
