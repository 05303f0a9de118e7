package lambda

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Defaults applied by NewClient to zero Config fields.
const (
	DefaultBaseURL           = "https://cloud.lambda.ai/api/v1"
	DefaultRequestsPerSecond = 1.0
	DefaultLaunchInterval    = 12 * time.Second
	DefaultMaxRetries        = 4
	DefaultRequestTimeout    = 30 * time.Second
	DefaultRetryBaseDelay    = 500 * time.Millisecond
	DefaultMaxRetryDelay     = 30 * time.Second
)

// NoLaunchSpacing, as Config.LaunchInterval, turns launch spacing off. Any
// negative interval does the same; zero means DefaultLaunchInterval.
const NoLaunchSpacing time.Duration = -1

const redacted = "[REDACTED]"

// maxBody bounds how much of an answer the client reads.
const maxBody = 16 << 20

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// BaseURL is the API base including /api/v1; default DefaultBaseURL.
	BaseURL string
	// APIKey is sent as a Bearer token. It is never printed or logged.
	APIKey string
	// HTTPClient sends the requests; default one with a 30 s timeout.
	HTTPClient *http.Client
	// RequestsPerSecond caps all requests; 0 = 1/s, negative = no cap.
	RequestsPerSecond float64
	// LaunchInterval is the least time between two launch calls; 0 = 12 s,
	// negative (NoLaunchSpacing) = no spacing.
	LaunchInterval time.Duration
	// MaxRetries bounds retries of one call; 0 = 4, negative = none.
	MaxRetries int
	// RequestTimeout bounds each attempt; 0 = 30 s.
	RequestTimeout time.Duration
	// RetryBaseDelay is the first backoff step, doubled per retry and
	// jittered; 0 = 500 ms.
	RetryBaseDelay time.Duration
	// MaxRetryDelay caps one backoff step and a server's Retry-After;
	// 0 = 30 s.
	MaxRetryDelay time.Duration
	// Logger receives debug lines per request and warnings per retry; nil
	// discards them.
	Logger *slog.Logger
}

// String describes the configuration with the API key redacted.
func (c Config) String() string {
	return fmt.Sprintf("lambda.Config{BaseURL:%q APIKey:%s RequestsPerSecond:%g LaunchInterval:%s MaxRetries:%d}",
		c.BaseURL, redacted, c.RequestsPerSecond, c.LaunchInterval, c.MaxRetries)
}

// GoString is String, so %#v redacts the key too.
func (c Config) GoString() string { return c.String() }

// Format prints String for every verb, so no verb reveals the key.
func (c Config) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue logs the configuration with the API key redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("base_url", c.BaseURL), slog.String("api_key", redacted))
}

// credentials sits behind a pointer so that even reflection-based printing of
// a Client value shows an address, not the key.
type credentials struct{ apiKey string }

// Client is a Lambda Cloud API client. It is safe for concurrent use; its
// rate limits are shared by all callers.
type Client struct {
	baseURL        string
	creds          *credentials
	http           *http.Client
	limiter        *rate.Limiter
	launchLimiter  *rate.Limiter // nil: no spacing
	maxRetries     int
	requestTimeout time.Duration
	retryBase      time.Duration
	retryMax       time.Duration
	log            *slog.Logger
}

// NewClient returns a client for cfg. It fails on a missing API key or a
// malformed base URL.
func NewClient(cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("new lambda client: api key is empty")
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("new lambda client: base url %q is not http(s)", base)
	}
	c := &Client{
		baseURL:        base,
		creds:          &credentials{apiKey: cfg.APIKey},
		http:           cfg.HTTPClient,
		maxRetries:     cfg.MaxRetries,
		requestTimeout: orDefault(cfg.RequestTimeout, DefaultRequestTimeout),
		retryBase:      orDefault(cfg.RetryBaseDelay, DefaultRetryBaseDelay),
		retryMax:       orDefault(cfg.MaxRetryDelay, DefaultMaxRetryDelay),
		log:            cfg.Logger,
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: DefaultRequestTimeout}
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	switch rps := cfg.RequestsPerSecond; {
	case rps == 0:
		c.limiter = rate.NewLimiter(rate.Limit(DefaultRequestsPerSecond), 1)
	case rps < 0:
		c.limiter = rate.NewLimiter(rate.Inf, 1)
	default:
		c.limiter = rate.NewLimiter(rate.Limit(rps), 1)
	}
	if li := orDefault(cfg.LaunchInterval, DefaultLaunchInterval); li > 0 {
		c.launchLimiter = rate.NewLimiter(rate.Every(li), 1)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("system", "lambda")
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// String describes the client with the API key redacted.
func (c *Client) String() string {
	return fmt.Sprintf("lambda.Client{BaseURL:%q APIKey:%s}", c.baseURL, redacted)
}

// GoString is String, so %#v redacts the key too.
func (c *Client) GoString() string { return c.String() }

// Format prints String for every verb, so no verb reveals the key.
func (c *Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

// LogValue logs the client with the API key redacted.
func (c *Client) LogValue() slog.Value {
	return slog.GroupValue(slog.String("base_url", c.baseURL), slog.String("api_key", redacted))
}

// call describes one API operation.
type call struct {
	op         string // OpenAPI operationId, for logs
	method     string
	path       string // below the base URL, starting with "/"
	body       any    // nil: no body
	idempotent bool   // safe to repeat after a 5xx or a transport error
	launch     bool   // subject to the launch interval; ambiguous on failure
}

// do runs c with rate limiting and retries and decodes the answer's "data"
// into out (which may be nil).
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("%s: encode request: %w", cl.op, err)
		}
	}
	for attempt := 0; ; attempt++ {
		if cl.launch && c.launchLimiter != nil {
			if err := c.launchLimiter.Wait(ctx); err != nil {
				return fmt.Errorf("%s: wait for launch slot: %w", cl.op, err)
			}
		}
		if err := c.limiter.Wait(ctx); err != nil {
			return fmt.Errorf("%s: wait for rate limit: %w", cl.op, err)
		}
		hdr, err := c.once(ctx, cl, payload, out, attempt)
		if err == nil {
			return nil
		}
		retry, final := c.judge(ctx, cl, err)
		if !retry || attempt >= c.maxRetries {
			return fmt.Errorf("%s: %w", cl.op, final)
		}
		wait := c.backoff(attempt, hdr)
		c.log.Warn("lambda retry", "op", cl.op, "attempt", attempt+1, "wait", wait, "err", err)
		if err := sleep(ctx, wait); err != nil {
			return fmt.Errorf("%s: %w (gave up waiting to retry: %w)", cl.op, final, err)
		}
	}
}

