package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/cpbot/cpbot/jobs"
)

// dedupeRecord is the value under a dedupe key: the jobs created under a
// CreateJobs key (none for a Once key) and when the key was first used.
type dedupeRecord struct {
	Jobs []int64   `json:"jobs,omitempty"`
	At   time.Time `json:"at"`
}

// createPrefix namespaces CreateJobs keys in the dedupe bucket.
const createPrefix = "create:"

// CreateJobs stores new jobs in one transaction, assigning IDs, CreatedAt,
// UpdatedAt and state queued. It leaves the caller's jobs untouched and
// returns fresh copies as stored. If dedupeKey is not empty and was used
// before, it stores nothing and returns the jobs created under that key with
// created false. An empty list is an *jobs.Error with code EINVALID.
func (d *DB) CreateJobs(ctx context.Context, dedupeKey string, in []*jobs.Job) ([]*jobs.Job, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if len(in) == 0 {
		return nil, false, jobs.Errorf(jobs.EINVALID, "nothing to create")
	}
	var (
		out     []*jobs.Job
		created bool
	)
	err := d.db.Update(func(tx *bolt.Tx) error {
		out, created = nil, false
		dd := tx.Bucket(bucketDedupe)
		dkey := []byte(createPrefix + dedupeKey)
		if dedupeKey != "" {
			if v := dd.Get(dkey); v != nil {
				var rec dedupeRecord
				if err := json.Unmarshal(v, &rec); err != nil {
					return fmt.Errorf("create jobs: dedupe key %q: %w", dedupeKey, err)
				}
				for _, id := range rec.Jobs {
					j, err := getJob(tx, id)
					if err != nil {
						return err
					}
					out = append(out, j)
				}
				return nil
			}
		}
		b := tx.Bucket(bucketJobs)
		now := d.now()
		rec := dedupeRecord{At: now}
		for _, src := range in {
			seq, err := b.NextSequence()
			if err != nil {
				return fmt.Errorf("create jobs: %w", err)
			}
			j := *src
			j.ID = int64(seq)
			j.State = jobs.StateQueued
			j.DedupeKey = dedupeKey
			j.CreatedAt, j.UpdatedAt = now, now
			stored, err := putJob(b, &j)
			if err != nil {
				return err
			}
			out = append(out, stored)
			rec.Jobs = append(rec.Jobs, stored.ID)
		}
		created = true
		if dedupeKey == "" {
			return nil
		}
		return putJSON(dd, dkey, rec)
	})
	if err != nil {
		return nil, false, err
	}
	return out, created, nil
}

// Job returns one job; an *jobs.Error with code ENOTFOUND if there is none.
func (d *DB) Job(ctx context.Context, id int64) (*jobs.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var j *jobs.Job
	err := d.db.View(func(tx *bolt.Tx) error {
		var err error
		j, err = getJob(tx, id)
		return err
	})
	return j, err
}

