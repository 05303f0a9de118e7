package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/store"
)

// listenHTTP binds CPBOT_HTTP_ADDR for /healthz and /metrics. It returns a
// nil listener when the address is empty (the server is off).
func (m *Main) listenHTTP() (net.Listener, error) {
	addr := m.Config.HTTPAddr
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("CPBOT_HTTP_ADDR %s: cannot serve /healthz and /metrics (set a free address, or empty to turn the server off): %w", addr, err)
	}
	return ln, nil
}

// newHTTPHandler routes /healthz and /metrics.
func newHTTPHandler(h *Health, metrics *Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", h)
	mux.Handle("GET /metrics", metrics.Handler())
	return mux
}

// health builds the health check of a wired app.
func (m *Main) health(a *app, chatUp func() bool) *Health {
	return &Health{
		ChatUp:       chatUp,
		PingStore:    func(ctx context.Context) error { return pingStore(ctx, a.db) },
		LambdaLastOK: m.metrics.LambdaLastOK,
	}
}

// pingStore is the cheap store read of the health check.
func pingStore(ctx context.Context, db *store.DB) error {
	_, _, err := db.Setting(ctx, jobs.SettingTeamBudget)
	return err
}

// serveHTTP serves h on ln until Close, which shuts the server down.
func (m *Main) serveHTTP(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("http server", "system", "http", "addr", ln.Addr().String(), "err", err)
		}
	}()
	m.mu.Lock()
	m.httpAddr = ln.Addr().String()
	m.mu.Unlock()
	m.Logger.Info("serving /healthz and /metrics", "system", "http", "addr", ln.Addr().String())
	m.onClose(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		<-done
		return err
	})
}
