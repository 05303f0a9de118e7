package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cpbot/cpbot/jobs"
)

// latencyBuckets cover a fast GET (tens of ms) up to a slow launch.
var latencyBuckets = []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Metrics is the bot's Prometheus registry (its own, not the global one)
// and the instruments that feed it: HTTP transports for the Lambda and Slack
// clients, and a collector that reads jobs and spend at scrape time.
type Metrics struct {
	// Registry holds every metric of the bot, the Go and process
	// collectors included.
	Registry *prometheus.Registry

	lambdaCalls   *prometheus.CounterVec
	lambdaLatency *prometheus.HistogramVec
	slackCalls    *prometheus.CounterVec
	slackLatency  *prometheus.HistogramVec
	rateLimited   *prometheus.CounterVec

	lambdaLastOK atomic.Int64 // unix nanoseconds; 0 = never
	log          *slog.Logger
	now          func() time.Time
}

// NewMetrics returns the metrics of a bot of the given version. A nil
// logger discards the scrape errors it would report.
func NewMetrics(version string, log *slog.Logger) *Metrics {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{Registry: prometheus.NewRegistry(), log: log, now: time.Now}
	m.lambdaCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cpbot_lambda_requests_total",
		Help: "Lambda Cloud API requests (each attempt), by operationId and HTTP status code (\"error\" = no answer).",
	}, []string{"operation", "code"})
	m.lambdaLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cpbot_lambda_request_duration_seconds",
		Help:    "Lambda Cloud API request latency, by operationId.",
		Buckets: latencyBuckets,
	}, []string{"operation"})
	m.slackCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cpbot_slack_requests_total",
		Help: "Slack Web API requests, by method and HTTP status code (\"error\" = no answer).",
	}, []string{"method", "code"})
	m.slackLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cpbot_slack_request_duration_seconds",
		Help:    "Slack Web API request latency, by method.",
		Buckets: latencyBuckets,
	}, []string{"method"})
	m.rateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cpbot_rate_limited_total",
		Help: "HTTP 429 answers, by api (lambda or slack).",
	}, []string{"api"})
	for _, api := range []string{"lambda", "slack"} {
		m.rateLimited.WithLabelValues(api) // present at 0 from the start
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "cpbot_build_info",
		Help:        "Always 1; the labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	build.Set(1)
	lastOK := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cpbot_lambda_last_success_timestamp_seconds",
		Help: "When Lambda Cloud last answered a request successfully (unix time; 0 = never).",
	}, func() float64 {
		if t := m.LambdaLastOK(); !t.IsZero() {
			return float64(t.UnixNano()) / 1e9
		}
		return 0
	})
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.lambdaCalls, m.lambdaLatency, m.slackCalls, m.slackLatency, m.rateLimited, build, lastOK,
	)
	return m
}

// Handler serves the registry in the Prometheus exposition format. A
// collector that fails is logged and left out; the rest is still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{m.log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.Registry,
	})
}

// LambdaTransport wraps next (nil = http.DefaultTransport) for the Lambda
// client: it counts and times requests by operation, counts 429s and
// remembers the last successful answer for the health check.
func (m *Metrics) LambdaTransport(next http.RoundTripper) http.RoundTripper {
	return &instrumented{
		next: orDefaultTransport(next), now: m.now,
		name:     func(r *http.Request) string { return lambdaOperation(r.Method, r.URL.Path) },
		calls:    func(op, code string) { m.lambdaCalls.WithLabelValues(op, code).Inc() },
		latency:  func(op string, d time.Duration) { m.lambdaLatency.WithLabelValues(op).Observe(d.Seconds()) },
		limited:  func() { m.rateLimited.WithLabelValues("lambda").Inc() },
		answered: m.lambdaAnswered,
	}
}

// SlackTransport wraps next (nil = http.DefaultTransport) for the Slack
// client: it counts and times Web API requests by method and counts 429s.
func (m *Metrics) SlackTransport(next http.RoundTripper) http.RoundTripper {
	return &instrumented{
		next: orDefaultTransport(next), now: m.now,
		name:    func(r *http.Request) string { return slackMethod(r.URL.Path) },
		calls:   func(method, code string) { m.slackCalls.WithLabelValues(method, code).Inc() },
		latency: func(method string, d time.Duration) { m.slackLatency.WithLabelValues(method).Observe(d.Seconds()) },
		limited: func() { m.rateLimited.WithLabelValues("slack").Inc() },
	}
}

// lambdaAnswered records a successful answer: any status but 5xx, 429 and
// the auth failures 401 and 403. A 404 or a capacity error is Lambda
// working; a refused key or an outage is not.
func (m *Metrics) lambdaAnswered(status int, at time.Time) {
	switch {
	case status >= 500, status == http.StatusTooManyRequests,
		status == http.StatusUnauthorized, status == http.StatusForbidden:
		return
	}
	m.lambdaLastOK.Store(at.UnixNano())
}

// LambdaLastOK returns when Lambda last answered successfully; zero if
// never.
func (m *Metrics) LambdaLastOK() time.Time {
	ns := m.lambdaLastOK.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// RegisterJobs adds the collector of jobs by state, month-to-date spend and
// team budget, read from src at every scrape.
func (m *Metrics) RegisterJobs(src StatsSource) error {
	if err := m.Registry.Register(newJobsCollector(src)); err != nil {
		return fmt.Errorf("register jobs collector: %w", err)
	}
	return nil
}

func orDefaultTransport(rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		return http.DefaultTransport
	}
	return rt
}

// slogPrinter adapts a slog.Logger to promhttp's error log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) {
	p.log.Warn("metrics scrape", "err", fmt.Sprint(v...))
}

// StatsSource is what the jobs collector reads at scrape time; a
// *jobs.Service satisfies it.
type StatsSource interface {
	// List returns the jobs matching the filter.
	List(ctx context.Context, f jobs.JobFilter) ([]*jobs.Job, error)
	// MonthSpend returns the month-to-date spend, total and by user.
	MonthSpend(ctx context.Context) (jobs.Money, map[string]jobs.Money, error)
	// TeamBudget returns the monthly team budget in force.
	TeamBudget(ctx context.Context) (jobs.Money, error)
}

var _ StatsSource = (*jobs.Service)(nil)
