package bot_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"

	"github.com/cpbot/cpbot/bot"
	"github.com/cpbot/cpbot/internal/testenv"
	"github.com/cpbot/cpbot/jobs"
)

// gatePoster records what the bot sends; while gate is closed, posts wait.
type gatePoster struct {
	mu      sync.Mutex
	posts   []bot.Message
	updates []time.Time
	uploads []string
	gate    chan struct{}
}

func (p *gatePoster) Post(ctx context.Context, m bot.Message) (string, error) {
	if m.ThreadTS != "" {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.posts = append(p.posts, m)
	return "1.0", nil
}

func (p *gatePoster) Update(_ context.Context, _ string, _ bot.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.updates = append(p.updates, time.Now())
	return nil
}

func (p *gatePoster) Ephemeral(context.Context, string, bot.Message) error { return nil }

func (p *gatePoster) Upload(_ context.Context, _, _, filename, _ string, _ []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.uploads = append(p.uploads, filename)
	return nil
}

func (p *gatePoster) PublishHome(context.Context, string, slack.HomeTabViewRequest) error { return nil }

func (p *gatePoster) threadTexts() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, m := range p.posts {
		if m.ThreadTS != "" {
			out = append(out, m.Text)
		}
	}
	return out
}

// TestNotifierMergesEpochsAndCoalescesUpdates holds the thread back (as a
// channel's rate limit does) while epochs finish: they arrive as one reply,
// in order after the milestone before them, and the card is updated at most
// once per UpdateEvery however often the job changes.
func TestNotifierMergesEpochsAndCoalescesUpdates(t *testing.T) {
	p := &gatePoster{gate: make(chan struct{})}
	b := bot.New(bot.Config{UpdateEvery: 200 * time.Millisecond}, p)
	ctx := context.Background()
	j := &jobs.Job{ID: 7, Spec: jobs.Spec{Class: "obj1", Epochs: 10, Channel: "C0ONE", Requester: "U1"}, State: jobs.StateTraining}
	ref, err := b.JobCreated(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	j.NotifyRef = ref
	b.Milestone(ctx, j, 1, "training started")
	for e := 1; e <= 4; e++ {
		j.Progress.Epoch = e
		b.EpochsDone(ctx, j, int64(1+e), []jobs.EpochReport{{Epoch: e, Epochs: 10, Loss: 1 / float64(e)}})
		for range 20 {
			b.JobChanged(ctx, j)
		}
	}
	start := time.Now()
	close(p.gate)
	testenv.WaitFor(t, 5*time.Second, "two thread replies", func() bool { return len(p.threadTexts()) == 2 })
	got := p.threadTexts()
	if !strings.Contains(got[0], "training started") {
		t.Errorf("first reply %q, want the milestone", got[0])
	}
	for e := 1; e <= 4; e++ {
		if !strings.Contains(got[1], "epoch "+string(rune('0'+e))+"/10") {
			t.Errorf("merged reply lacks epoch %d: %q", e, got[1])
		}
	}
	time.Sleep(500 * time.Millisecond)
	b.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.updates); n == 0 || n > 1+int(time.Since(start)/(200*time.Millisecond))+1 {
		t.Errorf("%d card updates for 80 changes in %v, want at most one per 200ms", n, time.Since(start))
	}
	for i := 1; i < len(p.updates); i++ {
		if d := p.updates[i].Sub(p.updates[i-1]); d < 150*time.Millisecond { // scheduling jitter allowed
			t.Errorf("two card updates %v apart", d)
		}
	}
}
