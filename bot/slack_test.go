package bot_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/time/rate"

	"github.com/cpbot/cpbot/bot"
	"github.com/cpbot/cpbot/bot/slacktest"
	"github.com/cpbot/cpbot/internal/testenv"
	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// slackWorld is the whole bot: the real slack-go socket-mode client against
// the fake Slack, the job service against the fake cloud with simulated
// instances, and a real bbolt store.
type slackWorld struct {
	*testenv.World
	slack *slacktest.Server
	bot   *bot.Bot
	svc   *jobs.Service
}

type slackOpts struct {
	bot      bot.Config
	env      testenv.Options
	perSec   rate.Limit // new messages per channel per second; default 20
	jobsConf func(*jobs.Config)
}

func newSlackWorld(t *testing.T, o slackOpts) *slackWorld {
	t.Helper()
	tw := testenv.New(t, o.env)
	srv := slacktest.NewServer()
	t.Cleanup(srv.Close)
	api := slack.New(srv.BotToken(), slack.OptionAppLevelToken(srv.AppToken()), slack.OptionAPIURL(srv.URL()+"/api/"))
	if o.perSec == 0 {
		o.perSec = 20
	}
	poster := bot.NewSlackPoster(api, bot.PosterOptions{PerChannel: o.perSec, UpdatePerChannel: o.perSec, MaxWait: 30 * time.Second})
	if o.bot.UpdateEvery == 0 {
		o.bot.UpdateEvery = 100 * time.Millisecond
	}
	b := bot.New(o.bot, poster)
	cfg := tw.Config
	if o.jobsConf != nil {
		o.jobsConf(&cfg)
	}
	svc := jobs.NewService(cfg, tw.DB, b, tw.Client)
	b.Jobs = svc
	if err := svc.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	sm := &bot.Slack{Bot: b, Client: socketmode.New(api)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sm.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		svc.Close()
		b.Close()
	})
	return &slackWorld{World: tw, slack: srv, bot: b, svc: svc}
}

func (w *slackWorld) slash(t *testing.T, user, channel, text string) slacktest.Ack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := w.slack.SendSlashCommand(ctx, slacktest.SlashCommand{UserID: user, ChannelID: channel, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := w.slack.WaitAck(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

// reply waits for a message in channel (ephemeral or not) containing want.
func (w *slackWorld) reply(t *testing.T, channel, want string) slacktest.Message {
	t.Helper()
	var got slacktest.Message
	testenv.WaitFor(t, 30*time.Second, "a message containing "+want, func() bool {
		for _, m := range w.slack.Messages(channel) {
			if strings.Contains(m.Text, want) {
				got = m
				return true
			}
		}
		return false
	})
	return got
}

func (w *slackWorld) thread(channel, ts string) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range w.slack.Messages(channel) {
		if m.ThreadTS == ts {
			out = append(out, m)
		}
	}
	return out
}

func joinTexts(ms []slacktest.Message) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.Text + "\n")
	}
	return b.String()
}