// Jobs returns the jobs that match the filter, newest (highest ID) first.
func (d *DB) Jobs(ctx context.Context, f jobs.JobFilter) ([]*jobs.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []*jobs.Job
	err := d.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJobs).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var j jobs.Job
			if err := json.Unmarshal(v, &j); err != nil {
				return fmt.Errorf("list jobs: job #%d: %w", btoi(k), err)
			}
			if !matches(&j, f) {
				continue
			}
			out = append(out, &j)
			if f.Limit > 0 && len(out) == f.Limit {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// matches reports whether j passes the filter.
func matches(j *jobs.Job, f jobs.JobFilter) bool {
	switch {
	case f.Unfinished && j.Finished():
		return false
	case f.Requester != "" && j.Spec.Requester != f.Requester:
		return false
	case !f.Since.IsZero() && j.CreatedAt.Before(f.Since):
		return false
	}
	return true
}

// UpdateJob applies fn to the stored job and stores the result, all in one
// transaction. If from is not empty and the stored state differs, or fn
// makes a state change that jobs.CanTransition forbids, it returns an
// *jobs.Error with code ECONFLICT and stores nothing. A missing job is
// ENOTFOUND. An error from fn aborts the update and is returned as is. fn
// must not change the job's ID. UpdatedAt is set from the store's clock.
func (d *DB) UpdateJob(ctx context.Context, id int64, from jobs.State, fn func(*jobs.Job) error) (*jobs.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *jobs.Job
	err := d.db.Update(func(tx *bolt.Tx) error {
		j, err := getJob(tx, id)
		if err != nil {
			return err
		}
		old := j.State
		if from != "" && old != from {
			return jobs.Errorf(jobs.ECONFLICT, "job #%d is %s, not %s", id, old, from)
		}
		if err := fn(j); err != nil {
			return err
		}
		if j.ID != id {
			return fmt.Errorf("update job #%d: fn changed the id to %d", id, j.ID)
		}
		if j.State != old && !jobs.CanTransition(old, j.State) {
			return jobs.Errorf(jobs.ECONFLICT, "job #%d cannot go from %s to %s", id, old, j.State)
		}
		j.UpdatedAt = d.now()
		out, err = putJob(tx.Bucket(bucketJobs), j)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AddEvent appends an event to a job's history; a zero Time is set from the
// store's clock. An event of a missing job is ENOTFOUND.
func (d *DB) AddEvent(ctx context.Context, e jobs.Event) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if e.Time.IsZero() {
		e.Time = d.now()
	}
	var seq uint64
	err := d.db.Update(func(tx *bolt.Tx) error {
		key := itob(uint64(e.JobID))
		if tx.Bucket(bucketJobs).Get(key) == nil {
			return jobs.Errorf(jobs.ENOTFOUND, "no job #%d", e.JobID)
		}
		b, err := tx.Bucket(bucketEvents).CreateBucketIfNotExists(key)
		if err != nil {
			return fmt.Errorf("add event to job #%d: %w", e.JobID, err)
		}
		if seq, err = b.NextSequence(); err != nil {
			return fmt.Errorf("add event to job #%d: %w", e.JobID, err)
		}
		return putJSON(b, itob(seq), newEventRecord(e))
	})
	if err != nil {
		return 0, err
	}
	return int64(seq), nil
}

// Events returns a job's events, oldest first; ENOTFOUND if there is no
// such job.
func (d *DB) Events(ctx context.Context, jobID int64) ([]jobs.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []jobs.Event
	err := d.db.View(func(tx *bolt.Tx) error {
		key := itob(uint64(jobID))
		if tx.Bucket(bucketJobs).Get(key) == nil {
			return jobs.Errorf(jobs.ENOTFOUND, "no job #%d", jobID)
		}
		b := tx.Bucket(bucketEvents).Bucket(key)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var r eventRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("events of job #%d: event %d: %w", jobID, btoi(k), err)
			}
			e := r.event()
			e.Seq = int64(btoi(k))
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eventRecord is an event's stored form. JSON has no NaN or infinity, and a
// training run can print "Loss: nan", so such a loss is kept as text.
type eventRecord struct {
	jobs.Event
	LossText string `json:"loss_text,omitempty"`
}

// newEventRecord returns e's stored form.
func newEventRecord(e jobs.Event) eventRecord {
	if math.IsNaN(e.Loss) || math.IsInf(e.Loss, 0) {
		r := eventRecord{Event: e, LossText: strconv.FormatFloat(e.Loss, 'g', -1, 64)}
		r.Loss = 0
		return r
	}
	return eventRecord{Event: e}
}

// event returns the event r stores.
func (r eventRecord) event() jobs.Event {
	e := r.Event
	if r.LossText != "" {
		if f, err := strconv.ParseFloat(r.LossText, 64); err == nil {
			e.Loss = f
		}
	}
	return e
}

// getJob decodes job id inside tx; ENOTFOUND if it is missing.
func getJob(tx *bolt.Tx, id int64) (*jobs.Job, error) {
	v := tx.Bucket(bucketJobs).Get(itob(uint64(id)))
	if v == nil {
		return nil, jobs.Errorf(jobs.ENOTFOUND, "no job #%d", id)
	}
	var j jobs.Job
	if err := json.Unmarshal(v, &j); err != nil {
		return nil, fmt.Errorf("decode job #%d: %w", id, err)
	}
	return &j, nil
}

// putJob stores j and returns a fresh copy decoded from the stored bytes, so
// the caller gets exactly what a later read returns and shares nothing with
// its input.
func putJob(b *bolt.Bucket, j *jobs.Job) (*jobs.Job, error) {
	v, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode job #%d: %w", j.ID, err)
	}
	if err := b.Put(itob(uint64(j.ID)), v); err != nil {
		return nil, fmt.Errorf("store job #%d: %w", j.ID, err)
	}
	var out jobs.Job
	if err := json.Unmarshal(v, &out); err != nil {
		return nil, fmt.Errorf("decode job #%d: %w", j.ID, err)
	}
	return &out, nil
}

// putJSON stores v encoded as JSON under key.
func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	if err := b.Put(key, data); err != nil {
		return fmt.Errorf("store %q: %w", key, err)
	}
	return nil
}
