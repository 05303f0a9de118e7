package jobs

import "context"

// Notifier tells people what happens to their jobs. It is satisfied by
// package bot. The runner never waits on a person: a Notifier must return
// quickly (queueing its work) and its errors are logged, never fatal.
//
// Thread messages (milestones, epochs, the summary) are recorded as events
// first; seq is the sequence number of the (last) event a call carries. Once
// the notifier has delivered it, it calls Service.Delivered with that seq;
// what was recorded but not delivered when the bot stopped is delivered by
// the next Service.Open, so a crash loses no message and repeats none that
// was acknowledged.
type Notifier interface {
	// JobCreated announces a new job and returns the notifier's reference
	// for it (stored as Job.NotifyRef and passed back in every later call).
	JobCreated(ctx context.Context, j *Job) (ref string, err error)
	// JobChanged refreshes the job's card: state, progress, cost.
	JobChanged(ctx context.Context, j *Job) error
	// Milestone adds a line to the job's thread: instance up, training
	// started, checkpoints saved, a warning.
	Milestone(ctx context.Context, j *Job, seq int64, text string) error
	// EpochsDone reports epochs that completed since the last call.
	EpochsDone(ctx context.Context, j *Job, seq int64, epochs []EpochReport) error
	// JobFinished reports the end of a job with its summary.
	JobFinished(ctx context.Context, j *Job, seq int64, s Summary) error
	// Alert posts a team alert (budget, orphan instance) to channel, or to
	// the configured alert channel when channel is empty.
	Alert(ctx context.Context, channel, text string) error
}

// EpochReport is one completed epoch as the notifier sees it.
type EpochReport struct {
	Epoch, Epochs int
	Loss          float64
	EpochSeconds  float64
	ETA           string
	Cost          Money // so far
	Forecast      Money // total at this pace; 0 if unknown
	GPUUtil       float64
	OverBudget    bool // the forecast exceeds the job's budget
}

// Summary is the end of a job as the notifier sees it.
type Summary struct {
	Outcome     Outcome
	Reason      string
	Duration    string
	Cost        Money
	FinalLoss   float64
	Eval        *EvalMetrics
	Artifacts   string   // local dir of checkpoints, empty if none
	Checkpoints []string // file names
	LossHistory []float64
	LogTail     []string // on failure
}