func TestSlackTrainEndToEnd(t *testing.T) {
	w := newSlackWorld(t, slackOpts{})
	ack := w.slash(t, "U1", "C0ONE", "train obj1 3 --budget 20")
	if len(ack.Payload) != 0 && string(ack.Payload) != "null" {
		t.Errorf("a good command's ack carries %s, want nothing", ack.Payload)
	}
	w.reply(t, "C0ONE", "queued #1 obj1")
	card := w.reply(t, "C0ONE", "#1 obj1")
	j := w.WaitState(t, 1, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeSucceeded {
		t.Fatalf("outcome %s (%s)", j.Outcome, j.Reason)
	}
	testenv.WaitFor(t, 10*time.Second, "the summary and the chart", func() bool {
		return strings.Contains(joinTexts(w.thread("C0ONE", card.TS)), "succeeded") && len(w.slack.Uploads()) == 1
	})
	thread := joinTexts(w.thread("C0ONE", card.TS))
	for _, want := range []string{"instance up", "training started", "epoch 1/3", "epoch 3/3", "loss "} {
		if !strings.Contains(thread, want) {
			t.Errorf("thread lacks %q:\n%s", want, thread)
		}
	}
	testenv.WaitFor(t, 5*time.Second, "the final card", func() bool {
		for _, m := range w.slack.Messages("C0ONE") {
			if m.TS == card.TS {
				card = m
			}
		}
		return strings.Contains(card.Text, "succeeded")
	})
	if card.Edits == 0 || !strings.Contains(card.Text, "3/3") {
		t.Errorf("card after %d edits: %s", card.Edits, card.Text)
	}
	if strings.Contains(string(card.Blocks), bot.ActionStop) {
		t.Errorf("a finished job's card still has a Stop button")
	}
	up := w.slack.Uploads()[0]
	if up.ThreadTS != card.TS || !strings.HasSuffix(up.Filename, ".png") || len(up.Bytes) < 100 || string(up.Bytes[1:4]) != "PNG" {
		t.Errorf("upload %s in thread %q (card %s), %d bytes", up.Filename, up.ThreadTS, card.TS, len(up.Bytes))
	}
	if n := w.Cloud.Launches(); n != 1 {
		t.Errorf("%d launches, want 1", n)
	}
	w.AssertNothingBilling(t)
}

func TestSlackBadInputLaunchesNothing(t *testing.T) {
	w := newSlackWorld(t, slackOpts{})
	for _, tc := range []struct{ text, want string }{
		{"train obj1 5000", "epochs"},
		{"train obj1; rm -rf /", "usage: /contourpose train"},
		{"train obj1 --lr 7", "lr"},
		{"train $(reboot)", "usage"},
		{"fly me to the moon", "usage"},
	} {
		ack := w.slash(t, "U1", "C0ONE", tc.text)
		var p struct{ Text, ResponseType string }
		json.Unmarshal(ack.Payload, &p)
		if !strings.Contains(p.Text, tc.want) {
			t.Errorf("%q: ack %s, want an ephemeral reply mentioning %q", tc.text, ack.Payload, tc.want)
		}
	}
	// Well-formed but wrong: the job service refuses it.
	w.slash(t, "U1", "C0ONE", "train obj99 3")
	w.reply(t, "C0ONE", `unknown class "obj99"`)
	w.slash(t, "U1", "C0ONE", "train obj1 3 --gpu gpu_9x_nothing")
	w.reply(t, "C0ONE", "unknown GPU type")
	w.slash(t, "U1", "C0ONE", "stop #42")
	w.reply(t, "C0ONE", "no job #42")
	if n := w.Cloud.Launches(); n != 0 {
		t.Errorf("%d launches after bad input, want 0", n)
	}
}

func TestSlackDuplicateDelivery(t *testing.T) {
	w := newSlackWorld(t, slackOpts{})
	ctx := context.Background()
	id, err := w.slack.SendSlashCommand(ctx, slacktest.SlashCommand{UserID: "U1", ChannelID: "C0ONE", Text: "train obj1 1", TriggerID: "trig-1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.slack.Redeliver(id); err != nil {
		t.Fatal(err)
	}
	// Slack retrying with a new envelope carries the same trigger id.
	if _, err := w.slack.SendSlashCommand(ctx, slacktest.SlashCommand{UserID: "U1", ChannelID: "C0ONE", Text: "train obj1 1", TriggerID: "trig-1"}); err != nil {
		t.Fatal(err)
	}
	w.WaitState(t, 1, jobs.StateFinished)
	time.Sleep(200 * time.Millisecond)
	js, err := w.svc.List(ctx, jobs.JobFilter{})
	if err != nil || len(js) != 1 {
		t.Fatalf("%d jobs (%v), want 1", len(js), err)
	}
	if n := w.Cloud.Launches(); n != 1 {
		t.Errorf("%d launches, want 1", n)
	}
}

func TestSlackAuthorization(t *testing.T) {
	w := newSlackWorld(t, slackOpts{bot: bot.Config{Users: []string{"U1"}, Admins: []string{"UADMIN"}},
		env: testenv.Options{Trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 100 * time.Millisecond}}})
	w.slash(t, "U2", "C0ONE", "train obj1 2")
	w.reply(t, "C0ONE", "not on this bot's list")
	if n := w.Cloud.Launches(); n != 0 {
		t.Fatalf("an unlisted user launched %d instances", n)
	}
	w.slash(t, "U1", "C0ONE", "train obj1 50")
	card := w.reply(t, "C0ONE", "#1 obj1")
	w.WaitState(t, 1, jobs.StateTraining)
	w.slash(t, "U2", "C0ONE", "stop #1")
	w.reply(t, "C0ONE", "only <@U1> or an admin can stop #1")
	w.slash(t, "U2", "C0ONE", "budget set 900")
	w.reply(t, "C0ONE", "only an admin")

	// An admin presses Stop on the card.
	ctx := context.Background()
	id, err := w.slack.SendBlockAction(ctx, slacktest.BlockAction{ActionID: bot.ActionStop, Value: "1", UserID: "UADMIN", ChannelID: "C0ONE", MessageTS: card.TS})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.slack.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	j := w.WaitState(t, 1, jobs.StateFinished)
	if j.Outcome != jobs.OutcomeCancelled {
		t.Errorf("outcome %s, want cancelled", j.Outcome)
	}
	w.AssertNothingBilling(t)
}

func TestSlackStopByCommandAndButton(t *testing.T) {
	w := newSlackWorld(t, slackOpts{env: testenv.Options{Trainer: lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 100 * time.Millisecond}}})
	w.slash(t, "U1", "C0ONE", "train obj1,obj2 50")
	w.WaitState(t, 1, jobs.StateTraining)
	w.WaitState(t, 2, jobs.StateTraining)
	w.slash(t, "U1", "C0ONE", "stop 1")
	if j := w.WaitState(t, 1, jobs.StateFinished); j.Outcome != jobs.OutcomeCancelled {
		t.Errorf("#1 outcome %s, want cancelled", j.Outcome)
	}
	card := w.reply(t, "C0ONE", "#2 obj2")
	ctx := context.Background()
	testenv.WaitFor(t, 30*time.Second, "an epoch of #2", func() bool {
		j, err := w.DB.Job(ctx, 2)
		return err == nil && j.Progress.Epoch >= 1
	})
	id, err := w.slack.SendBlockAction(ctx, slacktest.BlockAction{ActionID: bot.ActionStop, Value: "2", UserID: "U1", ChannelID: "C0ONE", MessageTS: card.TS})
	if err != nil {
		t.Fatal(err)
	}
	w.slack.WaitAck(ctx, id)
	if j := w.WaitState(t, 2, jobs.StateFinished); j.Outcome != jobs.OutcomeCancelled {
		t.Errorf("#2 outcome %s, want cancelled", j.Outcome)
	}
	// The Logs button answers only the presser.
	id, _ = w.slack.SendBlockAction(ctx, slacktest.BlockAction{ActionID: bot.ActionLogs, Value: "2", UserID: "U1", ChannelID: "C0ONE", MessageTS: card.TS})
	w.slack.WaitAck(ctx, id)
	testenv.WaitFor(t, 10*time.Second, "the logs, shown only to the presser", func() bool {
		for _, m := range w.slack.Messages("C0ONE") {
			if m.Ephemeral && m.User == "U1" && strings.Contains(m.Text, "loss:") {
				return true
			}
		}
		return false
	})
	w.AssertNothingBilling(t)
}

