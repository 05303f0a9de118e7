package slacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Identities of the fake workspace and of the bot it serves.
const (
	TeamID     = "T0CPBOT00"
	TeamDomain = "cpbot-test"
	AppID      = "A0CPBOT00"
	BotUserID  = "U0CPBOT00"
	BotID      = "B0CPBOT00"

	// DefaultChannel and DefaultUser are used when a sent command or action
	// names none.
	DefaultChannel = "C0CPBOT01"
	DefaultUser    = "U0ALICE01"

	// VerificationToken is the legacy token field Slack puts in payloads.
	VerificationToken = "fake-verification-token"

	// firstTS is the seconds part of the first message ts the server hands out.
	firstTS = 1733337600
)

// Server is a fake Slack: Socket Mode over a websocket plus the Web API.
// Create it with NewServer and stop it with Close. All methods are safe for
// concurrent use.
type Server struct {
	httpSrv      *httptest.Server
	appToken     string
	botToken     string
	pingInterval time.Duration
	debugAfter   time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu          sync.Mutex
	changed     chan struct{} // closed and replaced on every state change
	tsCounter   int64
	idCounter   int64
	tickets     map[string]bool // issued, unused apps.connections.open tickets
	conns       []*wsConn       // open websocket connections, oldest first
	connections int             // websocket connections ever accepted
	pongs       int             // pongs received on any connection
	envelopes   map[string]*envelope
	acks        []Ack
	calls       []Call
	messages    []*Message
	pending     map[string]*pendingFile // file_id → upload in progress
	uploads     []Upload
	views       []View
	limits      map[string]*rateLimit
	responses   map[string]responseTarget // response_url id → where it posts
}

// Option configures a Server.
type Option func(*Server)

// WithPingInterval sets how often the server sends websocket pings on each
// connection (default 2s). slack-go reconnects when none arrives within its
// own ping interval (30s by default).
func WithPingInterval(d time.Duration) Option {
	return func(s *Server) { s.pingInterval = d }
}

// WithDebugReconnectAfter sets how long a connection opened with the
// debug_reconnects=true query lives before the server asks the client to
// reconnect (Slack: 360s).
func WithDebugReconnectAfter(d time.Duration) Option {
	return func(s *Server) { s.debugAfter = d }
}

// NewServer starts a fake Slack on a loopback address.
func NewServer(opts ...Option) *Server {
	s := &Server{
		appToken:     "xapp-1-" + AppID + "-1-" + randomHex(16),
		botToken:     "xoxb-1-" + randomHex(12),
		pingInterval: 2 * time.Second,
		debugAfter:   360 * time.Second,
		changed:      make(chan struct{}),
		tickets:      map[string]bool{},
		envelopes:    map[string]*envelope{},
		pending:      map[string]*pendingFile{},
		limits:       map[string]*rateLimit{},
		responses:    map[string]responseTarget{},
	}
	for _, o := range opts {
		o(s)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("/api/{method}", s.serveAPI)
	mux.HandleFunc("/link/", s.serveLink)
	mux.HandleFunc("/upload/{id}", s.serveUpload)
	mux.HandleFunc("/response/{id}", s.serveResponseURL)
	s.httpSrv = httptest.NewServer(mux)
	return s
}

// URL returns the server's base URL, "http://127.0.0.1:port" without a
// trailing slash; the Web API lives under URL()+"/api/".
func (s *Server) URL() string { return s.httpSrv.URL }

// AppToken returns the app-level token (xapp-…) that apps.connections.open
// accepts.
func (s *Server) AppToken() string { return s.appToken }

// BotToken returns the bot token (xoxb-…) that the other methods accept.
func (s *Server) BotToken() string { return s.botToken }

// Close closes every websocket connection, stops the server's goroutines
// and shuts the HTTP server down.
func (s *Server) Close() {
	s.cancel()
	s.mu.Lock()
	conns := append([]*wsConn(nil), s.conns...)
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	s.wg.Wait()
	s.httpSrv.Close()
}

// WaitFor blocks until cond returns true, ctx ends or the server is
// closed. cond is evaluated
// now and after every change of the server's state (a call, an ack, a
// connection); it may call the server's methods.
func (s *Server) WaitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait: %w", ctx.Err())
		case <-s.ctx.Done():
			return errors.New("wait: server closed")
		}
	}
}

// notifyLocked wakes every WaitFor; s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// nextTSLocked returns a new message timestamp, larger than every earlier
// one, shaped like Slack's "1733337600.000100"; s.mu must be held.
func (s *Server) nextTSLocked() string {
	s.tsCounter += 100
	return fmt.Sprintf("%d.%06d", firstTS+s.tsCounter/1_000_000, s.tsCounter%1_000_000)
}

// nextIDLocked returns a new Slack-style id with the given prefix (F for
// files, V for views); s.mu must be held.
func (s *Server) nextIDLocked(prefix string) string {
	s.idCounter++
	return fmt.Sprintf("%s0%08X", prefix, s.idCounter)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newEnvelopeID returns a random UUID, as Slack's envelope ids are.
func newEnvelopeID() string {
	h := randomHex(16)
	return strings.Join([]string{h[0:8], h[8:12], "4" + h[13:16], "a" + h[17:20], h[20:32]}, "-")
}

// isChannelID reports whether id looks like a Slack conversation id.
func isChannelID(id string) bool {
	if len(id) < 3 || !strings.ContainsRune("CGD", rune(id[0])) {
		return false
	}
	for _, r := range id {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
