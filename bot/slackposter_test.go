package bot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/cpbot/cpbot/bot"
	"github.com/cpbot/cpbot/bot/slacktest"
)

// posterFixture is a fake Slack with a real slack-go client and a
// SlackPoster on it.
type posterFixture struct {
	srv   *slacktest.Server
	api   *slack.Client
	p     *bot.SlackPoster
	flaky *posterFlakyTransport
	logs  *posterLogBuffer
}

// newPosterFixture starts a fake Slack; opts.Logger is set to a buffer.
func newPosterFixture(t testing.TB, opts bot.PosterOptions) *posterFixture {
	t.Helper()
	srv := slacktest.NewServer()
	t.Cleanup(srv.Close)
	flaky := &posterFlakyTransport{fail: map[string]int{}, attempts: map[string]int{}}
	api := slack.New(srv.BotToken(), slack.OptionAPIURL(srv.URL()+"/api/"),
		slack.OptionHTTPClient(&http.Client{Transport: flaky}))
	logs := &posterLogBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	return &posterFixture{srv: srv, api: api, p: bot.NewSlackPoster(api, opts), flaky: flaky, logs: logs}
}

// calls returns the recorded calls of one Web API method.
func (f *posterFixture) calls(method string) []slacktest.Call {
	var out []slacktest.Call
	for _, c := range f.srv.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// posterFlakyTransport fails the next fail[method] requests of a Web API
// method in transport, before they reach the server, and counts attempts.
type posterFlakyTransport struct {
	mu       sync.Mutex
	fail     map[string]int
	attempts map[string]int
}

func (t *posterFlakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	t.mu.Lock()
	t.attempts[method]++
	failing := t.fail[method] > 0
	if failing {
		t.fail[method]--
	}
	t.mu.Unlock()
	if failing {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, errors.New("connection reset by peer (injected)")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (t *posterFlakyTransport) failNext(method string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fail[method] = n
}

func (t *posterFlakyTransport) attemptsOf(method string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.attempts[method]
}

// posterLogBuffer is a bytes.Buffer safe for concurrent log writes.
type posterLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *posterLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *posterLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func posterContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func posterSection(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func posterHome(text string) slack.HomeTabViewRequest {
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: []slack.Block{posterSection(text)}}}
}

// posterFind returns the message with ts in channel.
func posterFind(t *testing.T, srv *slacktest.Server, channel, ts string) slacktest.Message {
	t.Helper()
	for _, m := range srv.Messages(channel) {
		if m.TS == ts {
			return m
		}
	}
	t.Fatalf("no message %s in %s", ts, channel)
	return slacktest.Message{}
}

// TestSlackPosterDelivers walks a job card's life: card, edit, thread
// reply, ephemeral, picture in the thread, App Home.
func TestSlackPosterDelivers(t *testing.T) {
	f := newPosterFixture(t, bot.PosterOptions{PerChannel: rate.Inf})
	ctx := posterContext(t)
	const ch, user = "C0POST001", "U0ALICE01"

	card, err := f.p.Post(ctx, bot.Message{Channel: ch, Text: "#1 obj1 queued", Blocks: []slack.Block{posterSection("*#1* queued")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.p.Update(ctx, card, bot.Message{Channel: ch, Text: "#1 obj1 training", Blocks: []slack.Block{posterSection("*#1* training")}}); err != nil {
		t.Fatal(err)
	}
	reply, err := f.p.Post(ctx, bot.Message{Channel: ch, ThreadTS: card, Text: "epoch 1/150"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.p.Ephemeral(ctx, user, bot.Message{Channel: ch, Text: "only Alice or an admin can stop #1"}); err != nil {
		t.Fatal(err)
	}
	png := []byte("\x89PNG fake loss curve")
	if err := f.p.Upload(ctx, ch, card, "loss-1.png", "loss of #1", png); err != nil {
		t.Fatal(err)
	}
	if err := f.p.PublishHome(ctx, user, posterHome("your jobs: #1")); err != nil {
		t.Fatal(err)
	}

	got := posterFind(t, f.srv, ch, card)
	if got.Text != "#1 obj1 training" || !strings.Contains(string(got.Blocks), "*#1* training") || got.Edits != 1 || got.ThreadTS != "" {
		t.Errorf("card = %+v", got)
	}
	if got := posterFind(t, f.srv, ch, reply); got.ThreadTS != card || got.Text != "epoch 1/150" {
		t.Errorf("reply = %+v, want thread %s", got, card)
	}
	var eph []slacktest.Message
	for _, m := range f.srv.Messages(ch) {
		if m.Ephemeral {
			eph = append(eph, m)
		}
	}
	if len(eph) != 1 || eph[0].User != user || !strings.Contains(eph[0].Text, "only Alice") {
		t.Errorf("ephemerals = %+v", eph)
	}
	ups := f.srv.Uploads()
	if len(ups) != 1 || !bytes.Equal(ups[0].Bytes, png) || ups[0].Filename != "loss-1.png" ||
		ups[0].Title != "loss of #1" || ups[0].Channel != ch || ups[0].ThreadTS != card {
		t.Errorf("uploads = %+v", ups)
	}
	views := f.srv.Views()
	if len(views) != 1 || views[0].UserID != user || !strings.Contains(string(views[0].View), "your jobs: #1") {
		t.Fatalf("views = %+v", views)
	}
	var view struct{ Type string }
	if err := json.Unmarshal(views[0].View, &view); err != nil || view.Type != "home" {
		t.Errorf("view type %q, %v", view.Type, err)
	}
}

// TestSlackPosterCutsToSlackLimits checks that overlong text and too many
// blocks are cut, with a warning, rather than refused.
func TestSlackPosterCutsToSlackLimits(t *testing.T) {
	f := newPosterFixture(t, bot.PosterOptions{PerChannel: rate.Inf})
	ctx := posterContext(t)
	const ch = "C0POST002"
	long := strings.Repeat("é", bot.MaxMessageText+500)
	var blocks []slack.Block
	for i := range bot.MaxMessageBlocks + 10 {
		blocks = append(blocks, posterSection(strings.Repeat("x", i+1)))
	}
	ts, err := f.p.Post(ctx, bot.Message{Channel: ch})
	if err == nil {
		t.Fatalf("an empty message was accepted as %s", ts)
	}
	ts, err = f.p.Post(ctx, bot.Message{Channel: ch, Text: "card"})
	if err != nil {
		t.Fatal(err)
	}
	send := map[string]func() error{
		"chat.postMessage": func() error {
			_, err := f.p.Post(ctx, bot.Message{Channel: ch, Text: long, Blocks: blocks})
			return err
		},
		"chat.update": func() error {
			return f.p.Update(ctx, ts, bot.Message{Channel: ch, Text: long, Blocks: blocks})
		},
		"chat.postEphemeral": func() error {
			return f.p.Ephemeral(ctx, "U0BOB0001", bot.Message{Channel: ch, Text: long, Blocks: blocks})
		},
	}
	for method, fn := range send {
		t.Run(method, func(t *testing.T) {
			if err := fn(); err != nil {
				t.Fatal(err)
			}
			calls := f.calls(method)
			last := calls[len(calls)-1]
			if n := len([]rune(last.Text)); n != bot.MaxMessageText || !strings.HasPrefix(long, strings.TrimSuffix(last.Text, "…")) {
				t.Errorf("text of %d runes sent", n)
			}
			var sent []json.RawMessage
			if err := json.Unmarshal(last.Blocks, &sent); err != nil || len(sent) != bot.MaxMessageBlocks {
				t.Errorf("%d blocks sent, %v", len(sent), err)
			}
		})
	}
	for _, warning := range []string{"message text truncated", "message blocks dropped"} {
		if !strings.Contains(f.logs.String(), warning) {
			t.Errorf("no %q warning in the log", warning)
		}
	}
}

// TestSlackPosterPerChannelRate floods two channels from many goroutines
// and reads the spacing of the posts from the fake's call log.
func TestSlackPosterPerChannelRate(t *testing.T) {
	const perSecond, workers, each = 20, 5, 2
	f := newPosterFixture(t, bot.PosterOptions{PerChannel: perSecond, Burst: 1})
	ctx := posterContext(t)
	channels := []string{"C0RATE0A1", "C0RATE0B1"}
	// One post each first, so both channels' schedules start together.
	for _, ch := range channels {
		if _, err := f.p.Post(ctx, bot.Message{Channel: ch, Text: "first"}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(channels)*workers*each)
	for _, ch := range channels {
		for range workers {
			wg.Go(func() {
				for range each {
					_, err := f.p.Post(ctx, bot.Message{Channel: ch, Text: "epoch"})
					errs <- err
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	interval := time.Second / perSecond
	const tolerance = 15 * time.Millisecond
	at := map[string][]time.Time{}
	for _, c := range f.calls("chat.postMessage") {
		at[c.Channel] = append(at[c.Channel], c.At)
	}
	for _, ch := range channels {
		if got, want := len(f.srv.Messages(ch)), 1+workers*each; got != want || len(at[ch]) != want {
			t.Errorf("%s: %d messages from %d calls, want %d", ch, got, len(at[ch]), want)
		}
		// The limiter spaces the sends; the fake sees arrivals, which
		// jitter on a loaded machine. Any k+1 consecutive posts span at
		// least k intervals, less one jitter.
		for i := 1; i < len(at[ch]); i++ {
			for k := 1; k <= i; k++ {
				if span := at[ch][i].Sub(at[ch][i-k]); span < time.Duration(k)*interval-tolerance {
					t.Errorf("%s: posts %d..%d span %v, want ≥ %v", ch, i-k, i, span, time.Duration(k)*interval)
				}
			}
		}
	}
	// Independent channels post side by side: a single shared limiter
	// would keep every pair of calls an interval apart.
	closest := time.Hour
	for _, a := range at[channels[0]] {
		for _, b := range at[channels[1]] {
			closest = min(closest, max(a.Sub(b), b.Sub(a)))
		}
	}
	if closest >= interval/2 {
		t.Errorf("the two channels' posts are never closer than %v: they share a limit", closest)
	}
}

// TestSlackPosterWaitsOut429 refuses each kind of call with 429s and
// checks that it still lands exactly once, after Retry-After.
func TestSlackPosterWaitsOut429(t *testing.T) {
	const ch, user = "C0LIMIT01", "U0ALICE01"
	tests := []struct {
		name     string
		limited  string // the method refused
		refusals int
		do       func(ctx context.Context, f *posterFixture, card string) error
		landed   func(f *posterFixture, card string) int
	}{
		{"post", "chat.postMessage", 2,
			func(ctx context.Context, f *posterFixture, card string) error {
				_, err := f.p.Post(ctx, bot.Message{Channel: ch, ThreadTS: card, Text: "epoch 3/150"})
				return err
			},
			func(f *posterFixture, card string) int {
				n := 0
				for _, m := range f.srv.Messages(ch) {
					if m.ThreadTS == card && m.Text == "epoch 3/150" {
						n++
					}
				}
				return n
			}},
		{"update", "chat.update", 1,
			func(ctx context.Context, f *posterFixture, card string) error {
				return f.p.Update(ctx, card, bot.Message{Channel: ch, Text: "training"})
			},
			func(f *posterFixture, card string) int {
				for _, m := range f.srv.Messages(ch) {
					if m.TS == card && m.Text == "training" {
						return m.Edits
					}
				}
				return 0
			}},
		{"ephemeral", "chat.postEphemeral", 1,
			func(ctx context.Context, f *posterFixture, card string) error {
				return f.p.Ephemeral(ctx, user, bot.Message{Channel: ch, Text: "not yours"})
			},
			func(f *posterFixture, card string) int {
				n := 0
				for _, m := range f.srv.Messages(ch) {
					if m.Ephemeral {
						n++
					}
				}
				return n
			}},
		{"upload", "files.completeUploadExternal", 1,
			func(ctx context.Context, f *posterFixture, card string) error {
				return f.p.Upload(ctx, ch, card, "loss.png", "loss", []byte("png"))
			},
			func(f *posterFixture, card string) int { return len(f.srv.Uploads()) }},
		{"home", "views.publish", 1,
			func(ctx context.Context, f *posterFixture, card string) error {
				return f.p.PublishHome(ctx, user, posterHome("jobs"))
			},
			func(f *posterFixture, card string) int { return len(f.srv.Views()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newPosterFixture(t, bot.PosterOptions{PerChannel: rate.Inf, UpdatePerChannel: rate.Inf})
			ctx := posterContext(t)
			card, err := f.p.Post(ctx, bot.Message{Channel: ch, Text: "card"})
			if err != nil {
				t.Fatal(err)
			}
			f.srv.RateLimitNext(tt.limited, tt.refusals, time.Second)
			start := time.Now()
			if err := tt.do(ctx, f, card); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < time.Duration(tt.refusals)*time.Second {
				t.Errorf("done after %v, before Retry-After", took)
			}
			if n := tt.landed(f, card); n != 1 {
				t.Errorf("landed %d times, want once", n)
			}
			calls := f.calls(tt.limited)
			var statuses []int
			for _, c := range calls {
				statuses = append(statuses, c.Status)
			}
			want := append(slices.Repeat([]int{http.StatusTooManyRequests}, tt.refusals), http.StatusOK)
			if tt.limited == "chat.postMessage" {
				want = append([]int{http.StatusOK}, want...) // the card
			}
			if !slices.Equal(statuses, want) {
				t.Fatalf("%s statuses = %v, want %v", tt.limited, statuses, want)
			}
			for i := 1; i < len(calls); i++ {
				if calls[i-1].Status == http.StatusTooManyRequests && calls[i].At.Sub(calls[i-1].At) < time.Second {
					t.Errorf("retry %d came %v after a 429 with Retry-After 1s", i, calls[i].At.Sub(calls[i-1].At))
				}
			}
		})
	}
}

// TestSlackPosterStopsWaiting covers the ways a wait ends early: the
// caller's context, its deadline, and MaxWait.
func TestSlackPosterStopsWaiting(t *testing.T) {
	const ch = "C0WAIT001"
	tests := []struct {
		name  string
		opts  bot.PosterOptions
		setup func(f *posterFixture)
		ctx   func(t *testing.T, f *posterFixture) context.Context
		want  error
	}{
		{
			name: "cancel while the limiter waits",
			opts: bot.PosterOptions{PerChannel: rate.Every(10 * time.Second)}, // within the test's deadline
			ctx: func(t *testing.T, f *posterFixture) context.Context {
				ctx, cancel := context.WithCancel(posterContext(t))
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx
			},
			want: context.Canceled,
		},
		{
			name:  "cancel while waiting out a 429",
			opts:  bot.PosterOptions{PerChannel: rate.Inf},
			setup: func(f *posterFixture) { f.srv.RateLimitNext("chat.postMessage", 1, 30*time.Second) },
			ctx: func(t *testing.T, f *posterFixture) context.Context {
				ctx, cancel := context.WithCancel(posterContext(t))
				go func() {
					_ = f.srv.WaitFor(ctx, func() bool {
						calls := f.calls("chat.postMessage")
						return calls[len(calls)-1].Status == http.StatusTooManyRequests
					})
					cancel()
				}()
				return ctx
			},
			want: context.Canceled,
		},
		{
			name: "deadline before the next turn",
			opts: bot.PosterOptions{PerChannel: rate.Every(time.Minute)},
			ctx: func(t *testing.T, f *posterFixture) context.Context {
				ctx, cancel := context.WithTimeout(posterContext(t), 10*time.Second)
				t.Cleanup(cancel)
				return ctx
			},
			want: context.DeadlineExceeded,
		},
		{
			name: "limiter wait beyond MaxWait",
			opts: bot.PosterOptions{PerChannel: rate.Every(time.Minute), MaxWait: time.Second},
			ctx:  func(t *testing.T, f *posterFixture) context.Context { return posterContext(t) },
			want: bot.ErrRateLimited,
		},
		{
			name:  "Retry-After beyond MaxWait",
			opts:  bot.PosterOptions{PerChannel: rate.Inf, MaxWait: time.Second},
			setup: func(f *posterFixture) { f.srv.RateLimitNext("chat.postMessage", 1, 3*time.Second) },
			ctx:   func(t *testing.T, f *posterFixture) context.Context { return posterContext(t) },
			want:  bot.ErrRateLimited,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newPosterFixture(t, tt.opts)
			if _, err := f.p.Post(posterContext(t), bot.Message{Channel: ch, Text: "card"}); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(f)
			}
			ts, err := f.p.Post(tt.ctx(t, f), bot.Message{Channel: ch, Text: "late"})
			if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "chat.postMessage: ") {
				t.Fatalf("post = %q, %v; want %v", ts, err, tt.want)
			}
			if n := len(f.srv.Messages(ch)); n != 1 {
				t.Errorf("%d messages, want only the card", n)
			}
		})
	}
}

// TestSlackPosterTransportFailures checks that only idempotent calls are
// retried after a transport failure, and that errors name the method but
// never the token.
func TestSlackPosterTransportFailures(t *testing.T) {
	const ch, user = "C0FLAKY01", "U0ALICE01"
	tests := []struct {
		name     string
		method   string // the Web API method that fails in transport
		failures int
		do       func(ctx context.Context, f *posterFixture, card string) error
		wantErr  bool
		attempts int
		landed   func(f *posterFixture, card string) bool
	}{
		{name: "update is retried", method: "chat.update", failures: 2, attempts: 3,
			do: func(ctx context.Context, f *posterFixture, card string) error {
				return f.p.Update(ctx, card, bot.Message{Channel: ch, Text: "training"})
			},
			landed: func(f *posterFixture, card string) bool { return f.srv.Messages(ch)[0].Text == "training" }},
		{name: "update gives up", method: "chat.update", failures: 10, attempts: 4, wantErr: true,
			do: func(ctx context.Context, f *posterFixture, card string) error {
				return f.p.Update(ctx, card, bot.Message{Channel: ch, Text: "training"})
			},
			landed: func(f *posterFixture, card string) bool { return f.srv.Messages(ch)[0].Text == "training" }},
		{name: "home is retried", method: "views.publish", failures: 1, attempts: 2,
			do: func(ctx context.Context, f *posterFixture, card string) error {
				return f.p.PublishHome(ctx, user, posterHome("jobs"))
			},
			landed: func(f *posterFixture, card string) bool { return len(f.srv.Views()) == 1 }},
		{name: "post is not retried", method: "chat.postMessage", failures: 1, attempts: 1, wantErr: true,
			do: func(ctx context.Context, f *posterFixture, card string) error {
				_, err := f.p.Post(ctx, bot.Message{Channel: ch, ThreadTS: card, Text: "epoch 1"})
				return err
			},
			landed: func(f *posterFixture, card string) bool { return len(f.srv.Messages(ch)) > 1 }},
		{name: "ephemeral is not retried", method: "chat.postEphemeral", failures: 1, attempts: 1, wantErr: true,
			do: func(ctx context.Context, f *posterFixture, card string) error {
				return f.p.Ephemeral(ctx, user, bot.Message{Channel: ch, Text: "hi"})
			},
			landed: func(f *posterFixture, card string) bool { return len(f.srv.Messages(ch)) > 1 }},
		{name: "upload is not retried", method: "files.getUploadURLExternal", failures: 1, attempts: 1, wantErr: true,
			do: func(ctx context.Context, f *posterFixture, card string) error {
				return f.p.Upload(ctx, ch, card, "loss.png", "loss", []byte("png"))
			},
			landed: func(f *posterFixture, card string) bool { return len(f.srv.Uploads()) > 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newPosterFixture(t, bot.PosterOptions{PerChannel: rate.Inf, UpdatePerChannel: rate.Inf})
			ctx := posterContext(t)
			card, err := f.p.Post(ctx, bot.Message{Channel: ch, Text: "card"})
			if err != nil {
				t.Fatal(err)
			}
			before := f.flaky.attemptsOf(tt.method)
			f.flaky.failNext(tt.method, tt.failures)
			err = tt.do(ctx, f, card)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := f.flaky.attemptsOf(tt.method) - before; got != tt.attempts {
				t.Errorf("%d attempts of %s, want %d", got, tt.method, tt.attempts)
			}
			if landed := tt.landed(f, card); landed == tt.wantErr {
				t.Errorf("landed = %v with err %v", landed, err)
			}
			if err != nil && strings.Contains(err.Error(), f.srv.BotToken()) {
				t.Errorf("error shows the token: %v", err)
			}
		})
	}
}

// TestSlackPosterErrors checks that Slack's refusals come back wrapped
// with the method name, typed, and without the token.
func TestSlackPosterErrors(t *testing.T) {
	f := newPosterFixture(t, bot.PosterOptions{PerChannel: rate.Inf, UpdatePerChannel: rate.Inf})
	ctx := posterContext(t)
	tests := []struct {
		name, prefix, code string
		do                 func() error
	}{
		{"post to a bad channel", "chat.postMessage: ", "channel_not_found", func() error {
			_, err := f.p.Post(ctx, bot.Message{Channel: "general", Text: "hi"})
			return err
		}},
		{"reply to a missing thread", "chat.postMessage: ", "thread_not_found", func() error {
			_, err := f.p.Post(ctx, bot.Message{Channel: "C0ERR0001", ThreadTS: "1.000001", Text: "hi"})
			return err
		}},
		{"update a missing message", "chat.update: ", "message_not_found", func() error {
			return f.p.Update(ctx, "1.000001", bot.Message{Channel: "C0ERR0001", Text: "hi"})
		}},
		{"home without a user", "views.publish: ", "", func() error {
			return f.p.PublishHome(ctx, "", posterHome("x"))
		}},
		{"empty upload", "files.upload: ", "", func() error {
			return f.p.Upload(ctx, "C0ERR0001", "", "empty.txt", "empty", nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil || !strings.HasPrefix(err.Error(), tt.prefix) || strings.Contains(err.Error(), f.srv.BotToken()) {
				t.Fatalf("err = %v, want prefix %q and no token", err, tt.prefix)
			}
			var resp slack.SlackErrorResponse
			if tt.code != "" && (!errors.As(err, &resp) || resp.Err != tt.code) {
				t.Errorf("err = %v, want Slack error %q", err, tt.code)
			}
		})
	}
	if n := len(f.srv.Messages("C0ERR0001")) + len(f.srv.Uploads()) + len(f.srv.Views()); n != 0 {
		t.Errorf("%d things landed from refused calls", n)
	}
}

// BenchmarkSlackPosterPost measures one post through the poster and the
// fake Slack, with no rate limit.
func BenchmarkSlackPosterPost(b *testing.B) {
	f := newPosterFixture(b, bot.PosterOptions{PerChannel: rate.Inf})
	ctx := posterContext(b)
	m := bot.Message{Channel: "C0BENCH01", Text: "epoch 3/150 · loss 0.2269", Blocks: []slack.Block{posterSection("*#14* obj1 · training")}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.p.Post(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}