// TestSlackRateLimits runs two jobs in one channel and one in another with
// Slack's real per-channel limit (1 new message per second) and two 429s
// injected, and checks from the fake's call log that no channel got two new
// messages within a second and that nothing was lost.
func TestSlackRateLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs at Slack's real rate")
	}
	w := newSlackWorld(t, slackOpts{perSec: 1, bot: bot.Config{UpdateEvery: 2 * time.Second}})
	w.slack.RateLimitNext("chat.postMessage", 2, time.Second)
	w.slash(t, "U1", "C0ONE", "train obj1,obj2 3")
	w.slash(t, "U2", "C0TWO", "train obj3 3")
	for id := int64(1); id <= 3; id++ {
		if j := w.WaitState(t, id, jobs.StateFinished); j.Outcome != jobs.OutcomeSucceeded {
			t.Fatalf("#%d: %s (%s)", id, j.Outcome, j.Reason)
		}
	}
	testenv.WaitFor(t, 60*time.Second, "three summaries", func() bool {
		return strings.Count(joinTexts(w.slack.Messages("C0ONE")), "succeeded ·")+strings.Count(joinTexts(w.slack.Messages("C0TWO")), "succeeded ·") >= 3
	})
	last := map[string]time.Time{}
	lastUpdate := map[string]time.Time{}
	limited := 0
	for _, c := range w.slack.Calls() {
		switch c.Method {
		case "chat.postMessage", "chat.postEphemeral":
			if c.Status == 429 {
				limited++
				continue
			}
			if prev, ok := last[c.Channel]; ok && c.At.Sub(prev) < 900*time.Millisecond { // arrival jitter allowed
				t.Errorf("%s: two new messages %v apart", c.Channel, c.At.Sub(prev))
			}
			last[c.Channel] = c.At
		case "chat.update":
			if prev, ok := lastUpdate[c.TS]; ok && c.At.Sub(prev) < 1800*time.Millisecond {
				t.Errorf("card %s updated twice within %v", c.TS, c.At.Sub(prev))
			}
			lastUpdate[c.TS] = c.At
		}
	}
	if limited != 2 {
		t.Errorf("%d answers were 429, want the 2 injected", limited)
	}
	// Nothing lost: every epoch of every job is in its thread.
	for _, ch := range []string{"C0ONE", "C0TWO"} {
		text := joinTexts(w.slack.Messages(ch))
		if n := strings.Count(text, "epoch 3/3"); n != map[string]int{"C0ONE": 2, "C0TWO": 1}[ch] {
			t.Errorf("%s: %d jobs reported epoch 3/3:\n%s", ch, n, text)
		}
	}
}

