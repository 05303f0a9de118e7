package bot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"
)

// Slack's message limits: longer text and more blocks are refused.
const (
	MaxMessageText   = 4000
	MaxMessageBlocks = 50
)

// Slack Web API method names, used in errors, logs and 429 pauses.
const (
	methodPostMessage = "chat.postMessage"
	methodUpdate      = "chat.update"
	methodEphemeral   = "chat.postEphemeral"
	methodUpload      = "files.upload"
	methodPublishView = "views.publish"
)

// Retries of transient failures of idempotent calls.
const (
	posterTransientRetries = 3
	posterBackoff          = 100 * time.Millisecond
)

// ErrRateLimited reports that a call would have had to wait for Slack's
// rate limits longer than PosterOptions.MaxWait allows.
var ErrRateLimited = errors.New("slack rate limit: wait exceeds the allowed maximum")

var _ Poster = (*SlackPoster)(nil)

// PosterOptions tunes a SlackPoster. Zero values take the defaults.
type PosterOptions struct {
	// PerChannel is the rate of new messages (posts, ephemerals, uploads)
	// per second per channel; default 1, Slack's chat.postMessage guidance.
	PerChannel rate.Limit
	// Burst is how many new messages a channel may take at once; default 1.
	Burst int
	// UpdatePerChannel is the rate of chat.update calls per second per
	// channel (and of views.publish per user); default 1.
	UpdatePerChannel rate.Limit
	// UpdateBurst is the burst of updates per channel; default 3.
	UpdateBurst int
	// MaxWait is the longest one call waits in total for rate limits
	// (the limiter and Slack's Retry-After) before giving up; default 5m.
	MaxWait time.Duration
	// Logger receives warnings about truncations, 429s and retries;
	// default slog.Default().
	Logger *slog.Logger
}

// SlackPoster is the Poster for Slack's Web API. It keeps new messages
// and updates within per-channel rate limits shared by all callers, waits
// out 429 answers and retries the same call, and retries transient network
// failures of idempotent calls (updates, App Home). It is safe for
// concurrent use.
type SlackPoster struct {
	api  *slack.Client
	opts PosterOptions
	log  *slog.Logger

	mu      sync.Mutex
	posts   map[string]*rate.Limiter // new messages, by channel
	updates map[string]*rate.Limiter // chat.update by channel, views.publish by user
	paused  map[string]time.Time     // by method: no calls before this, after a 429
}

