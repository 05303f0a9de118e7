package jobs

import (
	"context"
	"time"
)

// Store keeps jobs, their events, the cost ledger and settings. It is
// satisfied by package store (bbolt). Every method is safe for concurrent use.
type Store interface {
	// CreateJobs stores new jobs atomically, assigning IDs, CreatedAt and
	// state queued. If dedupeKey is not empty and was used before, it stores
	// nothing and returns the jobs created under that key with created false.
	CreateJobs(ctx context.Context, dedupeKey string, jobs []*Job) (out []*Job, created bool, err error)

	// Job returns one job; an *Error with code ENOTFOUND if there is none.
	Job(ctx context.Context, id int64) (*Job, error)

	// Jobs returns the jobs that match the filter, newest first.
	Jobs(ctx context.Context, f JobFilter) ([]*Job, error)

	// UpdateJob applies fn to the stored job in one transaction and stores
	// the result. If from is not empty and the stored state differs, it
	// returns an *Error with code ECONFLICT and stores nothing (compare and
	// set). A state change that CanTransition forbids is refused the same
	// way. An error from fn aborts the update and is returned as is.
	UpdateJob(ctx context.Context, id int64, from State, fn func(*Job) error) (*Job, error)

	// AddEvent appends an event to a job's history and returns its
	// sequence number, increasing within the job.
	AddEvent(ctx context.Context, e Event) (seq int64, err error)

	// Events returns a job's events, oldest first.
	Events(ctx context.Context, jobID int64) ([]Event, error)

	// RecordCost sets (not adds) what a job has cost in a month ("2026-12"),
	// so recording the same figure again is harmless.
	RecordCost(ctx context.Context, jobID int64, user, month string, amount Money) error

	// RecordCosts records several costs in one transaction.
	RecordCosts(ctx context.Context, recs []CostRecord) error

	// Spend returns a month's total and its split by user.
	Spend(ctx context.Context, month string) (total Money, byUser map[string]Money, err error)

	// Setting returns a stored setting, ok false if unset.
	Setting(ctx context.Context, key string) (value string, ok bool, err error)

	// SetSetting stores a setting.
	SetSetting(ctx context.Context, key, value string) error

	// Once records key and reports whether this was the first time: an
	// alert sent under a key is never sent again, even after a restart.
	Once(ctx context.Context, key string) (first bool, err error)
}

// CostRecord is one ledger entry: what a job has cost in a month.
type CostRecord struct {
	JobID  int64
	User   string
	Month  string // "2026-12"
	Amount Money
}

// JobFilter selects jobs. Zero fields match everything.
type JobFilter struct {
	Unfinished bool      // only jobs not finished
	Requester  string    // only this person's jobs
	Since      time.Time // only jobs created at or after
	Limit      int       // at most this many, 0 = all
}

// EventKind says what an event records.
type EventKind string

// Event kinds.
const (
	EventState   EventKind = "state"
	EventEpoch   EventKind = "epoch"
	EventNote    EventKind = "note"    // a thread milestone
	EventSummary EventKind = "summary" // the end of the job
)

// Event is one entry of a job's history.
type Event struct {
	Seq   int64     `json:"-"` // set by Store.Events
	JobID int64     `json:"job_id"`
	Time  time.Time `json:"time"`
	Kind  EventKind `json:"kind"`
	State State     `json:"state,omitempty"`
	Epoch int       `json:"epoch,omitempty"`
	Loss  float64   `json:"loss,omitempty"`
	Text  string    `json:"text,omitempty"`
}
