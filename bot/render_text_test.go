package bot_test

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cpbot/cpbot/bot"
	"github.com/cpbot/cpbot/jobs"
)

func checkText(t *testing.T, got string, want, notWant []string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(got, s) {
			t.Errorf("lacks %q:\n%s", s, got)
		}
	}
	for _, s := range notWant {
		if strings.Contains(got, s) {
			t.Errorf("contains %q:\n%s", s, got)
		}
	}
	if len(got) > bot.MaxTextLen {
		t.Errorf("%d bytes, limit %d", len(got), bot.MaxTextLen)
	}
	if !utf8.ValidString(got) {
		t.Errorf("not valid UTF-8: %q", got)
	}
}

func epochReport(e int, loss float64) jobs.EpochReport {
	return jobs.EpochReport{Epoch: e, Epochs: 150, Loss: loss, EpochSeconds: 1116.14, ETA: "10h13m0s",
		Cost: jobs.USD(0.41), Forecast: jobs.USD(20.80), GPUUtil: 91, OverBudget: true}
}

func TestEpochsText(t *testing.T) {
	j := trainingJob()
	j.Spec.Budget = jobs.USD(20)
	under := epochReport(3, 0.2269)
	under.OverBudget = false
	many := make([]jobs.EpochReport, 0, 1000)
	for e := 1; e <= 1000; e++ {
		many = append(many, epochReport(e, 1/float64(e)))
	}
	unknown := jobs.EpochReport{Epoch: 1, Epochs: 150, Loss: 0.47}
	tests := []struct {
		name          string
		reps          []jobs.EpochReport
		want, notWant []string
	}{
		{"one over budget", []jobs.EpochReport{epochReport(3, 0.2269)},
			[]string{"epoch 3/150 · loss 0.2269 · 18m36s/epoch · GPU 91% · ETA 10h13m · $0.41 so far, forecast $20.80 — over your $20.00 budget at this pace"},
			[]string{"checkpoint", "\n"}},
		{"under budget", []jobs.EpochReport{under}, []string{"$0.41 so far, forecast $20.80"}, []string{"over"}},
		{"nothing known", []jobs.EpochReport{unknown}, []string{"epoch 1/150 · loss 0.4700"},
			[]string{"$0.00", "GPU", "ETA", "/epoch", "forecast"}},
		{"several with a checkpoint", []jobs.EpochReport{epochReport(9, 0.2), epochReport(10, 0.19), epochReport(11, 0.18)},
			[]string{"epoch 9/150 · loss 0.2000", "epoch 10/150", "epoch 11/150 · loss 0.1800", "checkpoint saved: model/obj1/10.pkl"},
			[]string{"checkpoints saved"}},
		{"nan loss", []jobs.EpochReport{epochReport(4, math.NaN())}, []string{"loss NaN"}, nil},
		{"a thousand epochs", many, []string{"earlier epochs", "epoch 1000/150", "100 checkpoints saved, the latest model/obj1/1000.pkl"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := bot.EpochsText(j, tc.reps)
			checkText(t, got, tc.want, tc.notWant)
			if n := strings.Count(got, "so far"); n > 1 {
				t.Errorf("cost on %d lines, want the last only:\n%s", n, got)
			}
		})
	}
	t.Run("cost on the last epoch line", func(t *testing.T) {
		got := bot.EpochsText(j, []jobs.EpochReport{epochReport(1, 0.4), epochReport(2, 0.3)})
		lines := strings.Split(got, "\n")
		if len(lines) != 2 || strings.Contains(lines[0], "so far") || !strings.Contains(lines[1], "so far") {
			t.Errorf("want cost on line 2 of 2:\n%s", got)
		}
	})
}

func TestMilestoneText(t *testing.T) {
	tests := []struct{ in, want, notWant string }{
		{"instance up (4m12s)", "instance up (4m12s)", ""},
		{"stopped by <@U123>", "stopped by <@U123>", "&lt;@U123"},
		{"error <script> & <!here>", "error &lt;script&gt; &amp; &lt;!here&gt;", "<!here>"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got := bot.MilestoneText(trainingJob(), tc.in)
			var not []string
			if tc.notWant != "" {
				not = append(not, tc.notWant)
			}
			checkText(t, got, []string{tc.want}, not)
		})
	}
	t.Run("long", func(t *testing.T) {
		checkText(t, bot.MilestoneText(trainingJob(), strings.Repeat("é", 5000)), nil, nil)
	})
}