// NewSlackPoster returns a SlackPoster calling Slack through api.
func NewSlackPoster(api *slack.Client, opts PosterOptions) *SlackPoster {
	if opts.PerChannel == 0 {
		opts.PerChannel = 1
	}
	if opts.Burst <= 0 {
		opts.Burst = 1
	}
	if opts.UpdatePerChannel == 0 {
		opts.UpdatePerChannel = 1
	}
	if opts.UpdateBurst <= 0 {
		opts.UpdateBurst = 3
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 5 * time.Minute
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &SlackPoster{
		api:     api,
		opts:    opts,
		log:     logger.With("system", "bot", "component", "slackposter"),
		posts:   map[string]*rate.Limiter{},
		updates: map[string]*rate.Limiter{},
		paused:  map[string]time.Time{},
	}
}

// Post sends m with chat.postMessage, as a thread reply when m.ThreadTS is
// set, and returns its ts. A post that fails in transport is not retried,
// since it may have been delivered.
func (p *SlackPoster) Post(ctx context.Context, m Message) (string, error) {
	opts := p.msgOptions(methodPostMessage, m, true)
	var ts string
	err := p.call(ctx, methodPostMessage, p.postLimiter(m.Channel), false, func(ctx context.Context) error {
		var err error
		_, ts, err = p.api.PostMessageContext(ctx, m.Channel, opts...)
		return err
	})
	return ts, err
}

// Update replaces the text and blocks of the message at m.Channel/ts with
// chat.update.
func (p *SlackPoster) Update(ctx context.Context, ts string, m Message) error {
	opts := p.msgOptions(methodUpdate, m, false)
	return p.call(ctx, methodUpdate, p.updateLimiter(m.Channel), true, func(ctx context.Context) error {
		_, _, _, err := p.api.UpdateMessageContext(ctx, m.Channel, ts, opts...)
		return err
	})
}

// Ephemeral shows m to user only, with chat.postEphemeral. It counts as a
// new message of the channel.
func (p *SlackPoster) Ephemeral(ctx context.Context, user string, m Message) error {
	opts := p.msgOptions(methodEphemeral, m, true)
	return p.call(ctx, methodEphemeral, p.postLimiter(m.Channel), false, func(ctx context.Context) error {
		_, err := p.api.PostEphemeralContext(ctx, m.Channel, user, opts...)
		return err
	})
}

// Upload shares data as a file in channel (in the thread threadTS when
// set) through Slack's external upload flow. It counts as a new message
// of the channel. Empty data is refused by slack-go.
func (p *SlackPoster) Upload(ctx context.Context, channel, threadTS, filename, title string, data []byte) error {
	return p.call(ctx, methodUpload, p.postLimiter(channel), false, func(ctx context.Context) error {
		_, err := p.api.UploadFileContext(ctx, slack.UploadFileParameters{
			Channel:         channel,
			ThreadTimestamp: threadTS,
			Filename:        filename,
			Title:           title,
			Reader:          bytes.NewReader(data),
			FileSize:        len(data),
		})
		return err
	})
}

// PublishHome publishes view as user's App Home tab with views.publish.
func (p *SlackPoster) PublishHome(ctx context.Context, user string, view slack.HomeTabViewRequest) error {
	return p.call(ctx, methodPublishView, p.updateLimiter("home/"+user), true, func(ctx context.Context) error {
		_, err := p.api.PublishViewContext(ctx, slack.PublishViewContextRequest{UserID: user, View: view})
		return err
	})
}

// msgOptions turns m into slack-go options, cutting text and blocks to
// Slack's limits.
func (p *SlackPoster) msgOptions(method string, m Message, thread bool) []slack.MsgOption {
	text := m.Text
	if n := utf8.RuneCountInString(text); n > MaxMessageText {
		text = string([]rune(text)[:MaxMessageText-1]) + "…"
		p.log.Warn("message text truncated", "method", method, "channel", m.Channel, "runes", n)
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if blocks := m.Blocks; len(blocks) > 0 {
		if len(blocks) > MaxMessageBlocks {
			p.log.Warn("message blocks dropped", "method", method, "channel", m.Channel,
				"blocks", len(blocks), "kept", MaxMessageBlocks)
			blocks = blocks[:MaxMessageBlocks]
		}
		opts = append(opts, slack.MsgOptionBlocks(blocks...))
	}
	if thread && m.ThreadTS != "" {
		opts = append(opts, slack.MsgOptionTS(m.ThreadTS))
	}
	return opts
}

// postLimiter returns the limiter of new messages in channel.
func (p *SlackPoster) postLimiter(channel string) *rate.Limiter {
	return p.limiter(p.posts, channel, p.opts.PerChannel, p.opts.Burst)
}

// updateLimiter returns the limiter of updates under key.
func (p *SlackPoster) updateLimiter(key string) *rate.Limiter {
	return p.limiter(p.updates, key, p.opts.UpdatePerChannel, p.opts.UpdateBurst)
}

// limiter returns the limiter of key in set, creating it on first use.
func (p *SlackPoster) limiter(set map[string]*rate.Limiter, key string, limit rate.Limit, burst int) *rate.Limiter {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := set[key]
	if l == nil {
		l = rate.NewLimiter(limit, burst)
		set[key] = l
	}
	return l
}

// call runs one Web API call through fn. Before each attempt it waits out
// any 429 pause of method and takes a token from lim, all within MaxWait.
// A 429 pauses method and repeats the call; a transient failure is
// retried with backoff only when idempotent. Errors carry the method name.
func (p *SlackPoster) call(ctx context.Context, method string, lim *rate.Limiter, idempotent bool, fn func(context.Context) error) error {
	deadline := time.Now().Add(p.opts.MaxWait)
	waitCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var refused error // the last 429, reported if waiting gives up
	for failures := 0; ; {
		if err := p.waitTurn(waitCtx, method, lim, deadline); err != nil {
			return p.waitErr(ctx, method, deadline, refused)
		}
		err := fn(ctx)
		var limited *slack.RateLimitedError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &limited):
			refused = err
			p.pause(method, limited.RetryAfter)
			p.log.Warn("slack rate limited; will retry", "method", method, "retry_after", limited.RetryAfter)
		case ctx.Err() != nil:
			return fmt.Errorf("%s: %w", method, ctx.Err())
		case !isTransientSlackError(err):
			return fmt.Errorf("%s: %w", method, err)
		case !idempotent:
			p.log.Warn("slack call failed in transport; not retried as it may have been delivered",
				"method", method, "err", err)
			return fmt.Errorf("%s: %w", method, err)
		case failures >= posterTransientRetries:
			return fmt.Errorf("%s: %d attempts: %w", method, failures+1, err)
		default:
			failures++
			backoff := posterBackoff << (failures - 1)
			p.log.Warn("slack call failed; retrying", "method", method, "attempt", failures, "backoff", backoff, "err", err)
			if posterSleep(waitCtx, backoff) != nil {
				return p.waitErr(ctx, method, deadline, err)
			}
		}
	}
}

// waitTurn waits until method is no longer paused by a 429 and lim grants
// a token. It fails at once when the pause outlasts deadline.
func (p *SlackPoster) waitTurn(ctx context.Context, method string, lim *rate.Limiter, deadline time.Time) error {
	p.mu.Lock()
	until := p.paused[method]
	p.mu.Unlock()
	if d := time.Until(until); d > 0 {
		if until.After(deadline) {
			return ErrRateLimited
		}
		if err := posterSleep(ctx, d); err != nil {
			return err
		}
	}
	return lim.Wait(ctx)
}

// waitErr explains why a wait before an attempt failed: ctx ended, ctx's
// own deadline comes too soon, or MaxWait is spent. last is the failure
// that led to the wait, if any.
func (p *SlackPoster) waitErr(ctx context.Context, method string, deadline time.Time, last error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	cause := ErrRateLimited
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		cause = context.DeadlineExceeded
	}
	if last != nil {
		return fmt.Errorf("%s: %w (last answer: %w)", method, cause, last)
	}
	return fmt.Errorf("%s: %w", method, cause)
}

// pause holds every call of method back for d after a 429.
func (p *SlackPoster) pause(method string, d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	until := time.Now().Add(d)
	p.mu.Lock()
	defer p.mu.Unlock()
	if until.After(p.paused[method]) {
		p.paused[method] = until
	}
}

// isTransientSlackError reports whether err is a failure worth retrying:
// the transport broke, or Slack answered 5xx or an internal error.
func isTransientSlackError(err error) bool {
	var netErr net.Error
	var status slack.StatusCodeError
	var resp slack.SlackErrorResponse
	switch {
	case errors.As(err, &netErr), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return true
	case errors.As(err, &status):
		return status.Code >= 500
	case errors.As(err, &resp):
		switch resp.Err {
		case "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return true
		}
	}
	return false
}

// posterSleep waits for d or until ctx ends.
func posterSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
