package e2e_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cpbot/cpbot/bot"
	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// slowTrainer trains for a long time: jobs that must be stopped.
var slowTrainer = lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 250 * time.Millisecond}

// TestStop stops one job by command and one by its card's Stop button,
// after a stranger's stop was refused: both end cancelled, instances
// terminated, and nothing is billed after the stop.
func TestStop(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{Trainer: slowTrainer, Env: map[string]string{"CPBOT_ADMINS": admin}})
	w.Slash(userA, chanA, "train obj1,obj2 50")
	w.WaitTrained(1, 1)
	w.WaitTrained(2, 1)

	if got := w.Reply(userB, chanA, "stop #1"); !strings.Contains(got, "only <@"+userA+"> or an admin can stop #1") {
		t.Errorf("a stranger's stop answered %q", got)
	}
	if got := w.Reply(userA, chanA, "stop #1"); !strings.Contains(got, "stopping #1 obj1") {
		t.Errorf("stop answered %q", got)
	}
	w.WantOutcome(chanA, 1, "cancelled")

	card := w.Card(chanA, 2)
	w.Press(admin, chanA, card, bot.ActionStop, 2)
	w.WantOutcome(chanA, 2, "cancelled")
	w.AssertAllTerminated(2)
	for _, in := range w.Cloud.Instances() {
		if m := w.Cloud.BilledMinutes(in.ID); m != 1 {
			t.Errorf("%s billed %d minutes, want 1", in.Name, m)
		}
	}
}

// TestJobBudget: a job with a budget below one billed minute is stopped
// by the watchdog as over budget.
func TestJobBudget(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{Trainer: slowTrainer})
	w.Slash(userA, chanA, "train obj1 50 --budget 0.01")
	summary := w.WantOutcome(chanA, 1, "over-budget")
	if !strings.Contains(summary, "budget") {
		t.Errorf("the summary does not say why: %s", summary)
	}
	w.AssertAllTerminated(1)
	for _, in := range w.Cloud.Instances() {
		if m := w.Cloud.BilledMinutes(in.ID); m != 1 {
			t.Errorf("%s billed %d minutes, want 1", in.Name, m)
		}
	}
}

// TestTeamBudget: once the team has spent its tiny monthly budget the
// alert channel hears of it and a new train command is refused.
func TestTeamBudget(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{Trainer: slowTrainer, Env: map[string]string{
		"CPBOT_TEAM_BUDGET_USD": "0.01", "CPBOT_ALERT_CHANNEL": alertChannel}})
	w.Slash(userA, chanA, "train obj1 50")
	waitFor(t, jobWait, "a team budget alert", func() bool {
		for _, m := range w.Slack.Messages(alertChannel) {
			if strings.Contains(m.Text, "the team has spent") && strings.Contains(m.Text, "new training is refused") {
				return true
			}
		}
		return false
	})
	if got := w.Reply(userB, chanA, "train obj2 1"); !strings.Contains(got, "the team has spent") {
		t.Errorf("a train over the team budget answered %q", got)
	}
	w.Slash(userA, chanA, "stop 1")
	w.WantOutcome(chanA, 1, "cancelled")
	w.AssertAllTerminated(1)
	alerts := 0
	for _, m := range w.Slack.Messages(alertChannel) {
		if strings.Contains(m.Text, "the team has spent") {
			alerts++
		}
	}
	if alerts != 1 {
		t.Errorf("%d team budget alerts, want 1", alerts)
	}
	if _, ok := w.findCard(chanA, 2); ok {
		t.Error("the refused request got a job card")
	}
}

// TestIdle: a trainer that hangs after its first epoch is stopped as idle.
func TestIdle(t *testing.T) {
	t.Parallel()
	w := newWorld(t, options{Trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 20 * time.Millisecond, Mode: lambdatest.ModeHang},
		Env: map[string]string{"CPBOT_IDLE_AFTER": "3s"}})
	w.Slash(userA, chanA, "train obj1 20")
	summary := w.WantOutcome(chanA, 1, "idle")
	if !strings.Contains(summary, "no training progress") {
		t.Errorf("the summary does not say why: %s", summary)
	}
	w.AssertAllTerminated(1)
}

// TestOrphanReaped: a cpbot-… instance no job owns is reported in the
// alert channel, then terminated after the grace period; an instance
// without the prefix is never touched.
func TestOrphanReaped(t *testing.T) {
	t.Parallel()
	var orphan, foreign lambda.Instance
	w := newWorld(t, options{Env: map[string]string{"CPBOT_ORPHAN_GRACE": "2s", "CPBOT_ALERT_CHANNEL": alertChannel},
		Cloud: func(c *lambdatest.Server) {
			var err error
			orphan, err = c.AddInstance(lambdatest.Seed{Name: "cpbot-99-1", InstanceTypeName: "gpu_1x_a10", RegionName: "us-east-1", Status: lambda.StatusActive})
			must(t, err)
			foreign, err = c.AddInstance(lambdatest.Seed{Name: "someone-elses-notebook", InstanceTypeName: "gpu_1x_a10", RegionName: "us-east-1", Status: lambda.StatusActive})
			must(t, err)
		}})
	var reported, reaped time.Time
	waitFor(t, time.Minute, "the orphan to be reported and reaped", func() bool {
		for _, c := range w.Slack.Calls() {
			if c.Channel != alertChannel || c.Method != "chat.postMessage" || c.Status != 200 {
				continue
			}
			if strings.Contains(c.Text, "orphan instance cpbot-99-1 ("+orphan.ID) && reported.IsZero() {
				reported = c.At
			}
			if strings.Contains(c.Text, "terminated orphan instance cpbot-99-1") {
				reaped = c.At
			}
		}
		return !reported.IsZero() && !reaped.IsZero()
	})
	if reaped.Sub(reported) < 2*time.Second-pacing {
		t.Errorf("reaped %v after the report, want after the 2s grace", reaped.Sub(reported))
	}
	for _, in := range w.Cloud.Instances() {
		switch in.ID {
		case orphan.ID:
			if in.Status != lambda.StatusTerminated && in.Status != lambda.StatusTerminating {
				t.Errorf("the orphan is %s", in.Status)
			}
		case foreign.ID:
			if in.Status != lambda.StatusActive {
				t.Errorf("the unprefixed instance is %s, want untouched", in.Status)
			}
		}
	}
	for _, r := range w.Cloud.Requests() {
		if r.Operation == lambdatest.OpTerminate && strings.Contains(string(r.Body), foreign.ID) {
			t.Error("the bot asked to terminate an instance without the cpbot- prefix")
		}
	}
	for _, m := range w.Slack.Messages(alertChannel) {
		if strings.Contains(m.Text, foreign.Name) {
			t.Errorf("the unprefixed instance was reported: %s", m.Text)
		}
	}
}
