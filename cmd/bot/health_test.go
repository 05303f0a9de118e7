package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	now := time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)
	storeDown := errors.New("store: timeout")
	tests := []struct {
		name       string
		chat       bool
		storeErr   error
		lambdaAt   time.Time
		wantStatus int
		wantDown   []string
		wantLastOK string
	}{
		{"all up", true, nil, now.Add(-time.Minute), 200, nil, "2026-05-04T11:59:00Z"},
		{"lambda exactly at the limit", true, nil, now.Add(-10 * time.Minute), 200, nil, "2026-05-04T11:50:00Z"},
		{"slack down", false, nil, now, 503, []string{"slack"}, "2026-05-04T12:00:00Z"},
		{"store down", true, storeDown, now, 503, []string{"store"}, "2026-05-04T12:00:00Z"},
		{"lambda stale", true, nil, now.Add(-11 * time.Minute), 503, []string{"lambda"}, "2026-05-04T11:49:00Z"},
		{"lambda never answered", true, nil, time.Time{}, 503, []string{"lambda"}, ""},
		{"everything down", false, storeDown, time.Time{}, 503, []string{"slack", "store", "lambda"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Health{
				ChatUp:       func() bool { return tt.chat },
				PingStore:    func(ctx context.Context) error { return tt.storeErr },
				LambdaLastOK: func() time.Time { return tt.lambdaAt },
				Now:          func() time.Time { return now },
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("content type %q", ct)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			want := map[string]any{
				"slack": !slices.Contains(tt.wantDown, "slack"), "store": !slices.Contains(tt.wantDown, "store"),
				"lambda": !slices.Contains(tt.wantDown, "lambda"), "lambda_last_ok": tt.wantLastOK,
			}
			for k, v := range want {
				if body[k] != v {
					t.Errorf("%s = %v, want %v (body %s)", k, body[k], v, rec.Body)
				}
			}
			var down []string
			if d, ok := body["down"].([]any); ok {
				for _, s := range d {
					down = append(down, s.(string))
				}
			}
			if !slices.Equal(down, tt.wantDown) {
				t.Errorf("down = %v, want %v", down, tt.wantDown)
			}
		})
	}
}

// TestHealthFreshness checks a custom freshness window.
func TestHealthFreshness(t *testing.T) {
	now := time.Now()
	h := &Health{ChatUp: func() bool { return true }, PingStore: func(context.Context) error { return nil },
		LambdaLastOK: func() time.Time { return now.Add(-2 * time.Minute) }, LambdaFreshness: time.Minute,
		Now: func() time.Time { return now }}
	if r := h.Check(context.Background()); !slices.Equal(r.Down, []string{"lambda"}) {
		t.Errorf("down = %v, want [lambda]", r.Down)
	}
	h.LambdaFreshness = 3 * time.Minute
	if r := h.Check(context.Background()); len(r.Down) != 0 {
		t.Errorf("down = %v, want nothing", r.Down)
	}
}