func TestSlackRepliesToQueries(t *testing.T) {
	w := newSlackWorld(t, slackOpts{bot: bot.Config{Admins: []string{"UADMIN"}}})
	w.slash(t, "U1", "C0ONE", "gpus")
	w.reply(t, "C0ONE", "gpu_1x_a100_sxm4")
	w.slash(t, "U1", "C0ONE", "train obj1 1")
	w.WaitState(t, 1, jobs.StateFinished)
	w.slash(t, "U1", "C0ONE", "jobs")
	w.reply(t, "C0ONE", "#1")
	w.slash(t, "U1", "C0ONE", "status #1")
	w.reply(t, "C0ONE", "succeeded")
	w.slash(t, "U1", "C0ONE", "cost")
	w.reply(t, "C0ONE", "<@U1>")
	w.slash(t, "UADMIN", "C0ONE", "budget set 900")
	w.reply(t, "C0ONE", "$900.00")
	w.slash(t, "U1", "C0ONE", "help")
	w.reply(t, "C0ONE", "/contourpose train")
	// Opening the App Home tab publishes the running jobs and the spend.
	if _, err := w.slack.SendAppHomeOpened(context.Background(), "U1"); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the App Home view", func() bool { return len(w.slack.Views()) == 1 })
	if v := w.slack.Views()[0]; v.UserID != "U1" || !strings.Contains(string(v.View), "$900.00") {
		t.Errorf("view for %s: %s, want U1's home with the budget", v.UserID, v.View)
	}
}

// BenchmarkAck measures how fast envelopes are acked with 200 commands in
// flight (target p99 < 50 ms): each is acked before its work starts.
func BenchmarkAck(b *testing.B) {
	for i := 0; i < b.N; i++ {
		benchAck(b)
	}
}

func benchAck(b *testing.B) {
	tw := testenv.New(b, testenv.Options{})
	srv := slacktest.NewServer()
	defer srv.Close()
	api := slack.New(srv.BotToken(), slack.OptionAppLevelToken(srv.AppToken()), slack.OptionAPIURL(srv.URL()+"/api/"))
	bt := bot.New(bot.Config{}, bot.NewSlackPoster(api, bot.PosterOptions{PerChannel: 1000, UpdatePerChannel: 1000}))
	svc := jobs.NewService(tw.Config, tw.DB, bt, tw.Client)
	bt.Jobs = svc
	if err := svc.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	defer bt.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sm := &bot.Slack{Bot: bt, Client: socketmode.New(api)}
	go sm.Run(ctx)

	const n = 200
	sent := make([]time.Time, n)
	ids := make([]string, n)
	texts := []string{"gpus", "jobs", "cost", "status", "train obj1 bogus", "help"}
	for k := 0; k < n; k++ {
		sent[k] = time.Now()
		id, err := srv.SendSlashCommand(ctx, slacktest.SlashCommand{UserID: "U1", ChannelID: "C0ONE", Text: texts[k%len(texts)]})
		if err != nil {
			b.Fatal(err)
		}
		ids[k] = id
	}
	lat := make([]time.Duration, n)
	for k, id := range ids {
		ack, err := srv.WaitAck(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		lat[k] = ack.At.Sub(sent[k])
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[n*99/100].Microseconds())/1000, "ms-p99-ack")
	b.ReportMetric(float64(lat[n/2].Microseconds())/1000, "ms-p50-ack")
}

// TestSlackRepliesThroughResponseURL answers commands through the response
// URL Slack sends with them (it works where the bot is not a member), and
// falls back to an ephemeral message when that URL fails.
func TestSlackRepliesThroughResponseURL(t *testing.T) {
	w := newSlackWorld(t, slackOpts{})
	w.slash(t, "U1", "C0ONE", "help")
	w.reply(t, "C0ONE", "/contourpose train")
	calls := func(method string) int {
		n := 0
		for _, c := range w.slack.Calls() {
			if c.Method == method {
				n++
			}
		}
		return n
	}
	if calls("response_url") != 1 || calls("chat.postEphemeral") != 0 {
		t.Fatalf("replied with %d response URL and %d chat.postEphemeral calls, want 1 and 0", calls("response_url"), calls("chat.postEphemeral"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := w.slack.SendSlashCommand(ctx, slacktest.SlashCommand{UserID: "U1", ChannelID: "C0ONE", Text: "jobs",
		ResponseURL: w.slack.URL() + "/expired-response-url"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.slack.WaitAck(ctx, id); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the fallback reply", func() bool { return calls("chat.postEphemeral") == 1 })
}
