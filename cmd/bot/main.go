// Command bot runs cpbot, the Slack bot that trains ContourPose models on
// Lambda Cloud GPUs. With -demo it runs without credentials against an
// in-process fake cloud, reading commands from the terminal.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

func main() {
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "cpbot:", err)
		os.Exit(2)
	}
	if m.ShowVersion {
		fmt.Fprintln(m.Stdout, "cpbot", buildVersion())
		return
	}

	// SIGINT/SIGTERM stop the bot gracefully (trainings keep running on
	// their instances); a second signal forces the exit.
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "cpbot: shutting down (again to force)")
		cancel()
		<-sig
		os.Exit(1)
	}()

	err := m.Run(ctx)
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cpbot:", err)
		os.Exit(1)
	}
}

// Main is the program: configuration, wiring and lifetime.
type Main struct {
	Config      Config
	Demo        bool
	ShowVersion bool

	// Stdin and Stdout are the demo console.
	Stdin  io.Reader
	Stdout io.Writer
	// Stderr receives the logs of a real run.
	Stderr io.Writer

	Logger  *slog.Logger
	metrics *Metrics
	closers []func() error

	mu       sync.Mutex
	httpAddr string // where /healthz and /metrics are served, once they are

}

// NewMain returns a Main reading the process's standard streams.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
}

// ParseFlags reads the flags and the environment.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("cpbot", flag.ContinueOnError)
	fs.BoolVar(&m.Demo, "demo", false, "run without credentials against an in-process fake cloud, reading commands from the terminal")
	fs.BoolVar(&m.ShowVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	cfg, err := LoadConfig()
	if err != nil {
		return err
	}
	m.Config = cfg
	if !m.Demo && !m.ShowVersion {
		return cfg.Validate()
	}
	return nil
}

// Run starts the bot and blocks until ctx ends (or, in demo mode, until the
// console input ends and every job has finished).
func (m *Main) Run(ctx context.Context) error {
	if m.Demo {
		return m.runDemo(ctx)
	}
	return m.runSlack(ctx)
}

// Close releases everything Run opened, in reverse order.
func (m *Main) Close() error {
	var errs []error
	for i := len(m.closers) - 1; i >= 0; i-- {
		if err := m.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	m.closers = nil
	return errors.Join(errs...)
}

func (m *Main) onClose(f func() error) { m.closers = append(m.closers, f) }

// HTTPAddr returns the address /healthz and /metrics are served on, once
// Run has started serving them; "" before, or when the server is off.
func (m *Main) HTTPAddr() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.httpAddr
}
