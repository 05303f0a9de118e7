package bot

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cpbot/cpbot/jobs"
)

// checkpointEvery is how often ContourPose saves model/<class>/<epoch>.pkl.
const checkpointEvery = 10

// outcomeMarks are the emoji before a finished job's summary.
var outcomeMarks = map[jobs.Outcome]string{
	jobs.OutcomeSucceeded:  ":white_check_mark:",
	jobs.OutcomeFailed:     ":x:",
	jobs.OutcomeCancelled:  ":no_entry_sign:",
	jobs.OutcomeOverBudget: ":money_with_wings:",
	jobs.OutcomeIdle:       ":zzz:",
	jobs.OutcomeLost:       ":ghost:",
}

// MilestoneText renders a line of the job's thread, such as "instance up
// (4m12s)", with a small marker in front. The text comes from the runner and
// is escaped.
func MilestoneText(j *jobs.Job, text string) string {
	return cutTo(":small_blue_diamond: "+escapeKeepMentions(text), MaxTextLen)
}

// EpochsText renders one thread reply for one or more completed epochs: a
// line per epoch with loss, pace, GPU use and ETA; the cost so far and the
// forecast (with a warning when over the job's budget) on the last line; and
// a note naming the checkpoints those epochs saved. When the lines do not
// fit, the earliest epochs are left out and counted. No epochs render as "".
func EpochsText(j *jobs.Job, reps []jobs.EpochReport) string {
	if len(reps) == 0 {
		return ""
	}
	lines := make([]string, len(reps))
	var ckpts []string
	for i, r := range reps {
		lines[i] = epochLine(j, r)
		if r.Epoch > 0 && r.Epoch%checkpointEvery == 0 {
			ckpts = append(ckpts, "model/"+escapeText(j.Spec.Class)+"/"+strconv.Itoa(r.Epoch)+".pkl")
		}
	}
	last := reps[len(reps)-1]
	if c := costFigures(j, last); c != "" {
		lines[len(lines)-1] += " · " + c
	}
	var tail string
	if len(ckpts) > 0 {
		switch n := len(ckpts); {
		case n == 1:
			tail = "\ncheckpoint saved: " + ckpts[0]
		case n <= 3:
			tail = "\ncheckpoints saved: " + strings.Join(ckpts, ", ")
		default:
			tail = "\n" + strconv.Itoa(n) + " checkpoints saved, the latest " + ckpts[n-1]
		}
		tail = cutTo(tail, MaxTextLen/3)
	}
	budget := MaxTextLen - len(tail)
	first, used := len(lines), 0
	for first > 0 && used+len(lines[first-1])+1 <= budget-40 {
		first--
		used += len(lines[first]) + 1
	}
	body := strings.Join(lines[first:], "\n")
	if first > 0 {
		body = "… " + strconv.Itoa(first) + " earlier epochs\n" + body
	}
	return cutTo(body+tail, MaxTextLen)
}

// epochLine is "epoch 3/150 · loss 0.2269 · 18m36s/epoch · GPU 91% · ETA 10h13m".
func epochLine(j *jobs.Job, r jobs.EpochReport) string {
	total := r.Epochs
	if total <= 0 {
		total = totalEpochs(j)
	}
	parts := []string{"epoch " + strconv.Itoa(r.Epoch) + "/" + strconv.Itoa(total), "loss " + formatLoss(r.Loss)}
	if r.EpochSeconds > 0 && !math.IsInf(r.EpochSeconds, 0) {
		parts = append(parts, humanDuration(time.Duration(r.EpochSeconds*float64(time.Second)))+"/epoch")
	}
	if r.GPUUtil > 0 {
		parts = append(parts, "GPU "+formatPercent(r.GPUUtil))
	}
	if eta := reformatDuration(r.ETA); eta != "" && r.Epoch < total {
		parts = append(parts, "ETA "+eta)
	}
	return strings.Join(parts, " · ")
}

// costFigures is "$0.41 so far, forecast $20.80 — over your $20.00 budget at
// this pace"; empty while nothing is billed.
func costFigures(j *jobs.Job, r jobs.EpochReport) string {
	if r.Cost <= 0 {
		return ""
	}
	s := r.Cost.String() + " so far"
	if r.Forecast > 0 {
		s += ", forecast " + r.Forecast.String()
	}
	if r.OverBudget {
		if j.Spec.Budget > 0 {
			s += " — over your " + j.Spec.Budget.String() + " budget at this pace"
		} else {
			s += " — over budget at this pace"
		}
	}
	return s
}

// SummaryText renders the end of a job for its thread: outcome, duration,
// cost, final loss, evaluation metrics and where the checkpoints are; for a
// job that did not succeed, the reason and the tail of its log in a code
// block, cut from the top to fit Slack's limit.
func SummaryText(j *jobs.Job, s jobs.Summary) string {
	outcome := s.Outcome
	if outcome == "" {
		outcome = j.Outcome
	}
	mark := outcomeMarks[outcome]
	if mark == "" {
		mark = ":grey_question:"
	}
	parts := []string{mark + " " + FormatJobID(j.ID) + " " + escapeText(j.Spec.Class) + " " + escapeText(string(outcome))}
	if d := reformatDuration(s.Duration); d != "" {
		parts = append(parts, d)
	}
	switch {
	case s.Cost > 0:
		parts = append(parts, s.Cost.String())
	case !costKnown(j):
		parts = append(parts, "no charge")
	}
	if len(s.LossHistory) > 0 || s.FinalLoss != 0 {
		parts = append(parts, "final loss "+formatLoss(s.FinalLoss))
	}
	if s.Eval != nil {
		parts = append(parts, "ADD "+strconv.FormatFloat(s.Eval.ADD, 'f', 2, 64), "2D "+strconv.FormatFloat(s.Eval.Metric2D, 'f', 2, 64))
	}
	if s.Artifacts != "" {
		a := "checkpoints in `" + artifactsLabel(s.Artifacts) + "`"
		if n := len(s.Checkpoints); n > 0 {
			a += " (" + plural(n, "file") + ")"
		}
		parts = append(parts, a)
	}
	text := strings.Join(parts, " · ")
	reason := s.Reason
	if reason == "" {
		reason = j.Reason
	}
	if reason != "" && outcome != jobs.OutcomeSucceeded {
		text += "\n" + escapeKeepMentions(cutTo(reason, 600))
	}
	text = cutTo(text, MaxTextLen/2)
	if len(s.LogTail) > 0 && outcome != jobs.OutcomeSucceeded {
		text += "\n" + codeBlock(s.LogTail, MaxTextLen-len(text)-1)
	}
	return text
}

// LogsText renders the last lines of a job's training log in a code block,
// cut from the top to fit.
func LogsText(j *jobs.Job, lines []string) string {
	head := "*" + escapeText(j.Label()) + "* · " + escapeText(stateLabel(j))
	if len(lines) == 0 {
		return head + "\nno training log yet"
	}
	head += " · last lines of train.log"
	return head + "\n" + codeBlock(lines, MaxTextLen-len(head)-1)
}

// plural is "1 file", "15 files".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
