package jobs

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxErrorTail is how many traceback lines Progress.ErrorTail keeps (the last ones).
const MaxErrorTail = 30

// TraceState is where a Tracker is in a Python traceback.
type TraceState uint8

// Traceback states. Python prints frames indented under the header, then the
// unindented exception line; a chained exception or a DataLoader worker's
// "Original Traceback" may follow it.
const (
	TraceNone    TraceState = iota // not in a traceback
	TraceFrames                    // after the header, reading frames
	TraceMessage                   // after the exception line: its continuation or a chained traceback may follow
	TraceChained                   // after "During handling of the above exception…": another traceback follows
)

// EvalMetrics are the metrics ContourPose's evaluation prints.
type EvalMetrics struct {
	Class    string
	Metric2D float64 // share of test images within the 2D projection threshold
	ADD      float64 // share of test images within the ADD threshold
}

// Progress is everything a Tracker knows about one training run. It is plain
// data: it round-trips through encoding/json (NaN losses included), so a
// restarted bot resumes a Tracker from the stored value exactly.
type Progress struct {
	Class  string // object class being trained
	Device string // torch device as printed: cuda, cpu

	Epoch  int // last completed epoch as printed (the checkpoint's epoch right after a resume)
	Epochs int // total epochs of the run
	Iter   int // iteration within the epoch in progress, when the log says (the fork)
	Iters  int // iterations per epoch, when the log says (the fork)

	EpochLoss float64 // loss of the last completed epoch
	IterLoss  float64 // last iteration loss printed
	LR        float64 // learning rate last printed

	EpochSeconds     float64 // mean seconds per epoch over the timed epochs; estimated from the fork's ETA while none is timed
	LastEpochSeconds float64 // seconds of the last timed epoch
	TimedEpochs      int     // how many epoch durations EpochSeconds averages

	LossHistory []float64 // per-epoch losses: LossHistory[i] is epoch HistoryFrom+1+i; NaN marks an epoch not seen
	HistoryFrom int       // epochs before LossHistory[0] (the resumed checkpoint)
	ResumedFrom int       // epoch of the checkpoint training resumed from; 0 = none

	Eval *EvalMetrics // set once evaluation printed its metrics

	Error     string     // summary (exception line) of the last traceback
	OOM       bool       // the last traceback is CUDA running out of memory
	ErrorTail []string   // the last traceback's lines, at most MaxErrorTail
	Trace     TraceState // parse state inside a traceback
}

// ETA is the time left for the remaining epochs at the mean epoch duration;
// zero when the run is done or no epoch duration is known.
func (p Progress) ETA() time.Duration {
	left := p.Epochs - p.Epoch
	if left <= 0 || !(p.EpochSeconds > 0) || math.IsInf(p.EpochSeconds, 0) {
		return 0
	}
	return time.Duration(float64(left) * p.EpochSeconds * float64(time.Second))
}

// Done reports whether all epochs completed.
func (p Progress) Done() bool { return p.Epochs > 0 && p.Epoch >= p.Epochs }

// Update says what one fed line changed. At most one of EpochDone,
// CheckpointLoaded, Eval and Failure is set.
type Update struct {
	Kind LineKind // the line's kind as ParseLine sees it

	Iter             bool // an iteration loss was recorded (Progress.IterLoss)
	EpochDone        bool // epoch Epoch finished with Loss; Seconds is the last timed epoch's duration
	CheckpointLoaded bool // training resumed from the checkpoint of epoch Epoch
	Eval             bool // evaluation metrics arrived (Progress.Eval)
	Failure          bool // a traceback's exception line arrived (Progress.Error, OOM, ErrorTail); a chained traceback reports each exception

	Epoch   int
	Loss    float64
	Seconds float64
}

// Tracker folds training-log lines into a Progress. The zero Tracker is ready
// to use; set P from storage to resume. A Tracker is not safe for concurrent
// use, but Feed never changes slice elements it handed out before, so a plain
// copy of P is a stable snapshot to pass on.
type Tracker struct {
	P Progress
}

// NewTracker returns a Tracker for a run of totalEpochs epochs.
func NewTracker(totalEpochs int) *Tracker {
	return &Tracker{P: Progress{Epochs: totalEpochs}}
}

