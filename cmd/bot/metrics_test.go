package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cpbot/cpbot/bot/slacktest"
	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
	"github.com/cpbot/cpbot/store"
)

// scrape fetches /metrics through the bot's handler and returns its
// samples: `name{label="value",…}` (labels sorted, as the format has them)
// to value.
func scrape(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	h := newHTTPHandler(&Health{}, m)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// sample looks a series up, failing the test when it is absent.
func sample(t *testing.T, samples map[string]float64, series string) float64 {
	t.Helper()
	v, ok := samples[series]
	if !ok {
		var near []string
		name, _, _ := strings.Cut(series, "{")
		for k := range samples {
			if strings.HasPrefix(k, name) {
				near = append(near, k)
			}
		}
		t.Fatalf("no series %s; have %v", series, near)
	}
	return v
}

func TestMetricsLambda(t *testing.T) {
	m := NewMetrics("v-test", nil)
	cloud := lambdatest.NewServer(lambdatest.Options{})
	t.Cleanup(cloud.Close)
	client, err := lambda.NewClient(lambda.Config{BaseURL: cloud.URL(), APIKey: cloud.APIKey(),
		HTTPClient:        &http.Client{Transport: m.LambdaTransport(nil)},
		RequestsPerSecond: -1, LaunchInterval: lambda.NoLaunchSpacing, RetryBaseDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if !m.LambdaLastOK().IsZero() {
		t.Fatal("last ok set before any call")
	}
	cloud.FailNext(lambdatest.OpListRegions, http.StatusTooManyRequests, 1)
	if _, err := client.ListRegions(ctx); err != nil { // one 429, then retried
		t.Fatal(err)
	}
	for range 2 {
		if _, err := client.ListInstances(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client.GetInstance(ctx, "0920582c7ff041399e34823a0be62549"); !lambda.IsNotFound(err) {
		t.Fatalf("get a missing instance: %v", err)
	}
	if _, err := client.ListInstanceTypes(ctx); err != nil {
		t.Fatal(err)
	}
	afterOK := m.LambdaLastOK()
	if afterOK.IsZero() {
		t.Fatal("last ok not set after successful calls")
	}

	s := scrape(t, m)
	for series, want := range map[string]float64{
		`cpbot_lambda_requests_total{code="429",operation="listRegions"}`:        1,
		`cpbot_lambda_requests_total{code="200",operation="listRegions"}`:        1,
		`cpbot_lambda_requests_total{code="200",operation="listInstances"}`:      2,
		`cpbot_lambda_requests_total{code="404",operation="getInstance"}`:        1,
		`cpbot_lambda_requests_total{code="200",operation="listInstanceTypes"}`:  1,
		`cpbot_rate_limited_total{api="lambda"}`:                                 1,
		`cpbot_rate_limited_total{api="slack"}`:                                  0,
		`cpbot_lambda_request_duration_seconds_count{operation="listRegions"}`:   2,
		`cpbot_lambda_request_duration_seconds_count{operation="listInstances"}`: 2,
		`cpbot_build_info{goversion="` + goVersion() + `",version="v-test"}`:     1,
	} {
		if got := sample(t, s, series); got != want {
			t.Errorf("%s = %g, want %g", series, got, want)
		}
	}
	if got := sample(t, s, "cpbot_lambda_last_success_timestamp_seconds"); got < float64(afterOK.Unix()) {
		t.Errorf("last success timestamp %g, want ≥ %d", got, afterOK.Unix())
	}
	if _, ok := s["go_goroutines"]; !ok {
		t.Error("the Go collector is missing")
	}

	// Failed answers do not count as Lambda being up.
	cloud.FailNext(lambdatest.OpListInstances, http.StatusInternalServerError, 10)
	noRetry, err := lambda.NewClient(lambda.Config{BaseURL: cloud.URL(), APIKey: "wrong",
		HTTPClient: &http.Client{Transport: m.LambdaTransport(nil)}, RequestsPerSecond: -1, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noRetry.ListInstanceTypes(ctx); !lambda.IsUnauthorized(err) {
		t.Fatalf("wrong key: %v", err)
	}
	if got := m.LambdaLastOK(); !got.Equal(afterOK) {
		t.Errorf("a 401 moved last ok from %v to %v", afterOK, got)
	}
	if got := sample(t, scrape(t, m), `cpbot_lambda_requests_total{code="401",operation="listInstanceTypes"}`); got != 1 {
		t.Errorf("401s counted %g, want 1", got)
	}
}

func goVersion() string { return runtime.Version() }

func TestMetricsSlack(t *testing.T) {
	m := NewMetrics("v-test", nil)
	srv := slacktest.NewServer()
	t.Cleanup(srv.Close)
	api := slack.New(srv.BotToken(), slack.OptionAPIURL(srv.URL()+"/api/"),
		slack.OptionHTTPClient(&http.Client{Transport: m.SlackTransport(nil)}))
	ctx := context.Background()
	_, ts, err := api.PostMessageContext(ctx, "C0ONE", slack.MsgOptionText("one", false))
	if err != nil {
		t.Fatal(err)
	}
	srv.RateLimitNext("chat.update", 1, time.Second)
	_, _, _, err = api.UpdateMessageContext(ctx, "C0ONE", ts, slack.MsgOptionText("two", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) {
		t.Fatalf("update under a rate limit: %v", err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, "C0ONE", ts, slack.MsgOptionText("two", false)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := api.PostMessageContext(ctx, "C0ONE", slack.MsgOptionText("three", false)); err != nil {
		t.Fatal(err)
	}
	// An upload URL is not a Web API method.
	resp, err := (&http.Client{Transport: m.SlackTransport(nil)}).Get(srv.URL() + "/upload/F0NOPE")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	s := scrape(t, m)
	for series, want := range map[string]float64{
		`cpbot_slack_requests_total{code="200",method="chat.postMessage"}`:      2,
		`cpbot_slack_requests_total{code="429",method="chat.update"}`:           1,
		`cpbot_slack_requests_total{code="200",method="chat.update"}`:           1,
		`cpbot_slack_request_duration_seconds_count{method="chat.update"}`:      2,
		`cpbot_slack_request_duration_seconds_count{method="chat.postMessage"}`: 2,
		`cpbot_slack_request_duration_seconds_count{method="other"}`:            1,
		`cpbot_rate_limited_total{api="slack"}`:                                 1,
		`cpbot_rate_limited_total{api="lambda"}`:                                0,
	} {
		if got := sample(t, s, series); got != want {
			t.Errorf("%s = %g, want %g", series, got, want)
		}
	}
	if !m.LambdaLastOK().IsZero() {
		t.Error("Slack traffic set Lambda's last ok")
	}
}

// TestMetricsJobs scrapes jobs by state, spend and budget from a real store
// behind a real job service.
func TestMetricsJobs(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "cpbot.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cloud := lambdatest.NewServer(lambdatest.Options{})
	t.Cleanup(cloud.Close)
	client, err := lambda.NewClient(lambda.Config{BaseURL: cloud.URL(), APIKey: cloud.APIKey(), RequestsPerSecond: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Not opened: no runner moves the jobs under the test's feet.
	svc := jobs.NewService(jobs.Config{TeamBudget: jobs.USD(500), JobBudget: jobs.USD(25)}, db, nil, client)
	m := NewMetrics("v-test", nil)
	if err := m.RegisterJobs(svc); err != nil {
		t.Fatal(err)
	}

	s := scrape(t, m)
	for _, st := range allStates {
		if got := sample(t, s, `cpbot_jobs{state="`+string(st)+`"}`); got != 0 {
			t.Errorf("empty store: %s = %g", st, got)
		}
	}
	if got := sample(t, s, "cpbot_team_budget_usd"); got != 500 {
		t.Errorf("team budget %g, want 500", got)
	}

	var specs []*jobs.Job
	for _, c := range []string{"obj1", "obj2", "obj3", "obj6"} {
		specs = append(specs, &jobs.Job{Spec: jobs.Spec{Class: c, Epochs: 1, Batch: 8, LR: 0.001, Budget: jobs.USD(25), Requester: "U1", Channel: "C1"}})
	}
	created, _, err := db.CreateJobs(ctx, "", specs)
	if err != nil {
		t.Fatal(err)
	}
	move := func(id int64, to jobs.State) {
		t.Helper()
		if _, err := db.UpdateJob(ctx, id, "", func(j *jobs.Job) error {
			j.State = to
			if to == jobs.StateFinished {
				j.Outcome = jobs.OutcomeCancelled
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	move(created[0].ID, jobs.StateLaunching)
	move(created[1].ID, jobs.StateLaunching)
	move(created[1].ID, jobs.StateBooting)
	move(created[2].ID, jobs.StateFinished)
	month := time.Now().UTC().Format("2006-01")
	if err := db.RecordCost(ctx, created[0].ID, "U1", month, jobs.USD(12.5)); err != nil {
		t.Fatal(err)
	}
	if err := db.RecordCost(ctx, created[1].ID, "U2", month, jobs.USD(0.75)); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetTeamBudget(ctx, jobs.USD(800), true); err != nil {
		t.Fatal(err)
	}

	s = scrape(t, m)
	want := map[jobs.State]float64{jobs.StateQueued: 1, jobs.StateLaunching: 1, jobs.StateBooting: 1, jobs.StateFinished: 1}
	for _, st := range allStates {
		if got := sample(t, s, `cpbot_jobs{state="`+string(st)+`"}`); got != want[st] {
			t.Errorf("%s = %g, want %g", st, got, want[st])
		}
	}
	if got := sample(t, s, "cpbot_spend_month_usd"); got != 13.25 {
		t.Errorf("spend %g, want 13.25", got)
	}
	if got := sample(t, s, "cpbot_team_budget_usd"); got != 800 {
		t.Errorf("team budget %g, want 800 (the admin's setting)", got)
	}
}

// TestMetricsStoreDown checks that a failing store leaves the other metrics
// served.
func TestMetricsStoreDown(t *testing.T) {
	m := NewMetrics("v-test", nil)
	if err := m.RegisterJobs(failingStats{}); err != nil {
		t.Fatal(err)
	}
	s := scrape(t, m)
	if _, ok := s[`cpbot_jobs{state="queued"}`]; ok {
		t.Error("jobs reported from a failing store")
	}
	if _, ok := s[`cpbot_rate_limited_total{api="lambda"}`]; !ok {
		t.Error("the other metrics went missing with the store")
	}
}

type failingStats struct{}

var errStats = errors.New("store closed")

func (failingStats) List(context.Context, jobs.JobFilter) ([]*jobs.Job, error) { return nil, errStats }
func (failingStats) MonthSpend(context.Context) (jobs.Money, map[string]jobs.Money, error) {
	return 0, nil, errStats
}
func (failingStats) TeamBudget(context.Context) (jobs.Money, error) { return 0, errStats }
