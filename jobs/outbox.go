package jobs

import (
	"context"
	"fmt"
	"time"
)

// Thread messages go through the job's events: each is recorded, then handed
// to the notifier with its sequence number; the notifier reports delivery
// with Service.Delivered. A restarted bot delivers what was recorded after
// the last delivered event (replay), before its runners start.

// notifyEpochs reports the epochs completed since the last report.
func (r *runner) notifyEpochs(ctx context.Context, j *Job) {
	p := j.Progress
	if p.Epoch <= j.NotifiedEpoch {
		r.notifyChanged(ctx, j)
		return
	}
	now := r.now()
	cost := j.Cost(now)
	forecast, known := Forecast(j.PricePerHour, j.LaunchedAt, now, p)
	forecast += j.Spent
	if !known {
		forecast = 0
	}
	var reps []EpochReport
	var seq int64
	for e := j.NotifiedEpoch + 1; e <= p.Epoch; e++ {
		loss := epochLoss(p, e)
		reps = append(reps, EpochReport{Epoch: e, Epochs: j.Spec.Epochs, Loss: loss, EpochSeconds: p.EpochSeconds,
			ETA: roundDuration(p.ETA()).String(), Cost: cost, Forecast: forecast, GPUUtil: j.GPUUtil,
			OverBudget: forecast > j.Spec.Budget})
		seq = r.event(ctx, Event{Kind: EventEpoch, Epoch: e, Loss: loss})
	}
	if _, err := r.update(ctx, j, func(x *Job) { x.NotifiedEpoch = p.Epoch }); err != nil {
		r.log.Warn("store notified epoch", "err", err)
	}
	if err := r.svc.notifier.EpochsDone(ctx, j, seq, reps); err != nil {
		r.log.Warn("notify epochs", "err", err)
	}
	r.notifyChanged(ctx, j)
}

// epochLoss is the loss of epoch e from the progress's history.
func epochLoss(p Progress, e int) float64 {
	if i := e - p.HistoryFrom - 1; i >= 0 && i < len(p.LossHistory) {
		return p.LossHistory[i]
	}
	return p.EpochLoss
}

func (r *runner) notifyChanged(ctx context.Context, j *Job) {
	if err := r.svc.notifier.JobChanged(ctx, j); err != nil {
		r.log.Warn("notify change", "err", err)
	}
}

func (r *runner) milestone(ctx context.Context, j *Job, text string) {
	seq := r.event(ctx, Event{Kind: EventNote, Text: text})
	if err := r.svc.notifier.Milestone(ctx, j, seq, text); err != nil {
		r.log.Warn("notify milestone", "err", err)
	}
}

func (r *runner) notifyFinished(ctx context.Context, j *Job) {
	seq := r.event(ctx, Event{Kind: EventSummary, Text: string(j.Outcome)})
	if err := r.svc.notifier.JobFinished(ctx, j, seq, summaryOf(j, r.now())); err != nil {
		r.log.Warn("notify finished", "err", err)
	}
}

// summaryOf is the end of a finished job as the notifier sees it.
func summaryOf(j *Job, now time.Time) Summary {
	s := Summary{Outcome: j.Outcome, Reason: j.Reason, Cost: j.Cost(now), FinalLoss: j.Progress.EpochLoss,
		Eval: j.Progress.Eval, Artifacts: j.Artifacts, LossHistory: j.Progress.LossHistory,
		Duration: roundDuration(j.FinishedAt.Sub(j.CreatedAt)).String()}
	if j.Artifacts != "" {
		s.Checkpoints = listCheckpoints(j.Artifacts)
	}
	if j.Outcome != OutcomeSucceeded {
		s.LogTail = j.LogTail
		if len(s.LogTail) > 15 {
			s.LogTail = s.LogTail[len(s.LogTail)-15:]
		}
	}
	return s
}

// Delivered records that the notifier has delivered a job's thread messages
// up to event seq.
func (s *Service) Delivered(ctx context.Context, id, seq int64) error {
	_, err := s.store.UpdateJob(ctx, id, "", func(j *Job) error {
		j.DeliveredSeq = max(j.DeliveredSeq, seq)
		return nil
	})
	return err
}

// replayWindow bounds which finished jobs a starting bot checks for
// undelivered messages.
const replayWindow = 24 * time.Hour

// replay hands the notifier again what a job recorded after its last
// delivered event: the messages a stopped bot had queued but not sent.
func (s *Service) replay(ctx context.Context, j *Job) error {
	if j.NotifyRef == "" {
		return nil
	}
	evs, err := s.store.Events(ctx, j.ID)
	if err != nil {
		return fmt.Errorf("events of #%d: %w", j.ID, err)
	}
	now := s.cfg.Now()
	var reps []EpochReport
	var epochSeq int64
	maxEpoch := 0
	flush := func() {
		if len(reps) > 0 {
			if err := s.notifier.EpochsDone(ctx, j, epochSeq, reps); err != nil {
				s.cfg.Logger.Warn("replay epochs", "job", j.ID, "err", err)
			}
			reps = nil
		}
	}
	for _, e := range evs {
		if e.Seq <= j.DeliveredSeq {
			continue
		}
		switch e.Kind {
		case EventEpoch:
			reps = append(reps, EpochReport{Epoch: e.Epoch, Epochs: j.Spec.Epochs, Loss: e.Loss, Cost: j.Cost(now)})
			epochSeq, maxEpoch = e.Seq, max(maxEpoch, e.Epoch)
		case EventNote:
			flush()
			err = s.notifier.Milestone(ctx, j, e.Seq, e.Text)
		case EventSummary:
			flush()
			err = s.notifier.JobFinished(ctx, j, e.Seq, summaryOf(j, now))
		}
		if err != nil {
			s.cfg.Logger.Warn("replay", "job", j.ID, "err", err)
			err = nil
		}
	}
	flush()
	if maxEpoch > j.NotifiedEpoch {
		// The epochs were recorded before the crash: the runner must not
		// report them again.
		_, err = s.store.UpdateJob(ctx, j.ID, "", func(x *Job) error {
			x.NotifiedEpoch = max(x.NotifiedEpoch, maxEpoch)
			return nil
		})
	}
	return err
}
