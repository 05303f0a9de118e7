package bot_test

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cpbot/cpbot/bot"
	"github.com/cpbot/cpbot/jobs"
)

var renderNow = time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)

func baseJob(state jobs.State) *jobs.Job {
	return &jobs.Job{
		ID:    14,
		State: state,
		Spec: jobs.Spec{Class: "obj1", Epochs: 150, Batch: 8, LR: 0.001, Budget: jobs.USD(25),
			Requester: "U123", Channel: "C42"},
		CreatedAt: renderNow.Add(-70 * time.Minute),
	}
}

func queuedJob() *jobs.Job { return baseJob(jobs.StateQueued) }

// trainingJob is epoch 3 of 150 at 4 minutes an epoch, launched an hour ago
// at $1.99/h: forecast 10h48m billed, $21.49, under its $25 budget.
func trainingJob() *jobs.Job {
	j := baseJob(jobs.StateTraining)
	j.InstanceType, j.Region, j.PricePerHour = "gpu_1x_a100_sxm4", "us-east-1", jobs.PriceFromCents(199)
	j.LaunchedAt = renderNow.Add(-time.Hour)
	j.GPUUtil = 91
	j.Progress = jobs.Progress{Class: "obj1", Epoch: 3, Epochs: 150, EpochLoss: 0.2269, IterLoss: 0.2101,
		EpochSeconds: 240, LastEpochSeconds: 240, TimedEpochs: 3, LossHistory: []float64{0.4717, 0.3012, 0.2269}}
	return j
}

func overBudgetJob() *jobs.Job {
	j := trainingJob()
	j.Spec.Budget = jobs.USD(20)
	return j
}

func succeededJob() *jobs.Job {
	j := baseJob(jobs.StateFinished)
	j.Outcome = jobs.OutcomeSucceeded
	j.InstanceType, j.Region, j.PricePerHour = "gpu_1x_a100_sxm4", "us-east-1", jobs.PriceFromCents(199)
	j.Spent = jobs.USD(19.98)
	j.FinishedAt = renderNow.Add(-5 * time.Minute)
	hist := make([]float64, 150)
	for i := range hist {
		hist[i] = 0.5 / float64(i+1)
	}
	hist[149] = 0.0412
	j.Progress = jobs.Progress{Epoch: 150, Epochs: 150, EpochLoss: 0.0412, LossHistory: hist, EpochSeconds: 240,
		Eval: &jobs.EvalMetrics{Class: "obj1", Metric2D: 0.93, ADD: 0.71}}
	j.Artifacts = "/var/lib/cpbot/artifacts/14"
	return j
}

func tracebackTail() []string {
	return []string{
		"Traceback (most recent call last):",
		`  File "main.py", line 211, in <module>`,
		"    train(model, loader)",
		`  File "main.py", line 120, in train`,
		"    loss.backward()",
		"RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 39.59 GiB total capacity) <oops> & more",
	}
}

func failedJob() *jobs.Job {
	j := baseJob(jobs.StateFinished)
	j.Outcome, j.Reason = jobs.OutcomeFailed, "training exited with status 1: RuntimeError: CUDA out of memory"
	j.InstanceType, j.Region, j.PricePerHour = "gpu_1x_a10", "us-west-1", jobs.PriceFromCents(75)
	j.Spent = jobs.USD(2.10)
	j.FinishedAt = renderNow.Add(-time.Minute)
	j.Progress = jobs.Progress{Epoch: 12, Epochs: 150, EpochLoss: 0.19, LossHistory: make([]float64, 12),
		Error: "RuntimeError: CUDA out of memory", OOM: true}
	j.LogTail = tracebackTail()
	return j
}

func cancelledJob() *jobs.Job {
	j := baseJob(jobs.StateFinished)
	j.Outcome, j.Reason = jobs.OutcomeCancelled, "stopped by <@U999>"
	j.FinishedAt = renderNow
	return j
}

type renderCase struct {
	name    string
	job     *jobs.Job
	want    []string
	notWant []string
}

func cardCases() []renderCase {
	return []renderCase{
		{"queued", queuedJob(),
			[]string{"#14 obj1 · 150 epochs · queued", "<@U123>", "—", "$25.00"},
			[]string{"$0.00", "0/150", "0%", "NaN", "forecast"}},
		{"training", trainingJob(),
			[]string{"#14 obj1 · 150 epochs · training", "gpu_1x_a100_sxm4", "us-east-1", "$1.99/h",
				"▓░░░░░░░░░ 3/150", "0.2269", "0.2101", "91%", "9h48m", "$1.99 so far", "forecast $21.49", "$25.00"},
			[]string{"$0.00", "over budget", "⚠"}},
		{"over budget", overBudgetJob(),
			[]string{"forecast $21.49", "$20.00 ⚠️ forecast over budget"},
			[]string{"$0.00"}},
		{"succeeded", succeededJob(),
			[]string{"finished · succeeded", "▓▓▓▓▓▓▓▓▓▓ 150/150", "$19.98", "0.0412"},
			[]string{"$0.00", "so far", "forecast", "ETA 1"}},
		{"failed", failedJob(),
			[]string{"finished · failed", "$2.10", "CUDA out of memory"},
			[]string{"$0.00", "so far"}},
		{"cancelled while queued", cancelledJob(),
			[]string{"finished · cancelled", "stopped by <@U999>"},
			[]string{"$0.00", "&lt;@U999"}},
	}
}

