package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cpbot/cpbot/bot/slacktest"
)

// jobWait is how long a scenario waits for a job's summary: the bot posts
// at most one new message per second per channel, and a channel busy with
// ten jobs takes two minutes to say everything.
const jobWait = 3 * time.Minute

// summaryRE matches a job's summary line in its thread:
// ":white_check_mark: #3 obj1 succeeded · …".
var summaryRE = regexp.MustCompile(`#(\d+) (\S+) (succeeded|failed|cancelled|over-budget|idle|lost)\b`)

// epochRE matches one epoch line of a thread reply.
var epochRE = regexp.MustCompile(`(?m)epoch (\d+)/(\d+) · loss`)

// Slash types a /contourpose command and waits for its ack. It returns
// the text of an immediate ephemeral answer in the ack, "" if none.
func (w *world) Slash(user, channel, text string) string {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	id, err := w.Slack.SendSlashCommand(ctx, slacktest.SlashCommand{UserID: user, ChannelID: channel, Text: text})
	must(w.t, err)
	ack, err := w.Slack.WaitAck(ctx, id)
	must(w.t, err)
	var p struct{ Text string }
	if len(ack.Payload) > 0 {
		json.Unmarshal(ack.Payload, &p)
	}
	return p.Text
}

// Press presses a button of a job's card and waits for the ack.
func (w *world) Press(user, channel string, card slacktest.Message, action string, job int) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	id, err := w.Slack.SendBlockAction(ctx, slacktest.BlockAction{ActionID: action, Value: strconv.Itoa(job),
		UserID: user, ChannelID: channel, MessageTS: card.TS})
	must(w.t, err)
	_, err = w.Slack.WaitAck(ctx, id)
	must(w.t, err)
}

// Reply types a command and returns the answer shown only to its author:
// the ack's ephemeral text, or else the next new ephemeral message.
func (w *world) Reply(user, channel, text string) string {
	w.t.Helper()
	before := len(w.ephemerals(user, channel))
	if got := w.Slash(user, channel, text); got != "" {
		return got
	}
	var got string
	waitFor(w.t, 60*time.Second, fmt.Sprintf("the reply to %q", text), func() bool {
		es := w.ephemerals(user, channel)
		if len(es) > before {
			got = es[before]
			return true
		}
		return false
	})
	return got
}

// ephemerals returns the texts of the messages shown only to user in
// channel, oldest first.
func (w *world) ephemerals(user, channel string) []string {
	var out []string
	for _, m := range w.Slack.Messages(channel) {
		if m.Ephemeral && m.User == user {
			out = append(out, m.Text)
		}
	}
	return out
}

// Ephemeral waits for a message shown only to user in channel that
// contains want, and returns its text.
func (w *world) Ephemeral(user, channel, want string) string {
	w.t.Helper()
	var got string
	waitFor(w.t, 60*time.Second, fmt.Sprintf("a reply to %s containing %q", user, want), func() bool {
		for _, m := range w.Slack.Messages(channel) {
			if m.Ephemeral && m.User == user && strings.Contains(m.Text, want) {
				got = m.Text
				return true
			}
		}
		return false
	})
	return got
}

// Card waits for job id's card in channel.
func (w *world) Card(channel string, id int) slacktest.Message {
	w.t.Helper()
	var card slacktest.Message
	waitFor(w.t, jobWait, fmt.Sprintf("the card of #%d", id), func() bool {
		var ok bool
		card, ok = w.findCard(channel, id)
		return ok
	})
	return card
}

func (w *world) findCard(channel string, id int) (slacktest.Message, bool) {
	prefix := fmt.Sprintf("#%d ", id)
	for _, m := range w.Slack.Messages(channel) {
		if !m.Ephemeral && m.ThreadTS == "" && m.User == slacktest.BotUserID && strings.HasPrefix(strings.TrimLeft(m.Text, "*"), prefix) {
			return m, true
		}
	}
	return slacktest.Message{}, false
}

// Thread returns the texts of the replies in a card's thread, in order.
func (w *world) Thread(channel string, card slacktest.Message) []string {
	var out []string
	for _, m := range w.Slack.Messages(channel) {
		if m.ThreadTS == card.TS && !m.Ephemeral {
			out = append(out, m.Text)
		}
	}
	return out
}

// ThreadHas waits until the thread of job id holds a reply containing want.
func (w *world) ThreadHas(channel string, id int, want string, d time.Duration) {
	w.t.Helper()
	card := w.Card(channel, id)
	waitFor(w.t, d, fmt.Sprintf("%q in the thread of #%d", want, id), func() bool {
		return strings.Contains(strings.Join(w.Thread(channel, card), "\n"), want)
	})
}

// Outcome waits for job id's summary in its thread and returns the
// outcome and the summary's text.
func (w *world) Outcome(channel string, id int) (outcome, summary string) {
	w.t.Helper()
	card := w.Card(channel, id)
	waitFor(w.t, jobWait, fmt.Sprintf("the summary of #%d", id), func() bool {
		for _, text := range w.Thread(channel, card) {
			if m := summaryRE.FindStringSubmatch(text); m != nil && m[1] == strconv.Itoa(id) {
				outcome, summary = m[3], text
				return true
			}
		}
		return false
	})
	return outcome, summary
}

// WantOutcome fails the test unless job id ends with want.
func (w *world) WantOutcome(channel string, id int, want string) string {
	w.t.Helper()
	got, summary := w.Outcome(channel, id)
	if got != want {
		w.t.Errorf("#%d ended %s, want %s:\n%s", id, got, want, summary)
	}
	return summary
}

// Epochs counts how often each epoch of job id is reported in its thread.
func (w *world) Epochs(channel string, id int) map[int]int {
	card := w.Card(channel, id)
	seen := map[int]int{}
	for _, text := range w.Thread(channel, card) {
		for _, m := range epochRE.FindAllStringSubmatch(text, -1) {
			n, _ := strconv.Atoi(m[1])
			seen[n]++
		}
	}
	return seen
}

// AssertEpochsOnce fails the test unless epochs 1…n of job id are each
// reported exactly once in its thread.
func (w *world) AssertEpochsOnce(channel string, id, n int) {
	w.t.Helper()
	seen := w.Epochs(channel, id)
	for e := 1; e <= n; e++ {
		if seen[e] != 1 {
			w.t.Errorf("#%d: epoch %d reported %d times, want once (all: %v)", id, e, seen[e], seen)
		}
	}
	if len(seen) != n {
		w.t.Errorf("#%d: epochs reported %v, want 1…%d", id, seen, n)
	}
}

// slashAsync is Slash for use from other goroutines: it returns an error
// text instead of failing the test.
func (w *world) slashAsync(user, channel, text string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	id, err := w.Slack.SendSlashCommand(ctx, slacktest.SlashCommand{UserID: user, ChannelID: channel, Text: text})
	if err != nil {
		return err.Error()
	}
	if _, err := w.Slack.WaitAck(ctx, id); err != nil {
		return err.Error()
	}
	return ""
}
