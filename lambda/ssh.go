package lambda

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Defaults of SSHConfig.
const (
	DefaultSSHUser     = "ubuntu"
	DefaultSSHPort     = 22
	DefaultDialTimeout = 15 * time.Second
	DefaultKeepAlive   = 15 * time.Second
)

// Backoff bounds between dial attempts.
const (
	dialBackoffMin = 250 * time.Millisecond
	dialBackoffMax = 5 * time.Second
)

// ErrRemoteClosed is returned by operations on a Remote after Close.
var ErrRemoteClosed = errors.New("remote closed")

// SSHConfig says how to reach instances over SSH.
type SSHConfig struct {
	User   string // login user; "ubuntu" when empty
	Port   int    // sshd port; 22 when zero
	Signer ssh.Signer
	// HostKeys pins each instance's host key on first contact; required.
	HostKeys *HostKeys
	// DialTimeout bounds one TCP connect plus SSH handshake; 15s when zero.
	DialTimeout time.Duration
	// KeepAlive is the interval of keepalive@openssh.com requests; a
	// connection that leaves one unanswered for a whole interval is closed.
	// 15s when zero; negative disables keepalives.
	KeepAlive time.Duration
	Logger    *slog.Logger
}

func (c SSHConfig) withDefaults() SSHConfig {
	if c.User == "" {
		c.User = DefaultSSHUser
	}
	if c.Port == 0 {
		c.Port = DefaultSSHPort
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// ExecResult is the outcome of a command that ran to completion.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitStatus     int
}

// Remote is the SSH connection to one instance. It reconnects on the next
// operation after the connection drops. It is safe for concurrent use.
type Remote struct {
	cfg        SSHConfig
	instanceID string
	addr       string
	log        *slog.Logger

	dialing chan struct{}   // holds a token while a caller (re)connects
	closing context.Context // cancelled by Close
	cancel  context.CancelFunc

	mu     sync.Mutex
	conn   *conn // nil when disconnected
	closed bool
}

// conn is one live SSH connection.
type conn struct {
	client *ssh.Client
	done   chan struct{} // closed once the connection has ended
}

// DialRemote connects to the instance at ip, retrying refused connections,
// timeouts and failed handshakes with backoff until ctx ends. It gives up at
// once on a changed host key (*HostKeyChangedError).
func DialRemote(ctx context.Context, cfg SSHConfig, instanceID, ip string) (*Remote, error) {
	cfg = cfg.withDefaults()
	if cfg.Signer == nil || cfg.HostKeys == nil {
		return nil, errors.New("dial remote: ssh config needs a signer and host keys")
	}
	r := &Remote{
		cfg:        cfg,
		instanceID: instanceID,
		addr:       net.JoinHostPort(ip, strconv.Itoa(cfg.Port)),
		log:        cfg.Logger.With("system", "ssh", "instance", instanceID),
		dialing:    make(chan struct{}, 1),
	}
	r.closing, r.cancel = context.WithCancel(context.Background())
	if _, err := r.connect(ctx); err != nil {
		r.cancel()
		return nil, err
	}
	return r, nil
}

// Addr is the host:port the Remote connects to.
func (r *Remote) Addr() string { return r.addr }

// Close ends the connection; later operations return ErrRemoteClosed.
// Processes started with StartDetached keep running.
func (r *Remote) Close() error {
	r.cancel()
	r.mu.Lock()
	c := r.conn
	r.conn, r.closed = nil, true
	r.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.close()
}

// connect returns the live connection, dialing (with retry) if there is
// none. One caller dials at a time; the others wait for it or their ctx.
// Close aborts a dial in progress.
func (r *Remote) connect(ctx context.Context) (*conn, error) {
	select {
	case r.dialing <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("connect %s: %w", r.addr, ctx.Err())
	}
	defer func() { <-r.dialing }()
	r.mu.Lock()
	closed, c := r.closed, r.conn
	r.mu.Unlock()
	if closed {
		return nil, ErrRemoteClosed
	}
	if c != nil {
		select {
		case <-c.done:
		default:
			return c, nil
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.closing, cancel)
	defer stop()
	c, err := r.dialRetry(ctx)
	if err != nil {
		if r.closing.Err() != nil {
			return nil, ErrRemoteClosed
		}
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		_ = c.close()
		return nil, ErrRemoteClosed
	}
	r.conn = c
	return c, nil
}

// drop forgets c if it is still the current connection, and closes it.
func (r *Remote) drop(c *conn) {
	r.mu.Lock()
	if r.conn == c {
		r.conn = nil
	}
	r.mu.Unlock()
	_ = c.close()
}

func (r *Remote) dialRetry(ctx context.Context) (*conn, error) {
	backoff := dialBackoffMin
	for attempt := 1; ; attempt++ {
		c, err := r.dialOnce(ctx)
		if err == nil {
			r.log.Debug("ssh connected", "addr", r.addr, "attempt", attempt)
			return c, nil
		}
		var changed *HostKeyChangedError
		if errors.As(err, &changed) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("dial %s: %w (last error: %v)", r.addr, ctx.Err(), err)
		}
		r.log.Debug("ssh dial failed, retrying", "addr", r.addr, "attempt", attempt, "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("dial %s: %w (last error: %v)", r.addr, ctx.Err(), err)
		case <-t.C:
		}
		backoff = min(backoff*2, dialBackoffMax)
	}
}

func (r *Remote) dialOnce(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	ccfg := &ssh.ClientConfig{
		User:              r.cfg.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(r.cfg.Signer)},
		HostKeyCallback:   r.cfg.HostKeys.Callback(r.instanceID),
		HostKeyAlgorithms: r.cfg.HostKeys.Algorithms(r.instanceID),
		Timeout:           r.cfg.DialTimeout,
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, r.addr, ccfg)
	if !stop() {
		// The deadline fired during the handshake and closed nc.
		if err == nil {
			_ = sc.Close()
		}
		return nil, fmt.Errorf("ssh handshake %s: %w", r.addr, ctx.Err())
	}
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	c := &conn{client: ssh.NewClient(sc, chans, reqs), done: make(chan struct{})}
	go func() {
		_ = c.client.Wait()
		close(c.done)
	}()
	if r.cfg.KeepAlive > 0 {
		go c.keepAlive(r.cfg.KeepAlive, r.log)
	}
	return c, nil
}

