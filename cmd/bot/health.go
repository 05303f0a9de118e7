package main

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// DefaultLambdaFreshness is how recent Lambda's last successful answer must
// be for /healthz. The watchdog lists instances every minute, so a healthy
// bot stays well within it.
const DefaultLambdaFreshness = 10 * time.Minute

// Health answers /healthz from three signals: the chat connection, a cheap
// store read and Lambda's last successful answer.
type Health struct {
	// ChatUp reports whether the chat (Slack's socket-mode connection) is up.
	ChatUp func() bool
	// PingStore does a cheap read of the store; an error means it is down.
	PingStore func(ctx context.Context) error
	// LambdaLastOK returns when Lambda last answered successfully (zero if
	// never). The startup key registration is the first such answer.
	LambdaLastOK func() time.Time
	// LambdaFreshness is how recent that answer must be; 0 means
	// DefaultLambdaFreshness.
	LambdaFreshness time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// HealthReport is the JSON body of /healthz.
type HealthReport struct {
	Slack        bool   `json:"slack"`
	Store        bool   `json:"store"`
	Lambda       bool   `json:"lambda"`
	LambdaLastOK string `json:"lambda_last_ok"` // RFC 3339, "" if never
	// Down names what is down: "slack", "store", "lambda"; absent when
	// everything is up.
	Down []string `json:"down,omitempty"`
}

// Check gathers the report. It is healthy when Down is empty.
func (h *Health) Check(ctx context.Context) HealthReport {
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	fresh := h.LambdaFreshness
	if fresh <= 0 {
		fresh = DefaultLambdaFreshness
	}
	var r HealthReport
	r.Slack = h.ChatUp != nil && h.ChatUp()
	if h.PingStore != nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		r.Store = h.PingStore(ctx) == nil
		cancel()
	}
	if h.LambdaLastOK != nil {
		if last := h.LambdaLastOK(); !last.IsZero() {
			r.LambdaLastOK = last.UTC().Format(time.RFC3339)
			r.Lambda = now().Sub(last) <= fresh
		}
	}
	for _, s := range []struct {
		up   bool
		name string
	}{{r.Slack, "slack"}, {r.Store, "store"}, {r.Lambda, "lambda"}} {
		if !s.up {
			r.Down = append(r.Down, s.name)
		}
	}
	return r
}

// ServeHTTP answers 200 with the report when everything is up, 503 with
// the same report otherwise.
func (h *Health) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r := h.Check(req.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if len(r.Down) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(r)
}