func TestCardMessage(t *testing.T) {
	for _, tc := range cardCases() {
		t.Run(tc.name, func(t *testing.T) {
			m := bot.CardMessage(tc.job, renderNow)
			raw, err := json.Marshal(slack.Blocks{BlockSet: m.Blocks})
			if err != nil {
				t.Fatalf("marshal blocks: %v", err)
			}
			blocks := string(raw)
			if m.Channel != "C42" {
				t.Errorf("channel = %q, want C42", m.Channel)
			}
			for _, s := range tc.want {
				if !strings.Contains(m.Text, s) {
					t.Errorf("text lacks %q:\n%s", s, m.Text)
				}
				if !strings.Contains(blocks, jsonString(s)) {
					t.Errorf("blocks lack %q:\n%s", s, blocks)
				}
			}
			for _, s := range tc.notWant {
				if strings.Contains(m.Text, s) || strings.Contains(blocks, jsonString(s)) {
					t.Errorf("card contains %q:\n%s\n%s", s, m.Text, blocks)
				}
			}
			checkCardLimits(t, m, raw)
			checkButtons(t, tc.job, blocks)
		})
	}
}

// jsonString is s as it appears inside a JSON string.
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

func checkCardLimits(t *testing.T, m bot.Message, raw []byte) {
	t.Helper()
	if len(m.Blocks) > 50 {
		t.Errorf("%d blocks, Slack allows 50", len(m.Blocks))
	}
	if len(m.Text) > bot.MaxTextLen {
		t.Errorf("text is %d bytes", len(m.Text))
	}
	var decoded []map[string]any
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatalf("decode blocks: %v", err)
	}
	for _, b := range decoded {
		if txt, ok := b["text"].(map[string]any); ok && len(fmt.Sprint(txt["text"])) > bot.MaxTextLen {
			t.Errorf("section text over %d bytes", bot.MaxTextLen)
		}
		if fields, ok := b["fields"].([]any); ok && len(fields) > 10 {
			t.Errorf("%d fields, Slack allows 10", len(fields))
		}
	}
}

func checkButtons(t *testing.T, j *jobs.Job, blocks string) {
	t.Helper()
	stop := `"action_id":"` + bot.ActionStop + `"`
	logs := `"action_id":"` + bot.ActionLogs + `"`
	if j.Finished() {
		if strings.Contains(blocks, stop) || strings.Contains(blocks, logs) {
			t.Errorf("finished job's card has buttons: %s", blocks)
		}
		return
	}
	var decoded []struct {
		Type     string `json:"type"`
		Elements []struct {
			ActionID string          `json:"action_id"`
			Value    string          `json:"value"`
			Style    string          `json:"style"`
			Confirm  json.RawMessage `json:"confirm"`
		} `json:"elements"`
	}
	if err := json.Unmarshal([]byte(blocks), &decoded); err != nil {
		t.Fatalf("decode blocks: %v", err)
	}
	found := map[string]bool{}
	for _, b := range decoded {
		if b.Type != "actions" {
			continue
		}
		for _, e := range b.Elements {
			found[e.ActionID] = true
			if e.Value != "14" {
				t.Errorf("button %s value = %q, want 14", e.ActionID, e.Value)
			}
			if e.ActionID == bot.ActionStop && (e.Style != "danger" || len(e.Confirm) == 0) {
				t.Errorf("stop button style %q confirm %s: want danger with a confirm dialog", e.Style, e.Confirm)
			}
		}
	}
	if !found[bot.ActionStop] || !found[bot.ActionLogs] {
		t.Errorf("buttons found %v, want stop and logs", found)
	}
}

func TestCardMessageMidTrainingLook(t *testing.T) {
	m := bot.CardMessage(overBudgetJob(), renderNow)
	t.Logf("card text of a mid-training job:\n%s", m.Text)
	if !strings.HasPrefix(m.Text, "*#14 obj1 · 150 epochs · training*\n") {
		t.Errorf("card text starts %q", m.Text)
	}
}

func TestCardMessageEscapesUserText(t *testing.T) {
	j := trainingJob()
	j.Spec.Class = "obj<1>&"
	j.Spec.Requester = "<!channel>"
	m := bot.CardMessage(j, renderNow)
	raw, _ := json.Marshal(slack.Blocks{BlockSet: m.Blocks})
	for _, s := range []string{m.Text, string(raw)} {
		if strings.Contains(s, "obj<1>") || strings.Contains(s, "<!channel>") || strings.Contains(s, `\u003c!channel`) {
			t.Errorf("unescaped user text in %s", s)
		}
	}
	if !strings.Contains(m.Text, "obj&lt;1&gt;&amp;") {
		t.Errorf("class not escaped: %s", m.Text)
	}
}

func TestCardMessageStopping(t *testing.T) {
	j := trainingJob()
	j.StopRequest, j.StopReason = jobs.OutcomeCancelled, "stopped by <@U999>"
	m := bot.CardMessage(j, renderNow)
	for _, s := range []string{"training · stopping (cancelled)", "stopped by <@U999>"} {
		if !strings.Contains(m.Text, s) {
			t.Errorf("text lacks %q:\n%s", s, m.Text)
		}
	}
}

func TestCardMessageNaNLoss(t *testing.T) {
	j := trainingJob()
	j.Progress.EpochLoss = math.NaN()
	j.Progress.LossHistory[2] = math.NaN()
	m := bot.CardMessage(j, renderNow)
	if !strings.Contains(m.Text, "epoch NaN") {
		t.Errorf("a NaN loss should show as NaN: %s", m.Text)
	}
	if _, err := json.Marshal(slack.Blocks{BlockSet: m.Blocks}); err != nil {
		t.Errorf("marshal: %v", err)
	}
}

func BenchmarkCardMessage(b *testing.B) {
	j := overBudgetJob()
	for b.Loop() {
		m := bot.CardMessage(j, renderNow)
		if len(m.Blocks) == 0 {
			b.Fatal("no blocks")
		}
	}
}