// keepAlive sends keepalive@openssh.com every interval and closes the
// connection when a reply does not come within the next interval.
func (c *conn) keepAlive(interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		replied := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		select {
		case <-c.done:
			return
		case err := <-replied:
			if err != nil {
				log.Warn("ssh keepalive failed, closing", "err", err)
				_ = c.close()
				return
			}
		case <-time.After(interval):
			log.Warn("ssh keepalive unanswered, closing", "interval", interval)
			_ = c.close()
			return
		}
	}
}

func (c *conn) close() error {
	err := c.client.Close()
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// session opens a session, reconnecting once if the connection had dropped.
// A failed session open means no command ran, so the retry is safe.
func (r *Remote) session(ctx context.Context) (*ssh.Session, error) {
	for attempt := 0; ; attempt++ {
		c, err := r.connect(ctx)
		if err != nil {
			return nil, err
		}
		// NewSession has no context: abandon the connection if ctx ends.
		stop := context.AfterFunc(ctx, func() { r.drop(c) })
		s, err := c.client.NewSession()
		stopped := stop()
		if err == nil && stopped {
			return s, nil
		}
		if err == nil {
			_ = s.Close()
			return nil, fmt.Errorf("open session: %w", ctx.Err())
		}
		r.drop(c)
		if attempt > 0 || ctx.Err() != nil {
			return nil, fmt.Errorf("open session: %w", err)
		}
		r.log.Debug("ssh session failed, reconnecting", "err", err)
	}
}

// openSFTP starts an SFTP session for one operation, reconnecting once if
// the connection had dropped. Its client is closed when ctx ends, which
// aborts pending requests; the caller must call done when finished.
func (r *Remote) openSFTP(ctx context.Context) (client *sftp.Client, done func(), err error) {
	for attempt := 0; ; attempt++ {
		c, err := r.connect(ctx)
		if err != nil {
			return nil, nil, err
		}
		// sftp.NewClient has no context: abandon the connection if ctx ends.
		stop := context.AfterFunc(ctx, func() { r.drop(c) })
		sc, err := sftp.NewClient(c.client,
			sftp.UseConcurrentWrites(true), sftp.UseConcurrentReads(true))
		stop()
		if err == nil && ctx.Err() == nil {
			stopClose := context.AfterFunc(ctx, func() { _ = sc.Close() })
			return sc, func() { stopClose(); _ = sc.Close() }, nil
		}
		if err == nil {
			_ = sc.Close()
			return nil, nil, fmt.Errorf("open sftp: %w", ctx.Err())
		}
		r.drop(c)
		if attempt > 0 || ctx.Err() != nil {
			return nil, nil, fmt.Errorf("open sftp: %w", err)
		}
		r.log.Debug("sftp open failed, reconnecting", "err", err)
	}
}

// Exec runs cmd in the login user's home directory and waits for it. A
// non-zero exit is reported in ExitStatus, not as an error; errors are
// transport failures, a command killed by a signal, or ctx ending (which
// closes the session).
func (r *Remote) Exec(ctx context.Context, cmd string) (ExecResult, error) {
	s, err := r.session(ctx)
	if err != nil {
		return ExecResult{}, err
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	if err := s.Start(cmd); err != nil {
		return ExecResult{}, fmt.Errorf("exec: %w", err)
	}
	waited := make(chan error, 1)
	go func() { waited <- s.Wait() }()
	select {
	case <-ctx.Done():
		_ = s.Signal(ssh.SIGKILL)
		_ = s.Close()
		return ExecResult{}, fmt.Errorf("exec: %w", ctx.Err())
	case err = <-waited:
	}
	res := ExecResult{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var exitErr *ssh.ExitError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &exitErr) && exitErr.Signal() == "":
		res.ExitStatus = exitErr.ExitStatus()
		return res, nil
	default:
		return res, fmt.Errorf("exec: %w", err)
	}
}

// ShellQuote quotes s for a POSIX shell with single quotes, so that the
// shell passes it on as one word, unchanged.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
