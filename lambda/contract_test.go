package lambda_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/internal/openapi"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

const specPath = "../../shared/reference/lambda/lambda-cloud-openapi-1.10.0.json"

// exchange is one request the client sent and the answer the fake gave.
type exchange struct {
	method, path string
	reqBody      []byte
	status       int
	respBody     []byte
}

// recorder is an http.RoundTripper that keeps every exchange.
type recorder struct {
	mu  sync.Mutex
	log []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		reqBody, _ = io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	r.mu.Lock()
	r.log = append(r.log, exchange{req.Method, req.URL.Path, reqBody, resp.StatusCode, respBody})
	r.mu.Unlock()
	return resp, nil
}

var routes = []struct {
	method string
	path   *regexp.Regexp
	op     string
}{
	{"GET", regexp.MustCompile(`^/api/v1/instance-types$`), "listInstanceTypes"},
	{"POST", regexp.MustCompile(`^/api/v1/instance-operations/launch$`), "launchInstance"},
	{"POST", regexp.MustCompile(`^/api/v1/instance-operations/terminate$`), "terminateInstance"},
	{"GET", regexp.MustCompile(`^/api/v1/instances$`), "listInstances"},
	{"GET", regexp.MustCompile(`^/api/v1/instances/[^/]+$`), "getInstance"},
	{"GET", regexp.MustCompile(`^/api/v1/ssh-keys$`), "listSSHKeys"},
	{"POST", regexp.MustCompile(`^/api/v1/ssh-keys$`), "addSSHKey"},
	{"DELETE", regexp.MustCompile(`^/api/v1/ssh-keys/[^/]+$`), "deleteSSHKey"},
	{"GET", regexp.MustCompile(`^/api/v1/file-systems$`), "listFilesystems"},
	{"GET", regexp.MustCompile(`^/api/v1/regions$`), "listRegions"},
}

func operationOf(method, path string) string {
	for _, r := range routes {
		if r.method == method && r.path.MatchString(path) {
			return r.op
		}
	}
	return ""
}

// undocumented are error envelopes for statuses the spec leaves out of
// these operations (rate limits, server errors).
var undocumented = map[int]openapi.Schema{
	429: envelope(map[string]any{
		"type": "object", "required": []any{"code", "message"},
		"properties": map[string]any{"code": map[string]any{"type": "string"}, "message": map[string]any{"type": "string"}, "suggestion": map[string]any{"type": "string"}},
	}),
	500: envelope(map[string]any{"$ref": "#/components/schemas/ApiErrorInternal"}),
	503: envelope(map[string]any{"$ref": "#/components/schemas/ApiErrorInternal"}),
}

func envelope(inner map[string]any) openapi.Schema {
	return openapi.Schema{
		"type": "object", "additionalProperties": false, "required": []any{"error"},
		"properties": map[string]any{"error": inner},
	}
}

// driveEverything makes the client use every operation, on success and on
// the failures the bot meets, against a fake cloud.
func driveEverything(t *testing.T, rec *recorder) {
	t.Helper()
	ctx := context.Background()
	clk := &fakeClock{t: time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)}
	srv := newCloud(t, lambdatest.Options{Now: clk.Now, BootDelay: time.Minute, TerminateDelay: time.Minute})
	c := newClient(t, srv, lambda.Config{HTTPClient: &http.Client{Transport: rec}, MaxRetries: 1})
	wrong := newClient(t, srv, lambda.Config{APIKey: "wrong", HTTPClient: &http.Client{Transport: rec}})
	srv.AddFileSystem("datasets", "us-east-1")

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.ListInstanceTypes(ctx)
	must(err)
	_, err = c.ListRegions(ctx)
	must(err)
	_, err = c.ListFileSystems(ctx)
	must(err)
	key, err := c.AddSSHKey(ctx, "bot", testPubKey)
	must(err)
	_, err = c.AddSSHKey(ctx, "generated", "")
	must(err)
	_, err = c.ListSSHKeys(ctx)
	must(err)
	req := a10East
	req.FileSystemNames = []string{"datasets"}
	id, err := c.Launch(ctx, req)
	must(err)
	_, err = c.GetInstance(ctx, id) // booting, no ip
	must(err)
	clk.Advance(time.Minute)
	_, err = c.ListInstances(ctx) // active
	must(err)
	_, err = c.Terminate(ctx, id)
	must(err)
	clk.Advance(time.Minute)
	_, err = c.GetInstance(ctx, id) // terminated
	must(err)
	must(c.DeleteSSHKey(ctx, key.ID))

	// Failures: each must come back as an error.
	srv.SetCapacity("gpu_1x_a10", "us-west-1", false)
	failures := []func() error{
		func() error { _, err := wrong.ListInstances(ctx); return err },
		func() error { _, err := c.GetInstance(ctx, "does-not-exist"); return err },
		func() error { _, err := c.Terminate(ctx, "does-not-exist"); return err },
		func() error { return c.DeleteSSHKey(ctx, "does-not-exist") },
		func() error { _, err := c.AddSSHKey(ctx, "generated", testPubKey); return err },
		func() error {
			_, err := c.Launch(ctx, lambda.LaunchRequest{RegionName: "us-west-1", InstanceTypeName: "gpu_1x_a10", SSHKeyName: "cpbot"})
			return err
		},
		func() error {
			_, err := c.Launch(ctx, lambda.LaunchRequest{RegionName: "us-east-1", InstanceTypeName: "gpu_1x_a10", SSHKeyName: "nope"})
			return err
		},
		func() error {
			_, err := c.Launch(ctx, lambda.LaunchRequest{RegionName: "us-west-1", InstanceTypeName: "gpu_1x_a100", SSHKeyName: "cpbot", FileSystemNames: []string{"datasets"}})
			return err
		},
		func() error {
			srv.SetQuota(1)
			if _, err := c.Launch(ctx, a10East); err != nil {
				return nil // the first launch, within quota, must succeed
			}
			_, err := c.Launch(ctx, a10East)
			return err
		},
		func() error { srv.FailNext(lambdatest.OpListRegions, 429, 5); _, err := c.ListRegions(ctx); return err },
		func() error {
			srv.FailNext(lambdatest.OpListInstances, 503, 5)
			_, err := c.ListInstances(ctx)
			return err
		},
		func() error {
			srv.FailLaunchAfterCreate(1)
			srv.SetQuota(0)
			_, err := c.Launch(ctx, a10East)
			return err
		},
	}
	for i, f := range failures {
		if err := f(); err == nil {
			t.Fatalf("failure case %d succeeded", i)
		}
	}
}

