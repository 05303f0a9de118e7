package lambdatest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

const testPubKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICN+lJwsONkwrdsSnQsu1ydUkIuIg5oOC+Eslvmtt60T test"

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// machine records how it was started and whether it was closed.
type machine struct {
	ip     string
	keys   []string
	mu     sync.Mutex
	closed int
}

func (m *machine) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed++
	return nil
}

func (m *machine) Closed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

type fixture struct {
	srv    *lambdatest.Server
	clock  *clock
	client *lambda.Client
}

func newFixture(t *testing.T, opts lambdatest.Options) *fixture {
	t.Helper()
	c := newClock()
	if opts.Now == nil {
		opts.Now = c.Now
	}
	srv := lambdatest.NewServer(opts)
	t.Cleanup(srv.Close)
	srv.AddSSHKey("cpbot", testPubKey)
	client, err := lambda.NewClient(lambda.Config{
		BaseURL: srv.URL(), APIKey: srv.APIKey(),
		RequestsPerSecond: -1, LaunchInterval: lambda.NoLaunchSpacing, MaxRetries: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{srv: srv, clock: c, client: client}
}

func (f *fixture) launch(t *testing.T, name string) string {
	t.Helper()
	id, err := f.client.Launch(context.Background(), lambda.LaunchRequest{
		Name: name, RegionName: "us-east-1", InstanceTypeName: "gpu_1x_a10", SSHKeyName: "cpbot",
	})
	if err != nil {
		t.Fatalf("launch %s: %v", name, err)
	}
	return id
}

func (f *fixture) status(t *testing.T, id string) lambda.Instance {
	t.Helper()
	inst, err := f.client.GetInstance(context.Background(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return inst
}

// post sends a raw JSON request and returns the status and error code.
func post(t *testing.T, srv *lambdatest.Server, key, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&env)
	return resp.StatusCode, env.Error.Code
}

func TestLifecycleAndBilling(t *testing.T) {
	var started []*machine
	var mu sync.Mutex
	f := newFixture(t, lambdatest.Options{
		BootDelay:      4 * time.Minute,
		TerminateDelay: time.Minute,
		NewMachine: func(ip string, keys []string) (lambdatest.Machine, error) {
			mu.Lock()
			defer mu.Unlock()
			m := &machine{ip: ip, keys: keys}
			started = append(started, m)
			return m, nil
		},
	})
	id := f.launch(t, "cpbot-1-1")

	inst := f.status(t, id)
	if inst.Status != lambda.StatusBooting || inst.IP != "" {
		t.Fatalf("just launched: status %q ip %q, want booting without ip", inst.Status, inst.IP)
	}
	if f.srv.Machine(id) != nil {
		t.Fatal("machine started while booting")
	}
	f.clock.Advance(4*time.Minute - time.Second)
	if got := f.status(t, id).Status; got != lambda.StatusBooting {
		t.Fatalf("before boot delay: %q", got)
	}
	f.clock.Advance(time.Second)
	inst = f.status(t, id)
	if inst.Status != lambda.StatusActive || inst.IP == "" {
		t.Fatalf("after boot delay: status %q ip %q", inst.Status, inst.IP)
	}
	m, ok := f.srv.Machine(id).(*machine)
	if !ok || m.ip != inst.IP || !slices.Equal(m.keys, []string{testPubKey}) {
		t.Fatalf("machine = %+v, want ip %s and the registered key", m, inst.IP)
	}

	f.clock.Advance(90 * time.Second) // 5m30s since launch
	term, err := f.client.Terminate(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(term) != 1 || term[0].Status != lambda.StatusTerminating {
		t.Fatalf("terminate answered %+v, want one terminating instance", term)
	}
	if m.Closed() != 0 {
		t.Fatal("machine closed while terminating")
	}
	f.clock.Advance(time.Minute) // terminated at 6m30s
	if got := f.status(t, id).Status; got != lambda.StatusTerminated {
		t.Fatalf("after terminate delay: %q", got)
	}
	if m.Closed() != 1 || f.srv.Machine(id) != nil {
		t.Fatalf("machine closed %d times, Machine() = %v", m.Closed(), f.srv.Machine(id))
	}
	f.clock.Advance(time.Hour) // billing stopped at termination
	if got := f.srv.BilledMinutes(id); got != 7 {
		t.Errorf("BilledMinutes = %d, want 7 (6m30s, per started minute)", got)
	}
	if got := f.srv.CostCents(id); got != 9 { // 7 * 75 / 60 = 8.75 -> 9
		t.Errorf("CostCents = %d, want 9", got)
	}
	if f.srv.Launches() != 1 || len(started) != 1 {
		t.Errorf("Launches = %d, machines = %d, want 1 and 1", f.srv.Launches(), len(started))
	}
}

func TestLaunchValidation(t *testing.T) {
	f := newFixture(t, lambdatest.Options{})
	base := `"region_name":"us-east-1","instance_type_name":"gpu_1x_a10"`
	tests := []struct {
		name, body string
		status     int
		code       string
	}{
		{"ok", `{` + base + `,"ssh_key_names":["cpbot"],"quantity":1}`, 200, ""},
		{"quantity 2", `{` + base + `,"ssh_key_names":["cpbot"],"quantity":2}`, 400, lambda.CodeInvalidParameters},
		{"no ssh key", `{` + base + `,"ssh_key_names":[]}`, 400, lambda.CodeInvalidParameters},
		{"two ssh keys", `{` + base + `,"ssh_key_names":["cpbot","cpbot"]}`, 400, lambda.CodeInvalidParameters},
		{"unknown ssh key", `{` + base + `,"ssh_key_names":["nope"]}`, 400, lambda.CodeInvalidParameters},
		{"unknown type", `{"region_name":"us-east-1","instance_type_name":"gpu_9x_z","ssh_key_names":["cpbot"]}`, 400, lambda.CodeInvalidParameters},
		{"unknown region", `{"region_name":"mars-1","instance_type_name":"gpu_1x_a10","ssh_key_names":["cpbot"]}`, 400, lambda.CodeInvalidParameters},
		{"long name", `{` + base + `,"ssh_key_names":["cpbot"],"name":"` + strings.Repeat("n", 65) + `"}`, 400, lambda.CodeInvalidParameters},
		{"unknown file system", `{` + base + `,"ssh_key_names":["cpbot"],"file_system_names":["x"]}`, 404, lambda.CodeObjectDoesNotExist},
		{"not json", `{`, 400, lambda.CodeInvalidParameters},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, code := post(t, f.srv, f.srv.APIKey(), "/instance-operations/launch", tt.body)
			if status != tt.status || code != tt.code {
				t.Fatalf("got %d %q, want %d %q", status, code, tt.status, tt.code)
			}
		})
	}
	if got := f.srv.Launches(); got != 1 {
		t.Errorf("Launches = %d, want 1 (only the valid request)", got)
	}
}

func TestAuthAndUnknownRoute(t *testing.T) {
	f := newFixture(t, lambdatest.Options{})
	if status, code := post(t, f.srv, "wrong", "/instance-operations/launch", `{}`); status != 401 || code != lambda.CodeInvalidAPIKey {
		t.Errorf("wrong key: %d %q", status, code)
	}
	if status, code := post(t, f.srv, f.srv.APIKey(), "/no-such-thing", `{}`); status != 404 || code != lambda.CodeNotFound {
		t.Errorf("unknown route: %d %q", status, code)
	}
	reqs := f.srv.Requests()
	if len(reqs) != 2 || reqs[0].Status != 401 || reqs[0].ErrorCode != lambda.CodeInvalidAPIKey ||
		reqs[0].Operation != lambdatest.OpLaunch || reqs[0].Path != "/api/v1/instance-operations/launch" ||
		string(reqs[0].Body) != "{}" || !reqs[0].Time.Equal(f.clock.Now()) {
		t.Errorf("request log = %+v", reqs)
	}
}

func TestDistinctLoopbackIPs(t *testing.T) {
	f := newFixture(t, lambdatest.Options{})
	seen := map[string]bool{}
	for range 300 {
		if _, err := f.srv.AddInstance(lambdatest.Seed{InstanceTypeName: "gpu_1x_a10", RegionName: "us-west-1", Status: lambda.StatusActive}); err != nil {
			t.Fatal(err)
		}
	}
	for _, inst := range f.srv.Instances() {
		addr, err := netip.ParseAddr(inst.IP)
		if err != nil || !addr.IsLoopback() || inst.IP == "127.0.0.1" || seen[inst.IP] {
			t.Fatalf("bad or repeated ip %q (err %v)", inst.IP, err)
		}
		seen[inst.IP] = true
	}
}

func TestFaultInjection(t *testing.T) {
	ctx := context.Background()
	t.Run("fail next", func(t *testing.T) {
		f := newFixture(t, lambdatest.Options{})
		f.srv.FailNext(lambdatest.OpListInstances, http.StatusServiceUnavailable, 2)
		for i, want := range []int{503, 503, 200} {
			_, err := f.client.ListInstances(ctx)
			var apiErr *lambda.APIError
			if got := 200; errors.As(err, &apiErr) {
				got = apiErr.Status
				if got != want {
					t.Fatalf("call %d: status %d, want %d", i, got, want)
				}
			} else if want != 200 || err != nil {
				t.Fatalf("call %d: err %v, want status %d", i, err, want)
			}
		}
	})
	t.Run("terminate failure leaves instance running", func(t *testing.T) {
		f := newFixture(t, lambdatest.Options{})
		id := f.launch(t, "cpbot-2-1")
		f.srv.FailTerminate(1)
		if _, err := f.client.Terminate(ctx, id); err == nil {
			t.Fatal("terminate succeeded despite FailTerminate")
		}
		if got := f.status(t, id).Status; got != lambda.StatusActive {
			t.Fatalf("status %q, want active", got)
		}
		if _, err := f.client.Terminate(ctx, id); err != nil {
			t.Fatalf("second terminate: %v", err)
		}
	})
	t.Run("capacity and advertising", func(t *testing.T) {
		f := newFixture(t, lambdatest.Options{})
		f.srv.SetCapacity("gpu_1x_a10", "us-east-1", false)
		_, err := f.client.Launch(ctx, lambda.LaunchRequest{RegionName: "us-east-1", InstanceTypeName: "gpu_1x_a10", SSHKeyName: "cpbot"})
		if !lambda.IsCapacity(err) {
			t.Fatalf("launch err = %v, want capacity", err)
		}
		f.srv.SetAdvertised("gpu_1x_a10", "us-east-1", true)
		types, err := f.client.ListInstanceTypes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(types, func(a lambda.InstanceTypeAvailability) bool { return a.InstanceType.Name == "gpu_1x_a10" })
		if i < 0 || !slices.ContainsFunc(types[i].RegionsWithCapacityAvailable, func(r lambda.Region) bool { return r.Name == "us-east-1" }) {
			t.Fatalf("advertised capacity missing from listing: %+v", types)
		}
	})
	t.Run("quota", func(t *testing.T) {
		f := newFixture(t, lambdatest.Options{})
		f.srv.SetQuota(1)
		f.launch(t, "a")
		_, err := f.client.Launch(ctx, lambda.LaunchRequest{Name: "b", RegionName: "us-east-1", InstanceTypeName: "gpu_1x_a10", SSHKeyName: "cpbot"})
		if !lambda.IsQuotaExceeded(err) {
			t.Fatalf("err = %v, want quota exceeded", err)
		}
	})
	t.Run("launch creates then answers 500", func(t *testing.T) {
		f := newFixture(t, lambdatest.Options{})
		f.srv.FailLaunchAfterCreate(1)
		_, err := f.client.Launch(ctx, lambda.LaunchRequest{Name: "cpbot-3-1", RegionName: "us-east-1", InstanceTypeName: "gpu_1x_a10", SSHKeyName: "cpbot"})
		if !errors.Is(err, lambda.ErrAmbiguousLaunch) {
			t.Fatalf("err = %v, want ambiguous", err)
		}
		if got := f.srv.Instances(); len(got) != 1 || got[0].Name != "cpbot-3-1" {
			t.Fatalf("instances = %+v, want the one created", got)
		}
	})
	t.Run("unhealthy on boot and machine failure", func(t *testing.T) {
		f := newFixture(t, lambdatest.Options{
			NewMachine: func(ip string, _ []string) (lambdatest.Machine, error) {
				return nil, errors.New("port in use")
			},
		})
		f.srv.UnhealthyOnBoot(1)
		a := f.launch(t, "a")
		b := f.launch(t, "b")
		for _, id := range []string{a, b} {
			if got := f.status(t, id); got.Status != lambda.StatusUnhealthy || got.IP == "" {
				t.Errorf("%s: status %q ip %q, want unhealthy with ip", id, got.Status, got.IP)
			}
		}
	})
	t.Run("seeded and preempted instances", func(t *testing.T) {
		var m *machine
		f := newFixture(t, lambdatest.Options{
			NewMachine: func(ip string, keys []string) (lambdatest.Machine, error) {
				m = &machine{ip: ip, keys: keys}
				return m, nil
			},
		})
		inst, err := f.srv.AddInstance(lambdatest.Seed{Name: "someone-elses", InstanceTypeName: "gpu_8x_a100",
			RegionName: "us-east-1", SSHKeyNames: []string{"cpbot"}, Status: lambda.StatusActive,
			LaunchedAt: f.clock.Now().Add(-2 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if inst.Status != lambda.StatusActive || m == nil || f.srv.BilledMinutes(inst.ID) != 120 {
			t.Fatalf("seeded %+v, machine %v, billed %d", inst, m, f.srv.BilledMinutes(inst.ID))
		}
		if err := f.srv.Preempt(inst.ID); err != nil {
			t.Fatal(err)
		}
		if got := f.status(t, inst.ID).Status; got != lambda.StatusPreempted || m.Closed() != 1 {
			t.Fatalf("after preempt: %q, closed %d", got, m.Closed())
		}
		if _, err := f.srv.AddInstance(lambdatest.Seed{InstanceTypeName: "nope", RegionName: "us-east-1"}); err == nil {
			t.Error("AddInstance accepted an unknown type")
		}
	})
}

func TestForgetTerminated(t *testing.T) {
	f := newFixture(t, lambdatest.Options{ForgetTerminatedAfter: 10 * time.Minute})
	id := f.launch(t, "x")
	if _, err := f.client.Terminate(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(5 * time.Minute)
	if got := f.status(t, id).Status; got != lambda.StatusTerminated {
		t.Fatalf("status %q", got)
	}
	f.clock.Advance(5 * time.Minute)
	if _, err := f.client.GetInstance(context.Background(), id); !lambda.IsNotFound(err) {
		t.Fatalf("forgotten instance: err %v, want not found", err)
	}
	if len(f.srv.Instances()) != 1 {
		t.Error("Instances() should still hold the forgotten instance")
	}
}

func TestSSHKeys(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lambdatest.Options{})
	gen, err := f.client.AddSSHKey(ctx, "generated", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(gen.PublicKey, "ssh-ed25519 ") || !strings.Contains(gen.PrivateKey, "PRIVATE KEY") {
		t.Fatalf("generated key = %+v", gen)
	}
	if _, err := f.client.AddSSHKey(ctx, "generated", testPubKey); err == nil {
		t.Fatal("duplicate name accepted")
	}
	if _, err := f.client.AddSSHKey(ctx, "junk", "not a key"); err == nil {
		t.Fatal("malformed key accepted")
	}
	keys, err := f.client.ListSSHKeys(ctx)
	if err != nil || len(keys) != 2 || slices.ContainsFunc(keys, func(k lambda.SSHKey) bool { return k.PrivateKey != "" }) {
		t.Fatalf("keys = %+v, err %v", keys, err)
	}
	if err := f.client.DeleteSSHKey(ctx, gen.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.client.DeleteSSHKey(ctx, gen.ID); !lambda.IsNotFound(err) {
		t.Fatalf("second delete: %v, want not found", err)
	}
}

func TestFileSystemsAndRegions(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, lambdatest.Options{})
	f.srv.AddFileSystem("data", "us-west-1")
	_, err := f.client.Launch(ctx, lambda.LaunchRequest{RegionName: "us-east-1", InstanceTypeName: "gpu_1x_a10", SSHKeyName: "cpbot", FileSystemNames: []string{"data"}})
	var apiErr *lambda.APIError
	if !errors.As(err, &apiErr) || apiErr.Code != lambda.CodeFileSystemWrongRegion {
		t.Fatalf("wrong-region launch: %v", err)
	}
	if _, err := f.client.Launch(ctx, lambda.LaunchRequest{RegionName: "us-west-1", InstanceTypeName: "gpu_1x_a10", SSHKeyName: "cpbot", FileSystemNames: []string{"data"}}); err != nil {
		t.Fatal(err)
	}
	fss, err := f.client.ListFileSystems(ctx)
	if err != nil || len(fss) != 1 || !fss[0].IsInUse || fss[0].Region.Name != "us-west-1" {
		t.Fatalf("file systems = %+v, err %v", fss, err)
	}
	regions, err := f.client.ListRegions(ctx)
	if err != nil || len(regions) != len(lambdatest.DefaultRegions()) {
		t.Fatalf("regions = %+v, err %v", regions, err)
	}
}

func TestBasicAuth(t *testing.T) {
	f := newFixture(t, lambdatest.Options{})
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL()+"/regions", bytes.NewReader(nil))
	req.SetBasicAuth(f.srv.APIKey(), "")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("basic auth: status %d", resp.StatusCode)
	}
}
