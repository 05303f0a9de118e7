package lambdatest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// HostConfig configures a simulated instance.
type HostConfig struct {
	// Port is the TCP port every host listens on at its own loopback IP,
	// the stand-in for port 22. Zero picks a free port per host.
	Port int
	// Root holds the sandboxes: a host with IP ip keeps its home in
	// <Root>/<ip>/home and its stand-in programs in <Root>/<ip>/bin.
	// Empty means a fresh directory under os.TempDir, removed on Close.
	Root string
	// Trainer is the trainer's initial pace and mode.
	Trainer TrainerConfig
	// Logger receives connection and command events; nil discards them.
	Logger *slog.Logger
}

// Host is a simulated GPU instance: an in-process SSH server at one
// loopback address whose commands run in a sandbox directory with stand-ins
// for python3, pip and nvidia-smi. It accepts only public-key
// authentication with one of its authorized keys, for any user name.
//
// Processes started through a Host, detached ones included, survive the
// SSH connection that started them and are all killed by Close.
type Host struct {
	ip      string
	root    string
	ownRoot bool
	home    string
	bin     string
	id      string // marks every process of this host (CPBOT_SIM_ID)
	keys    [][]byte
	ln      net.Listener
	logger  *slog.Logger

	mu          sync.Mutex
	signer      ssh.Signer
	refuseUntil time.Time
	conns       map[net.Conn]struct{}
	procs       map[int]struct{} // pids of running exec shells
	closed      bool
	onClose     []func()

	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// NewHost starts a simulated instance listening on ip:cfg.Port that admits
// the given authorized_keys lines. It prepares the sandbox and writes the
// stand-in programs and the trainer control file.
func NewHost(ip string, authorizedKeys []string, cfg HostConfig) (*Host, error) {
	if net.ParseIP(ip) == nil {
		return nil, fmt.Errorf("new host: invalid ip %q", ip)
	}
	keys, err := parseAuthorizedKeys(authorizedKeys)
	if err != nil {
		return nil, fmt.Errorf("new host %s: %w", ip, err)
	}
	signer, err := newHostSigner()
	if err != nil {
		return nil, fmt.Errorf("new host %s: %w", ip, err)
	}
	h := &Host{
		ip:     ip,
		root:   cfg.Root,
		keys:   keys,
		signer: signer,
		conns:  make(map[net.Conn]struct{}),
		procs:  make(map[int]struct{}),
	}
	if h.root == "" {
		if h.root, err = os.MkdirTemp("", "cpbot-sim-"); err != nil {
			return nil, fmt.Errorf("new host %s: %w", ip, err)
		}
		h.ownRoot = true
	}
	if h.root, err = filepath.Abs(h.root); err != nil {
		return nil, fmt.Errorf("new host %s: %w", ip, err)
	}
	h.home = filepath.Join(h.root, ip, "home")
	h.bin = filepath.Join(h.root, ip, "bin")
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("new host %s: %w", ip, err)
	}
	h.id = hex.EncodeToString(idb[:])
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h.logger = logger.With("system", "lambdatest", "host", ip)

	if err := h.installSandbox(cfg.Trainer); err != nil {
		h.removeOwnRoot()
		return nil, fmt.Errorf("new host %s: %w", ip, err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(cfg.Port)))
	if err != nil {
		h.removeOwnRoot()
		return nil, fmt.Errorf("new host %s: %w", ip, err)
	}
	h.ln = ln
	h.wg.Add(1)
	go h.serve()
	register(h)
	h.logger.Info("host up", "addr", h.Addr())
	return h, nil
}

// IP returns the host's loopback IP address.
func (h *Host) IP() string { return h.ip }

// Addr returns the host's SSH address, ip:port.
func (h *Host) Addr() string { return h.ln.Addr().String() }

// Home returns the sandbox home directory: remote relative paths, the
// working directory of commands and of SFTP, resolve here.
func (h *Host) Home() string { return h.home }

// HostKey returns the public host key the host presents now.
func (h *Host) HostKey() ssh.PublicKey {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.signer.PublicKey()
}

// RotateHostKey replaces the host key: connections from now on see a new
// key, as after a reinstall, so a client pinned to the old key must fail.
func (h *Host) RotateHostKey() error {
	signer, err := newHostSigner()
	if err != nil {
		return fmt.Errorf("rotate host key: %w", err)
	}
	h.mu.Lock()
	h.signer = signer
	h.mu.Unlock()
	return nil
}

// DropConnections closes every live SSH connection at once, as a network
// failure would. Commands they were running lose their session shell;
// detached processes keep running.
func (h *Host) DropConnections() {
	h.mu.Lock()
	conns := make([]net.Conn, 0, len(h.conns))
	for c := range h.conns {
		conns = append(conns, c)
	}
	h.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	h.logger.Info("connections dropped", "count", len(conns))
}

// RefuseFor makes the host close every new connection right after
// accepting it for the duration d, like an sshd that is not up yet.
// Live connections are not affected.
func (h *Host) RefuseFor(d time.Duration) {
	h.mu.Lock()
	h.refuseUntil = time.Now().Add(d)
	h.mu.Unlock()
}

// Close stops the SSH server, drops all connections and kills every process
// the host started, detached ones included. The sandbox files are kept
// unless the host created its own Root. Close is idempotent.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		hooks := h.onClose
		h.mu.Unlock()
		err := h.ln.Close()
		h.DropConnections()
		h.killAll()
		h.wg.Wait()
		h.killAll() // anything a dying session forked meanwhile
		unregister(h)
		for _, f := range hooks {
			f()
		}
		h.removeOwnRoot()
		if err != nil && !errors.Is(err, net.ErrClosed) {
			h.closeErr = fmt.Errorf("close host %s: %w", h.ip, err)
		}
		h.logger.Info("host closed")
	})
	return h.closeErr
}

// addCloseHook registers f to run once the host has closed.
func (h *Host) addCloseHook(f func()) {
	h.mu.Lock()
	h.onClose = append(h.onClose, f)
	h.mu.Unlock()
}

func (h *Host) removeOwnRoot() {
	if h.ownRoot {
		_ = os.RemoveAll(h.root)
	}
}

// newHostSigner generates a fresh ed25519 host key.
func newHostSigner() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("host key signer: %w", err)
	}
	return signer, nil
}

// parseAuthorizedKeys parses authorized_keys lines into wire-format keys.
// An entry may hold several lines; blank lines and comments are skipped.
func parseAuthorizedKeys(entries []string) ([][]byte, error) {
	var keys [][]byte
	for _, entry := range entries {
		for _, line := range strings.Split(entry, "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
			if err != nil {
				return nil, fmt.Errorf("parse authorized key %q: %w", line, err)
			}
			keys = append(keys, pub.Marshal())
		}
	}
	return keys, nil
}
