package jobs

import (
	"fmt"
	"time"
)

// State is where a job is in its life. See DESIGN.md, "A job's life".
type State string

// The states, in the order a successful job passes through them.
const (
	StateQueued      State = "queued"
	StateLaunching   State = "launching"
	StateBooting     State = "booting"
	StatePreparing   State = "preparing"
	StateTraining    State = "training"
	StateCollecting  State = "collecting"
	StateTerminating State = "terminating"
	StateFinished    State = "finished"
)

// Outcome says how a finished job ended.
type Outcome string

// The outcomes of a finished job.
const (
	OutcomeSucceeded  Outcome = "succeeded"
	OutcomeFailed     Outcome = "failed"
	OutcomeCancelled  Outcome = "cancelled"
	OutcomeOverBudget Outcome = "over-budget"
	OutcomeIdle       Outcome = "idle"
	OutcomeLost       Outcome = "lost"
)

// forward lists each state's successor on the happy path. Launching may go
// back to launching (next candidate) and booting back to launching (a failed
// boot tries the next candidate).
var forward = map[State][]State{
	StateQueued:      {StateLaunching},
	StateLaunching:   {StateLaunching, StateBooting},
	StateBooting:     {StatePreparing, StateLaunching},
	StatePreparing:   {StateTraining},
	StateTraining:    {StateCollecting},
	StateCollecting:  {StateTerminating},
	StateTerminating: {StateFinished},
}

// CanTransition reports whether a job may move from one state to another.
// Any unfinished state may also move to terminating (cancel, budget, idle,
// error) or straight to finished (nothing to terminate, or the instance was
// lost); finished is final.
func CanTransition(from, to State) bool {
	if from == StateFinished {
		return false
	}
	if to == StateTerminating || to == StateFinished {
		return true
	}
	for _, s := range forward[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Spec is what a person asked for: one class trained on one instance.
type Spec struct {
	Class     string   `json:"class"`
	Epochs    int      `json:"epochs"`
	Batch     int      `json:"batch"`
	LR        float64  `json:"lr"`
	GPUTypes  []string `json:"gpu_types,omitempty"` // preference order; empty = the configured default
	Budget    Money    `json:"budget"`              // per-job cap
	Requester string   `json:"requester"`           // chat user id
	Channel   string   `json:"channel"`             // chat channel id
}

// Job is one training run of one class and everything the bot knows of it.
type Job struct {
	ID        int64     `json:"id"`
	Spec      Spec      `json:"spec"`
	State     State     `json:"state"`
	Outcome   Outcome   `json:"outcome,omitempty"`
	Reason    string    `json:"reason,omitempty"` // why it finished the way it did, for a person
	DedupeKey string    `json:"dedupe_key,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`

	// StopRequest, when set, asks the runner to stop the job with this
	// outcome (cancelled, over-budget, idle). Set by Cancel and the watchdog.
	StopRequest Outcome `json:"stop_request,omitempty"`
	StopReason  string  `json:"stop_reason,omitempty"`

	// The instance of the current attempt. InstanceName is recorded before
	// the launch call, so an ambiguous launch can be resolved by name.
	Attempt      int       `json:"attempt"`
	Tried        []string  `json:"tried,omitempty"` // "type/region" of every launch candidate tried
	InstanceName string    `json:"instance_name,omitempty"`
	InstanceID   string    `json:"instance_id,omitempty"`
	InstanceType string    `json:"instance_type,omitempty"`
	Region       string    `json:"region,omitempty"`
	IP           string    `json:"ip,omitempty"`
	PricePerHour Money     `json:"price_per_hour,omitempty"`
	LaunchedAt   time.Time `json:"launched_at,omitempty"` // billing starts
	ActiveAt     time.Time `json:"active_at,omitempty"`
	TrainingAt   time.Time `json:"training_at,omitempty"`
	FinishedAt   time.Time `json:"finished_at,omitempty"`
	// Spent is the cost of attempts whose instances are already terminated.
	Spent Money `json:"spent,omitempty"`

	// Training progress. LogOffset is the byte offset of train.log read so
	// far; NotifiedEpoch the last epoch recorded as an event for the
	// notifier.
	LogOffset     int64    `json:"log_offset,omitempty"`
	Progress      Progress `json:"progress"`
	NotifiedEpoch int      `json:"notified_epoch,omitempty"`
	// DeliveredSeq is the sequence number of the last event the notifier
	// has delivered: milestones, epochs and the summary after it are
	// delivered again by a restarted bot (see Service.Open).
	DeliveredSeq int64   `json:"delivered_seq,omitempty"`
	ExitCode     *int    `json:"exit_code,omitempty"`
	GPUUtil      float64 `json:"gpu_util,omitempty"` // last sample, percent, mean over GPUs
	// BusyAt is the last time the instance was seen doing useful work: the
	// trainer printing or the GPU busy. The watchdog's idle check reads it.
	BusyAt time.Time `json:"busy_at,omitempty"`
	// ReachedAt is the last time SSH to the instance worked.
	ReachedAt time.Time `json:"reached_at,omitempty"`

	Artifacts string   `json:"artifacts,omitempty"` // local dir of downloaded checkpoints
	LogTail   []string `json:"log_tail,omitempty"`  // last lines of train.log, for errors
	// NotifyRef is the notifier's own reference for this job (for Slack,
	// the card's channel and timestamp), returned by JobCreated.
	NotifyRef string `json:"notify_ref,omitempty"`
}

// Finished reports whether the job has ended.
func (j *Job) Finished() bool { return j.State == StateFinished }

// Cost is what the job has cost up to now: attempts whose instances are
// terminated (Spent) plus the live instance, billed per started minute since
// its launch.
func (j *Job) Cost(now time.Time) Money {
	c := j.Spent
	if !j.LaunchedAt.IsZero() {
		c += Cost(j.PricePerHour, j.LaunchedAt, now)
	}
	return c
}

// Label is the job's short name for people: "#12 obj1".
func (j *Job) Label() string { return fmt.Sprintf("#%d %s", j.ID, j.Spec.Class) }
