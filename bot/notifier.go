package bot

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/cpbot/cpbot/jobs"
)

var _ jobs.Notifier = (*Bot)(nil)

// A job's notifications go through its card: an outbox with the latest job
// (the card is updated at most once per UpdateEvery, intermediate states
// coalesce) and an ordered queue of thread replies (epochs that pile up while
// the channel's rate limit holds a reply back are merged into one). One
// goroutine per job with pending work sends them; the runner never waits.
type card struct {
	b       *Bot
	id      int64
	channel string
	ts      string

	mu       sync.Mutex
	job      *jobs.Job // latest, nil = card up to date
	queue    []outItem
	final    bool // the job finished: exit once drained
	running  bool
	wake     chan struct{}
	lastEdit time.Time
}

type outItem struct {
	job    *jobs.Job
	seq    int64 // the job event it delivers (the last one, merged epochs)
	text   string
	epochs []jobs.EpochReport
	chart  *chart
}

type chart struct {
	title  string
	first  int
	losses []float64
}

func (c *card) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// JobCreated posts the job's card and returns "channel/ts" as its reference.
func (b *Bot) JobCreated(ctx context.Context, j *jobs.Job) (string, error) {
	m := CardMessage(j, b.Now())
	m.Channel = j.Spec.Channel
	ts, err := b.Poster.Post(ctx, m)
	if err != nil {
		return "", fmt.Errorf("post card of #%d: %w", j.ID, err)
	}
	c := b.card(j.ID, m.Channel, ts)
	c.mu.Lock()
	c.lastEdit = b.Now()
	c.mu.Unlock()
	return m.Channel + "/" + ts, nil
}

// card returns the outbox of a job, creating it from the job's reference.
func (b *Bot) cardOf(j *jobs.Job) (*card, error) {
	channel, ts, ok := strings.Cut(j.NotifyRef, "/")
	if !ok {
		return nil, errNoRef
	}
	return b.card(j.ID, channel, ts), nil
}

func (b *Bot) card(id int64, channel, ts string) *card {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.cards[id]
	if c == nil {
		c = &card{b: b, id: id, channel: channel, ts: ts, wake: make(chan struct{}, 1)}
		b.cards[id] = c
	}
	return c
}

// enqueue changes a card's outbox and makes sure its sender runs.
func (b *Bot) enqueue(j *jobs.Job, fn func(c *card)) error {
	c, err := b.cardOf(j)
	if err != nil {
		return err
	}
	c.mu.Lock()
	fn(c)
	start := !c.running
	c.running = true
	c.mu.Unlock()
	if start {
		b.wg.Add(1)
		go c.send()
	}
	c.kick()
	return nil
}

// JobChanged schedules a card update.
func (b *Bot) JobChanged(_ context.Context, j *jobs.Job) error {
	return b.enqueue(j, func(c *card) { c.job = j })
}

// Milestone adds a line to the job's thread.
func (b *Bot) Milestone(_ context.Context, j *jobs.Job, seq int64, text string) error {
	return b.enqueue(j, func(c *card) {
		c.job = j
		c.queue = append(c.queue, outItem{seq: seq, text: MilestoneText(j, text)})
	})
}

// EpochsDone reports epochs in the thread; epochs not yet sent merge into
// one reply.
func (b *Bot) EpochsDone(_ context.Context, j *jobs.Job, seq int64, reps []jobs.EpochReport) error {
	return b.enqueue(j, func(c *card) {
		c.job = j
		if n := len(c.queue); n > 0 && c.queue[n-1].epochs != nil {
			c.queue[n-1].job, c.queue[n-1].seq = j, seq
			c.queue[n-1].epochs = append(c.queue[n-1].epochs, reps...)
			return
		}
		c.queue = append(c.queue, outItem{job: j, seq: seq, epochs: append([]jobs.EpochReport(nil), reps...)})
	})
}

// JobFinished posts the summary and the loss curve, and updates the card a
// last time.
func (b *Bot) JobFinished(_ context.Context, j *jobs.Job, seq int64, s jobs.Summary) error {
	return b.enqueue(j, func(c *card) {
		c.job = j
		c.final = true
		text := outItem{text: SummaryText(j, s)}
		if countFinite(s.LossHistory) > 0 {
			c.queue = append(c.queue, text, outItem{seq: seq, chart: &chart{title: fmt.Sprintf("%s loss", j.Label()),
				first: j.Progress.HistoryFrom + 1, losses: s.LossHistory}})
			return
		}
		text.seq = seq
		c.queue = append(c.queue, text)
	})
}

// Alert posts a team alert.
func (b *Bot) Alert(ctx context.Context, channel, text string) error {
	if b.AlertChannel != "" {
		channel = b.AlertChannel
	}
	if channel == "" {
		b.Logger.Warn("alert with no channel to post to", "text", text)
		return nil
	}
	_, err := b.Poster.Post(ctx, Message{Channel: channel, Text: text})
	return err
}

// send is a card's sender: thread replies in order, then the card when it
// changed and its last edit is UpdateEvery old. It ends when nothing is
// pending (and starts again on the next notification).
func (c *card) send() {
	b := c.b
	defer b.wg.Done()
	ctx := b.ctx
	for {
		c.mu.Lock()
		var item *outItem
		if len(c.queue) > 0 {
			it := c.queue[0]
			c.queue = c.queue[1:]
			item = &it
		}
		job := c.job
		wait := c.lastEdit.Add(b.UpdateEvery).Sub(b.Now())
		if item == nil && (job == nil || (wait > 0 && !c.final && !b.isClosing())) {
			if job == nil {
				c.running = false
				if c.final {
					b.mu.Lock()
					delete(b.cards, c.id)
					b.mu.Unlock()
				}
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-c.wake:
			}
			t.Stop()
			continue
		}
		if item == nil {
			c.job = nil
			c.lastEdit = b.Now()
		}
		c.mu.Unlock()

		switch {
		case item == nil:
			m := CardMessage(job, b.Now())
			m.Channel = c.channel
			if err := b.Poster.Update(ctx, c.ts, m); err != nil {
				b.Logger.Warn("update card", "job", c.id, "err", err)
			}
		case item.chart != nil:
			png, err := LossChartPNG(item.chart.title, item.chart.first, item.chart.losses)
			if err == nil {
				err = b.Poster.Upload(ctx, c.channel, c.ts, fmt.Sprintf("cpbot-%d-loss.png", c.id), item.chart.title, png)
			}
			if err != nil {
				b.Logger.Warn("loss chart", "job", c.id, "err", err)
			}
		default:
			text := item.text
			if item.epochs != nil {
				text = EpochsText(item.job, item.epochs)
			}
			if _, err := b.Poster.Post(ctx, Message{Channel: c.channel, ThreadTS: c.ts, Text: text}); err != nil {
				b.Logger.Warn("thread reply", "job", c.id, "err", err)
			}
		}
		if item != nil && item.seq > 0 && ctx.Err() == nil {
			b.delivered(ctx, c.id, item.seq)
		}
	}
}

// delivered tells the job service a thread message went out (or was
// refused for good), so a restarted bot does not send it again. A message
// cut off by shutdown is not marked: the next start sends it.
func (b *Bot) delivered(ctx context.Context, id, seq int64) {
	if b.Jobs == nil {
		return
	}
	if err := b.Jobs.Delivered(ctx, id, seq); err != nil {
		b.Logger.Warn("mark delivered", "job", id, "err", err)
	}
}

func (b *Bot) isClosing() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

func countFinite(xs []float64) int {
	n := 0
	for _, x := range xs {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			n++
		}
	}
	return n
}