func TestSummaryText(t *testing.T) {
	ok := jobs.Summary{Outcome: jobs.OutcomeSucceeded, Duration: "10h2m0s", Cost: jobs.USD(19.98), FinalLoss: 0.0412,
		Eval: &jobs.EvalMetrics{Class: "obj1", Metric2D: 0.93, ADD: 0.71}, Artifacts: "/var/lib/cpbot/artifacts/14",
		Checkpoints: make([]string, 15), LossHistory: []float64{0.47, 0.0412}}
	failed := jobs.Summary{Outcome: jobs.OutcomeFailed, Reason: "training exited with status 1: RuntimeError: CUDA out of memory",
		Duration: "1h5m0s", Cost: jobs.USD(2.10), FinalLoss: 0.19, LossHistory: []float64{0.19}, LogTail: tracebackTail()}
	huge := failed
	huge.LogTail = make([]string, 10000)
	for i := range huge.LogTail {
		huge.LogTail[i] = "  File \"main.py\", line 1, in <module> ```" + strings.Repeat("x", i%97)
	}
	huge.LogTail[9999] = "RuntimeError: the very last line"
	oneLong := failed
	oneLong.LogTail = []string{strings.Repeat("ü", 20000) + "END"}
	cancelled := jobs.Summary{Outcome: jobs.OutcomeCancelled, Reason: "stopped by <@U999>", Duration: "30s"}
	tests := []struct {
		name          string
		job           *jobs.Job
		s             jobs.Summary
		want, notWant []string
	}{
		{"succeeded", succeededJob(), ok,
			[]string{"succeeded · 10h02m · $19.98 · final loss 0.0412 · ADD 0.71 · 2D 0.93 · checkpoints in `artifacts/14/` (15 files)"},
			[]string{"```", "$0.00"}},
		{"failed", failedJob(), failed,
			[]string{"failed · 1h05m · $2.10", "RuntimeError: CUDA out of memory", "```\nTraceback (most recent call last):",
				"&lt;oops&gt; &amp; more\n```"},
			[]string{"<oops>", "ADD"}},
		{"failed with a 10,000-line tail", failedJob(), huge,
			[]string{"earlier lines cut", "RuntimeError: the very last line\n```", "&lt;module&gt;"},
			[]string{"<module>", "```x"}},
		{"failed with one huge line", failedJob(), oneLong, []string{"END\n```", "…"}, nil},
		{"cancelled while queued", cancelledJob(), cancelled,
			[]string{"cancelled · 30s · no charge", "stopped by <@U999>"},
			[]string{"$0.00", "final loss", "```"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := bot.SummaryText(tc.job, tc.s)
			checkText(t, got, tc.want, tc.notWant)
			if n := strings.Count(got, "```"); n%2 != 0 {
				t.Errorf("%d code fences, want pairs:\n%s", n, got)
			}
		})
	}
}

func TestLogsText(t *testing.T) {
	long := make([]string, 10000)
	for i := range long {
		long[i] = "loss:0.512825  heatmap_loss:0.451616  contour_loss:0.061210"
	}
	long[9999] = "Epoch: 12, Loss: 0.1900"
	tests := []struct {
		name          string
		lines         []string
		want, notWant []string
	}{
		{"none", nil, []string{"#14 obj1", "no training log yet"}, []string{"```"}},
		{"short", []string{"current class:obj1", "Epoch: 01, Loss: 0.4717"},
			[]string{"```\ncurrent class:obj1\nEpoch: 01, Loss: 0.4717\n```"}, []string{"cut"}},
		{"10,000 lines", long, []string{"earlier lines cut", "Epoch: 12, Loss: 0.1900\n```"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkText(t, bot.LogsText(trainingJob(), tc.lines), tc.want, tc.notWant)
		})
	}
}