// TestContract checks every request body the client sends and every answer
// the fake gives against Lambda's OpenAPI document.
func TestContract(t *testing.T) {
	doc, err := openapi.Load(specPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	driveEverything(t, rec)

	seenOK := map[string]bool{}
	statuses := map[int]bool{}
	for i, ex := range rec.log {
		op := operationOf(ex.method, ex.path)
		if op == "" {
			t.Errorf("exchange %d: %s %s matches no operation", i, ex.method, ex.path)
			continue
		}
		if len(ex.reqBody) > 0 {
			s, err := doc.RequestSchema(op)
			if err != nil {
				t.Errorf("exchange %d: %v", i, err)
			} else if err := doc.Validate(s, ex.reqBody); err != nil {
				t.Errorf("%s request %s does not fit the spec: %v", op, ex.reqBody, err)
			}
		}
		s, err := doc.ResponseSchema(op, ex.status)
		if err != nil {
			var ok bool
			if s, ok = undocumented[ex.status]; !ok {
				t.Errorf("%s answered %d, which the spec does not document", op, ex.status)
				continue
			}
		}
		if err := doc.Validate(s, ex.respBody); err != nil {
			t.Errorf("%s %d answer does not fit the spec: %v\n%s", op, ex.status, err, ex.respBody)
		}
		statuses[ex.status] = true
		if ex.status == 200 {
			seenOK[op] = true
		}
	}
	for _, r := range routes {
		if !seenOK[r.op] {
			t.Errorf("operation %s never succeeded in the contract run", r.op)
		}
	}
	for _, st := range []int{400, 401, 404, 429, 500, 503} {
		if !statuses[st] {
			t.Errorf("no %d answer was checked", st)
		}
	}
}

// TestContractCatchesRenames shows the contract check fails when a client
// request or a fake answer renames or drops a required field.
func TestContractCatchesRenames(t *testing.T) {
	doc, err := openapi.Load(specPath)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	driveEverything(t, rec)
	find := func(op string, status int, wantReq bool) exchange {
		for _, ex := range rec.log {
			if operationOf(ex.method, ex.path) == op && ex.status == status && (!wantReq || len(ex.reqBody) > 0) {
				return ex
			}
		}
		t.Fatalf("no %s %d exchange recorded", op, status)
		return exchange{}
	}
	launchEx := find("launchInstance", 200, true)
	getEx := find("getInstance", 200, false)
	typesEx := find("listInstanceTypes", 200, false)
	authEx := find("listInstances", 401, false)
	tests := []struct {
		name, op string
		status   int // 0: check the request body
		body     []byte
		from, to string
	}{
		{"client renames ssh_key_names", "launchInstance", 0, launchEx.reqBody, `"ssh_key_names"`, `"ssh_keys"`},
		{"client renames region_name", "launchInstance", 0, launchEx.reqBody, `"region_name"`, `"region"`},
		{"fake renames file_system_names", "getInstance", 200, getEx.respBody, `"file_system_names"`, `"filesystems"`},
		{"fake drops actions", "getInstance", 200, getEx.respBody, `"actions"`, `"x_actions"`},
		{"fake renames price", "listInstanceTypes", 200, typesEx.respBody, `"price_cents_per_hour"`, `"price"`},
		{"fake changes error code", "listInstances", 401, authEx.respBody, `global/invalid-api-key`, `global/bad-key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s openapi.Schema
			if tt.status == 0 {
				s, err = doc.RequestSchema(tt.op)
			} else {
				s, err = doc.ResponseSchema(tt.op, tt.status)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := doc.Validate(s, tt.body); err != nil {
				t.Fatalf("original body already invalid: %v", err)
			}
			bad := strings.ReplaceAll(string(tt.body), tt.from, tt.to)
			if bad == string(tt.body) {
				t.Fatalf("%q not in %s", tt.from, tt.body)
			}
			if err := doc.Validate(s, []byte(bad)); err == nil {
				t.Fatalf("validator accepted %s", bad)
			}
		})
	}
}
