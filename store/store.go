package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/cpbot/cpbot/jobs"
)

// SchemaVersion is the layout version of the file this package writes. Open
// refuses a file written by a newer cpbot.
const SchemaVersion = 1

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero.
const DefaultTimeout = time.Second

// ErrInUse is wrapped by the error Open returns when another process holds
// the file's lock.
var ErrInUse = errors.New("file lock not acquired")

// Bucket and key names. The layout:
//
//	meta     schema → decimal version
//	jobs     8-byte big-endian id → JSON jobs.Job
//	events   8-byte job id → bucket: 8-byte sequence → JSON jobs.Event
//	ledger   month → bucket: 8-byte job id → JSON ledgerEntry
//	settings key → value
//	dedupe   "create:"+key or "once:"+key → JSON dedupeRecord
var (
	bucketMeta     = []byte("meta")
	bucketJobs     = []byte("jobs")
	bucketEvents   = []byte("events")
	bucketLedger   = []byte("ledger")
	bucketSettings = []byte("settings")
	bucketDedupe   = []byte("dedupe")

	keySchema = []byte("schema")
)

var topBuckets = [][]byte{bucketMeta, bucketJobs, bucketEvents, bucketLedger, bucketSettings, bucketDedupe}

// var _ makes the compiler hold DB to the domain's contract.
var _ jobs.Store = (*DB)(nil)

// Options tune Open. The zero value is ready to use.
type Options struct {
	// Timeout is how long Open waits for another process to release the
	// file; zero means DefaultTimeout.
	Timeout time.Duration
	// Now is the clock for CreatedAt, UpdatedAt and event times; nil means
	// time.Now.
	Now func() time.Time
}

// DB is cpbot's bbolt file. It implements jobs.Store; every method is safe
// for concurrent use.
type DB struct {
	db   *bolt.DB
	path string
	now  func() time.Time
}

// Open opens or creates the bbolt file at path with mode 0600, creating its
// directory with mode 0700 if missing. If another process holds the file it
// fails after opts.Timeout with an error wrapping ErrInUse that reads
// "another cpbot is using <path> …". It refuses a file whose schema version
// is newer than SchemaVersion.
func Open(path string, opts Options) (*DB, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("another cpbot is using %s (%w within %s)", path, ErrInUse, opts.Timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	d := &DB{db: bdb, path: path, now: opts.Now}
	if err := d.init(); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	return d, nil
}

// init enforces mode 0600 on a file created by someone else, creates the
// buckets and checks or writes the schema version.
func (d *DB) init() error {
	if fi, err := os.Stat(d.path); err == nil && fi.Mode().Perm() != 0o600 {
		if err := os.Chmod(d.path, 0o600); err != nil {
			return fmt.Errorf("open store: %w", err)
		}
	}
	return d.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta != nil {
			if err := checkSchema(d.path, meta.Get(keySchema)); err != nil {
				return err
			}
		}
		for _, name := range topBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("open store: create bucket %s: %w", name, err)
			}
		}
		if meta == nil {
			v := []byte(strconv.Itoa(SchemaVersion))
			if err := tx.Bucket(bucketMeta).Put(keySchema, v); err != nil {
				return fmt.Errorf("open store: write schema: %w", err)
			}
		}
		return nil
	})
}

// checkSchema accepts the stored version v if this code can read it.
func checkSchema(path string, v []byte) error {
	n, err := strconv.Atoi(string(v))
	switch {
	case err != nil:
		return fmt.Errorf("%s has an unreadable schema version %q", path, v)
	case n > SchemaVersion:
		return fmt.Errorf("%s has schema version %d, newer than this cpbot understands (%d): run a newer cpbot", path, n, SchemaVersion)
	case n < 1:
		return fmt.Errorf("%s has an invalid schema version %d", path, n)
	}
	return nil
}

// Close closes the file, waiting for transactions in flight.
func (d *DB) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Path returns the file's path.
func (d *DB) Path() string { return d.path }

// Backup writes a consistent copy of the whole file to w while the bot keeps
// running, and returns the number of bytes written.
func (d *DB) Backup(ctx context.Context, w io.Writer) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int64
	err := d.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("backup: %w", err)
	}
	return n, nil
}

// itob encodes an id or sequence as an 8-byte big-endian key, so keys sort
// numerically.
func itob(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

// btoi decodes a key written by itob.
func btoi(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