// Feed folds one log line, with or without its line ending, into t.P and
// reports what changed. It does not allocate for iteration-loss lines.
func (t *Tracker) Feed(line string) Update {
	l := ParseLine(line)
	u := Update{Kind: l.Kind}
	if t.P.Trace != TraceNone && t.feedTrace(l, &u) {
		return u
	}
	p := &t.P
	switch l.Kind {
	case LineIter:
		p.IterLoss, u.Iter = l.Loss, true
		if l.Epochs > 0 {
			p.Epochs = l.Epochs
		}
		if l.Iters > 0 {
			p.Iter, p.Iters = l.Iter, l.Iters
			if p.TimedEpochs == 0 && l.ETA > 0 && l.Iter > 0 && l.Iter < l.Iters {
				// the fork's ETA is the rest of this epoch at the pace so far
				p.EpochSeconds = l.ETA.Seconds() * float64(l.Iters) / float64(l.Iters-l.Iter)
			}
		}
	case LineClass:
		p.Class, p.Iter = l.Class, 0
		if l.Epochs > 0 {
			p.Epochs = l.Epochs
		}
	case LineDevice:
		p.Device = l.Device
	case LineLR:
		p.LR = l.LR
	case LineTimeCost:
		t.timed(l.Seconds)
	case LineEpoch:
		t.timed(l.Seconds)
		t.epochDone(l.Epoch, l.Loss)
		u.EpochDone, u.Epoch, u.Loss, u.Seconds = true, l.Epoch, l.Loss, p.LastEpochSeconds
	case LineCheckpoint:
		if p.Done() || l.Epoch <= 0 {
			break // evaluation loads the final checkpoint; an unnumbered one tells nothing
		}
		t.resume(l.Epoch)
		u.CheckpointLoaded, u.Epoch = true, l.Epoch
	case LineEval:
		p.Eval = &EvalMetrics{Class: l.Class, Metric2D: l.Metric2D, ADD: l.ADD}
		u.Eval = true
	case LineTraceback:
		p.Trace, p.Error, p.OOM = TraceFrames, "", false
		p.ErrorTail = []string{l.Text}
	}
	return u
}

// feedTrace handles a line while a traceback is open and reports whether the
// line belonged to it.
func (t *Tracker) feedTrace(l Line, u *Update) bool {
	p := &t.P
	switch {
	case l.Kind == LineBlank:
		return true
	case p.Trace == TraceFrames && (l.Indented || l.Kind == LineTraceback):
		t.tail(l.Text)
		return true
	case p.Trace == TraceFrames:
		t.tail(l.Text)
		p.Error, p.OOM, p.Trace = l.Text, p.OOM || mentionsOOM(l.Text), TraceMessage
		u.Failure = true
		return true
	case p.Trace == TraceMessage && l.Indented:
		t.tail(l.Text)
		p.OOM = p.OOM || mentionsOOM(l.Text)
		return true
	case p.Trace == TraceMessage && strings.HasPrefix(l.Text, "Original Traceback (most recent call last):"):
		t.tail(l.Text)
		p.Trace = TraceFrames
		return true
	case p.Trace == TraceMessage && (strings.HasPrefix(l.Text, "During handling of the above exception") ||
		strings.HasPrefix(l.Text, "The above exception was the direct cause")):
		t.tail(l.Text)
		p.Trace = TraceChained
		return true
	case p.Trace == TraceChained && (l.Indented || l.Kind == LineTraceback):
		t.tail(l.Text)
		p.Trace = TraceFrames
		return true
	}
	p.Trace = TraceNone // the traceback is over; the line is ordinary output
	return false
}

// tail appends a traceback line, keeping the last MaxErrorTail.
func (t *Tracker) tail(s string) {
	p := &t.P
	if len(p.ErrorTail) >= MaxErrorTail {
		p.ErrorTail = slices.Clip(p.ErrorTail[len(p.ErrorTail)-MaxErrorTail+1:])
	}
	p.ErrorTail = append(p.ErrorTail, s)
}

// timed adds one epoch duration to the mean.
func (t *Tracker) timed(secs float64) {
	if !(secs > 0) || math.IsInf(secs, 0) {
		return
	}
	p := &t.P
	p.EpochSeconds = (p.EpochSeconds*float64(p.TimedEpochs) + secs) / float64(p.TimedEpochs+1)
	p.TimedEpochs++
	p.LastEpochSeconds = secs
}

// epochDone records epoch n's loss. An epoch printed again (training restarted
// from an older checkpoint) replaces it and drops the later ones.
func (t *Tracker) epochDone(n int, loss float64) {
	p := &t.P
	p.Epoch, p.EpochLoss, p.Iter = n, loss, 0
	i := n - 1 - p.HistoryFrom
	switch {
	case len(p.LossHistory) == 0 || i < 0:
		p.HistoryFrom, p.LossHistory = n-1, nil
	case i < len(p.LossHistory):
		p.LossHistory = slices.Clip(p.LossHistory[:i])
	}
	for len(p.LossHistory) < n-1-p.HistoryFrom {
		p.LossHistory = append(p.LossHistory, math.NaN())
	}
	p.LossHistory = append(p.LossHistory, loss)
}

