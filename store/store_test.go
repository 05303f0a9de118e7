package store_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/store"
)

// MustOpenDB opens a store in a fresh temporary file. On cleanup it closes
// the store, reopens the file read-only and fails the test if bbolt's
// consistency check finds anything.
func MustOpenDB(tb testing.TB) *store.DB {
	tb.Helper()
	return mustOpen(tb, filepath.Join(tb.TempDir(), "cpbot.db"), store.Options{Now: newClock().Now})
}

// mustOpen opens path with opts and registers the close-and-check cleanup.
func mustOpen(tb testing.TB, path string, opts store.Options) *store.DB {
	tb.Helper()
	db, err := store.Open(path, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
		checkFile(tb, path)
	})
	return db
}

// checkFile runs bbolt's consistency check on a closed file.
func checkFile(tb testing.TB, path string) {
	tb.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		tb.Fatalf("reopen %s read-only: %v", path, err)
	}
	defer bdb.Close()
	err = bdb.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			tb.Errorf("check %s: %v", path, err)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("view: %v", err)
	}
}

// clock is a fake time source that moves one second on every reading, so
// every write gets a distinct, predictable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
}

// Now returns the next tick.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "nested")
	path := filepath.Join(dir, "cpbot.db")
	mustOpen(t, path, store.Options{})

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %o, want 600", got)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got != 0o700 {
		t.Errorf("dir mode = %o, want 700", got)
	}
}

func TestOpenTightensMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpbot.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, path, store.Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode after reopen = %o, want 600", got)
	}
}

func TestOpenSchemaVersion(t *testing.T) {
	tests := []struct {
		name    string
		version string // "" = leave what Open wrote
		wantErr string // "" = opens
	}{
		{name: "current", version: ""},
		{name: "explicit 1", version: "1"},
		{name: "newer", version: "2", wantErr: "schema version 2, newer than this cpbot understands (1)"},
		{name: "garbage", version: "x", wantErr: `unreadable schema version "x"`},
		{name: "zero", version: "0", wantErr: "invalid schema version 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cpbot.db")
			db, err := store.Open(path, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if got := readSchema(t, path); got != "1" {
				t.Fatalf("new file schema = %q, want 1", got)
			}
			if tt.version != "" {
				writeSchema(t, path, tt.version)
			}
			db, err = store.Open(path, store.Options{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				db.Close()
				return
			}
			if err == nil {
				db.Close()
				t.Fatalf("Open succeeded, want error %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
				t.Errorf("Open error = %q, want it to name %s and say %q", err, path, tt.wantErr)
			}
			if got := readSchema(t, path); got != tt.version {
				t.Errorf("schema after refused open = %q, want %q untouched", got, tt.version)
			}
		})
	}
}

// readSchema returns the raw schema version stored in a closed file.
func readSchema(t *testing.T, path string) string {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var v string
	err = bdb.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("meta")); b != nil {
			v = string(b.Get([]byte("schema")))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// writeSchema overwrites the schema version of a closed file.
func writeSchema(t *testing.T, path, v string) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	err = bdb.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte(v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenSecondProcessFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpbot.db")
	mustOpen(t, path, store.Options{})

	const timeout = 300 * time.Millisecond
	start := time.Now()
	db, err := store.Open(path, store.Options{Timeout: timeout})
	elapsed := time.Since(start)
	if err == nil {
		db.Close()
		t.Fatal("second Open succeeded while the first holds the file")
	}
	if !errors.Is(err, store.ErrInUse) {
		t.Errorf("error %v does not wrap ErrInUse", err)
	}
	if want := "another cpbot is using " + path; !strings.Contains(err.Error(), want) {
		t.Errorf("error = %q, want it to contain %q", err, want)
	}
	if elapsed > 2*timeout {
		t.Errorf("second Open took %s, want at most %s", elapsed, 2*timeout)
	}
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cpbot.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := db.CreateJobs(ctx, "k", []*jobs.Job{{Spec: spec("obj1", "U1")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetSetting(ctx, "team_budget", "500"); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = mustOpen(t, path, store.Options{})
	got, err := db.Job(ctx, out[0].ID)
	if err != nil {
		t.Fatalf("Job after reopen: %v", err)
	}
	assertJob(t, got, out[0])
	if v, ok, err := db.Setting(ctx, "team_budget"); err != nil || !ok || v != "500" {
		t.Errorf("Setting after reopen = %q, %v, %v; want 500, true, nil", v, ok, err)
	}
	more, _, err := db.CreateJobs(ctx, "", []*jobs.Job{{Spec: spec("obj2", "U1")}})
	if err != nil {
		t.Fatal(err)
	}
	if more[0].ID != out[0].ID+1 {
		t.Errorf("ID after reopen = %d, want %d", more[0].ID, out[0].ID+1)
	}
}

func TestBackup(t *testing.T) {
	ctx := context.Background()
	db := MustOpenDB(t)
	out, _, err := db.CreateJobs(ctx, "", []*jobs.Job{{Spec: spec("obj7", "U9")}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := db.Backup(ctx, &buf)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	if n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup reported %d bytes, wrote %d", n, buf.Len())
	}
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	restored := mustOpen(t, path, store.Options{})
	got, err := restored.Job(ctx, out[0].ID)
	if err != nil {
		t.Fatalf("Job from backup: %v", err)
	}
	assertJob(t, got, out[0])
}

func TestCanceledContext(t *testing.T) {
	db := MustOpenDB(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"CreateJobs": func() error {
			_, _, err := db.CreateJobs(ctx, "", []*jobs.Job{{Spec: spec("obj1", "U1")}})
			return err
		},
		"Job":       func() error { _, err := db.Job(ctx, 1); return err },
		"Jobs":      func() error { _, err := db.Jobs(ctx, jobs.JobFilter{}); return err },
		"UpdateJob": func() error { _, err := db.UpdateJob(ctx, 1, "", func(*jobs.Job) error { return nil }); return err },
		"AddEvent":  func() error { _, err := db.AddEvent(ctx, jobs.Event{JobID: 1, Kind: jobs.EventNote}); return err },
		"Events":    func() error { _, err := db.Events(ctx, 1); return err },
		"RecordCost": func() error {
			return db.RecordCost(ctx, 1, "U1", "2026-12", 1)
		},
		"Spend":      func() error { _, _, err := db.Spend(ctx, "2026-12"); return err },
		"Setting":    func() error { _, _, err := db.Setting(ctx, "k"); return err },
		"SetSetting": func() error { return db.SetSetting(ctx, "k", "v") },
		"Once":       func() error { _, err := db.Once(ctx, "k"); return err },
		"Backup":     func() error { _, err := db.Backup(ctx, &bytes.Buffer{}); return err },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a canceled context = %v, want context.Canceled", name, err)
			}
		})
	}
	list, err := db.Jobs(context.Background(), jobs.JobFilter{})
	if err != nil || len(list) != 0 {
		t.Errorf("after canceled calls Jobs = %d jobs, %v; want none", len(list), err)
	}
}