// judge decides whether a failed attempt may be repeated, and which error to
// report if it is not.
func (c *Client) judge(ctx context.Context, cl call, err error) (retry bool, final error) {
	apiErr, isAPI := asAPIError(err)
	if isAPI && apiErr.Status == http.StatusTooManyRequests {
		return true, err // nothing was done, whatever the operation
	}
	if isAPI && apiErr.Status < 500 {
		return false, err
	}
	if ctx.Err() != nil { // the caller gave up: never retry
		if cl.launch {
			return false, fmt.Errorf("%w: %w", ErrAmbiguousLaunch, err)
		}
		return false, err
	}
	if cl.launch { // 5xx, transport error, timeout or unreadable success
		return false, fmt.Errorf("%w: %w", ErrAmbiguousLaunch, err)
	}
	var decodeErr *decodeError
	if errors.As(err, &decodeErr) {
		return false, err
	}
	return cl.idempotent, err
}

// once sends one attempt and returns the answer's header for Retry-After.
func (c *Client) once(ctx context.Context, cl call, payload []byte, out any, attempt int) (http.Header, error) {
	actx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, c.baseURL+cl.path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.creds.apiKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "cpbot-lambda/1")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.log.Debug("lambda request", "op", cl.op, "attempt", attempt, "err", err)
		return nil, fmt.Errorf("send: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	c.log.Debug("lambda request", "op", cl.op, "method", cl.method, "path", cl.path,
		"status", resp.StatusCode, "attempt", attempt, "took", time.Since(start))
	if err != nil {
		return resp.Header, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.Header, parseAPIError(resp.StatusCode, raw)
	}
	if out == nil {
		return resp.Header, nil
	}
	env := struct {
		Data json.RawMessage `json:"data"`
	}{}
	if err := json.Unmarshal(raw, &env); err != nil || len(env.Data) == 0 {
		return resp.Header, &decodeError{status: resp.StatusCode, err: errOr(err, "no data")}
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return resp.Header, &decodeError{status: resp.StatusCode, err: err}
	}
	return resp.Header, nil
}

// decodeError is a 2xx answer the client could not read.
type decodeError struct {
	status int
	err    error
}

func (e *decodeError) Error() string {
	return fmt.Sprintf("decode %d answer: %v", e.status, e.err)
}

func (e *decodeError) Unwrap() error { return e.err }

func errOr(err error, msg string) error {
	if err != nil {
		return err
	}
	return errors.New(msg)
}

// parseAPIError reads Lambda's error envelope, falling back to the status.
func parseAPIError(status int, raw []byte) *APIError {
	var env struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			Suggestion string `json:"suggestion"`
		} `json:"error"`
	}
	e := &APIError{Status: status}
	if json.Unmarshal(raw, &env) == nil {
		e.Code, e.Message, e.Suggestion = env.Error.Code, env.Error.Message, env.Error.Suggestion
	}
	if e.Message == "" {
		e.Message = strings.ToLower(http.StatusText(status))
	}
	return e
}

// backoff is the wait before retry number attempt+1: the server's
// Retry-After when given, else an exponential step with jitter.
func (c *Client) backoff(attempt int, hdr http.Header) time.Duration {
	if d, ok := retryAfter(hdr, time.Now()); ok {
		return min(d, c.retryMax)
	}
	d := c.retryBase << min(attempt, 16)
	if d <= 0 || d > c.retryMax {
		d = c.retryMax
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// retryAfter parses a Retry-After header given in seconds or as a date.
func retryAfter(hdr http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(hdr.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