// resume records that training restarts after the checkpoint of epoch n.
func (t *Tracker) resume(n int) {
	p := &t.P
	p.ResumedFrom, p.Epoch, p.Iter = n, n, 0
	switch keep := n - p.HistoryFrom; {
	case len(p.LossHistory) == 0 || keep <= 0:
		p.HistoryFrom, p.LossHistory = n, nil
	case keep < len(p.LossHistory):
		p.LossHistory = slices.Clip(p.LossHistory[:keep])
	}
}

// progressJSON is Progress's stored form; jsonFloat keeps NaN and infinities,
// which encoding/json refuses as plain numbers.
type progressJSON struct {
	Class            string      `json:"class,omitempty"`
	Device           string      `json:"device,omitempty"`
	Epoch            int         `json:"epoch,omitempty"`
	Epochs           int         `json:"epochs,omitempty"`
	Iter             int         `json:"iter,omitempty"`
	Iters            int         `json:"iters,omitempty"`
	EpochLoss        jsonFloat   `json:"epoch_loss"`
	IterLoss         jsonFloat   `json:"iter_loss"`
	LR               jsonFloat   `json:"lr"`
	EpochSeconds     jsonFloat   `json:"epoch_seconds"`
	LastEpochSeconds jsonFloat   `json:"last_epoch_seconds"`
	TimedEpochs      int         `json:"timed_epochs,omitempty"`
	LossHistory      []jsonFloat `json:"loss_history,omitempty"`
	HistoryFrom      int         `json:"history_from,omitempty"`
	ResumedFrom      int         `json:"resumed_from,omitempty"`
	Eval             *evalJSON   `json:"eval,omitempty"`
	Error            string      `json:"error,omitempty"`
	OOM              bool        `json:"oom,omitempty"`
	ErrorTail        []string    `json:"error_tail,omitempty"`
	Trace            TraceState  `json:"trace,omitempty"`
}

type evalJSON struct {
	Class    string    `json:"class"`
	Metric2D jsonFloat `json:"2d"`
	ADD      jsonFloat `json:"add"`
}

// MarshalJSON encodes p; NaN and infinite numbers become the strings "NaN", "+Inf", "-Inf".
func (p Progress) MarshalJSON() ([]byte, error) {
	j := progressJSON{
		Class: p.Class, Device: p.Device, Epoch: p.Epoch, Epochs: p.Epochs, Iter: p.Iter, Iters: p.Iters,
		EpochLoss: jsonFloat(p.EpochLoss), IterLoss: jsonFloat(p.IterLoss), LR: jsonFloat(p.LR),
		EpochSeconds: jsonFloat(p.EpochSeconds), LastEpochSeconds: jsonFloat(p.LastEpochSeconds),
		TimedEpochs: p.TimedEpochs, HistoryFrom: p.HistoryFrom, ResumedFrom: p.ResumedFrom,
		Error: p.Error, OOM: p.OOM, ErrorTail: p.ErrorTail, Trace: p.Trace,
	}
	if len(p.LossHistory) > 0 {
		j.LossHistory = make([]jsonFloat, len(p.LossHistory))
		for i, v := range p.LossHistory {
			j.LossHistory[i] = jsonFloat(v)
		}
	}
	if p.Eval != nil {
		j.Eval = &evalJSON{Class: p.Eval.Class, Metric2D: jsonFloat(p.Eval.Metric2D), ADD: jsonFloat(p.Eval.ADD)}
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (p *Progress) UnmarshalJSON(b []byte) error {
	var j progressJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("decode progress: %w", err)
	}
	*p = Progress{
		Class: j.Class, Device: j.Device, Epoch: j.Epoch, Epochs: j.Epochs, Iter: j.Iter, Iters: j.Iters,
		EpochLoss: float64(j.EpochLoss), IterLoss: float64(j.IterLoss), LR: float64(j.LR),
		EpochSeconds: float64(j.EpochSeconds), LastEpochSeconds: float64(j.LastEpochSeconds),
		TimedEpochs: j.TimedEpochs, HistoryFrom: j.HistoryFrom, ResumedFrom: j.ResumedFrom,
		Error: j.Error, OOM: j.OOM, ErrorTail: j.ErrorTail, Trace: j.Trace,
	}
	if len(j.LossHistory) > 0 {
		p.LossHistory = make([]float64, len(j.LossHistory))
		for i, v := range j.LossHistory {
			p.LossHistory[i] = float64(v)
		}
	}
	if j.Eval != nil {
		p.Eval = &EvalMetrics{Class: j.Eval.Class, Metric2D: float64(j.Eval.Metric2D), ADD: float64(j.Eval.ADD)}
	}
	return nil
}

// jsonFloat is a float64 whose JSON form admits NaN and infinities as strings.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("decode number %s: %w", b, err)
	}
	*f = jsonFloat(v)
	return nil
}
