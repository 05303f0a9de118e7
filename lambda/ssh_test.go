package lambda_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cpbot/cpbot/lambda"
)

var nastyStrings = []string{
	"",
	"plain",
	"a'b; rm -rf /$(x)",
	`"double" and \backslash\`,
	"$HOME `id` $(id) ${x:-y}",
	"new\nline\ttab",
	"'''",
	"* ? [a-z] ~ # ! & | ; < > ( )",
	"ünïcödé ✓",
}

func TestShellQuoteLocalShell(t *testing.T) {
	for _, s := range nastyStrings {
		t.Run(s, func(t *testing.T) {
			out, err := exec.Command("/bin/sh", "-c", "printf %s "+lambda.ShellQuote(s)).Output()
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != s {
				t.Errorf("got %q, want %q", out, s)
			}
		})
	}
}

func TestRemoteExec(t *testing.T) {
	e := newRemoteEnv(t)
	ctx := testCtx(t)
	tests := []struct {
		name       string
		cmd        string
		stdout     string
		stderr     string
		exitStatus int
	}{
		{"stdout", "echo hello", "hello\n", "", 0},
		{"stderr and exit", "echo oops >&2; exit 3", "", "oops\n", 3},
		{"runs in home", "pwd", e.sshd.home + "\n", "", 0},
		{"missing command", "cpbot-no-such-command-xyz", "", "", 127},
	}
	for _, s := range nastyStrings {
		tests = append(tests, struct {
			name       string
			cmd        string
			stdout     string
			stderr     string
			exitStatus int
		}{"quote " + s, "printf %s " + lambda.ShellQuote(s), s, "", 0})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := e.remote.Exec(ctx, tt.cmd)
			if err != nil {
				t.Fatalf("exec: %v", err)
			}
			if string(res.Stdout) != tt.stdout {
				t.Errorf("stdout %q, want %q", res.Stdout, tt.stdout)
			}
			if tt.stderr != "" && string(res.Stderr) != tt.stderr {
				t.Errorf("stderr %q, want %q", res.Stderr, tt.stderr)
			}
			if res.ExitStatus != tt.exitStatus {
				t.Errorf("exit %d, want %d", res.ExitStatus, tt.exitStatus)
			}
		})
	}
}

func TestRemoteExecContextCancel(t *testing.T) {
	e := newRemoteEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := e.remote.Exec(ctx, "sleep 30")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	res, err := e.remote.Exec(testCtx(t), "echo still")
	if err != nil || string(res.Stdout) != "still\n" {
		t.Fatalf("exec after cancel: %q, %v", res.Stdout, err)
	}
}

func TestRemoteClosed(t *testing.T) {
	e := newRemoteEnv(t)
	if err := e.remote.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := e.remote.Exec(testCtx(t), "true"); !errors.Is(err, lambda.ErrRemoteClosed) {
		t.Fatalf("exec after close: %v, want ErrRemoteClosed", err)
	}
}

func TestDialRetriesUntilSSHDAnswers(t *testing.T) {
	e := newRemoteEnv(t)
	p := newProxy(t, e.sshd.Addr(), 3) // handshake EOF three times
	cfg := e.cfg
	cfg.Port = p.port()
	r, err := lambda.DialRemote(testCtx(t), cfg, "i-retry", "127.0.0.1")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer r.Close()
	if got := p.acceptedCount(); got != 4 {
		t.Errorf("accepted %d connections, want 4", got)
	}
}

func TestDialGivesUpWhenContextEnds(t *testing.T) {
	e := newRemoteEnv(t)
	cfg := e.cfg
	cfg.Port = freePort(t) // nothing listens: connection refused
	ctx, cancel := context.WithTimeout(context.Background(), 800*time.Millisecond)
	defer cancel()
	_, err := lambda.DialRemote(ctx, cfg, "i-none", "127.0.0.1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestRemoteReconnectsAfterDrop(t *testing.T) {
	e := newRemoteEnv(t)
	p := newProxy(t, e.sshd.Addr(), 0)
	cfg := e.cfg
	cfg.Port = p.port()
	cfg.KeepAlive = -1
	r, err := lambda.DialRemote(testCtx(t), cfg, "i-drop", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Exec(testCtx(t), "true"); err != nil {
		t.Fatal(err)
	}
	p.cutAll()
	res, err := r.Exec(testCtx(t), "echo back")
	if err != nil || string(res.Stdout) != "back\n" {
		t.Fatalf("exec after drop: %q, %v", res.Stdout, err)
	}
	if got := p.acceptedCount(); got != 2 {
		t.Errorf("accepted %d connections, want 2", got)
	}
}

func TestCloseAbortsReconnect(t *testing.T) {
	e := newRemoteEnv(t)
	p := newProxy(t, e.sshd.Addr(), 0)
	cfg := e.cfg
	cfg.Port = p.port()
	cfg.KeepAlive = -1
	r, err := lambda.DialRemote(testCtx(t), cfg, "i-abort", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	p.rejectAll.Store(true)
	p.cutAll()
	errc := make(chan error, 1)
	go func() {
		_, err := r.Exec(testCtx(t), "true")
		errc <- err
	}()
	eventually(t, "reconnect attempts", func() bool { return p.acceptedCount() >= 3 })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, lambda.ErrRemoteClosed) {
		t.Fatalf("exec during close: %v, want ErrRemoteClosed", err)
	}
}

func TestKeepAliveClosesDeadConnection(t *testing.T) {
	e := newRemoteEnv(t)
	p := newProxy(t, e.sshd.Addr(), 0)
	cfg := e.cfg
	cfg.Port = p.port()
	cfg.KeepAlive = 200 * time.Millisecond
	r, err := lambda.DialRemote(testCtx(t), cfg, "i-dead", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p.freezeAll() // the TCP connection stays open but nothing gets through
	// Without keepalives the session open would hang until the context ends;
	// with them the dead connection is closed and the next one is used.
	res, err := r.Exec(testCtx(t), "echo alive")
	if err != nil || string(res.Stdout) != "alive\n" {
		t.Fatalf("exec: %q, %v", res.Stdout, err)
	}
	if got := p.acceptedCount(); got != 2 {
		t.Errorf("accepted %d connections, want 2", got)
	}
}

func TestHostKeyChangeRefused(t *testing.T) {
	e := newRemoteEnv(t)
	ctx := testCtx(t)
	p := newProxy(t, e.sshd.Addr(), 0)
	cfg := e.cfg
	cfg.Port = p.port()
	cfg.KeepAlive = -1
	r, err := lambda.DialRemote(ctx, cfg, "i-pin", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pinned, ok := cfg.HostKeys.Pinned("i-pin")
	if !ok {
		t.Fatal("no pin after first contact")
	}

	e.sshd.restart(true)
	p.cutAll()
	marker := filepath.Join(e.dir, "must-not-exist")
	_, err = r.Exec(ctx, "mkdir -p "+e.dir+" && touch "+marker)
	var changed *lambda.HostKeyChangedError
	if !errors.As(err, &changed) || !errors.Is(err, lambda.ErrHostKeyChanged) {
		t.Fatalf("exec on changed host: %v, want *HostKeyChangedError", err)
	}
	if changed.InstanceID != "i-pin" || changed.Want == changed.Got {
		t.Errorf("error fields: %+v", changed)
	}
	if _, err := os.Stat(filepath.Join(e.sshd.home, marker)); !os.IsNotExist(err) {
		t.Errorf("command ran on a host with a changed key (stat: %v)", err)
	}
	if _, err := lambda.DialRemote(ctx, cfg, "i-pin", "127.0.0.1"); !errors.Is(err, lambda.ErrHostKeyChanged) {
		t.Fatalf("dial changed host: %v, want ErrHostKeyChanged", err)
	}
	if got, _ := cfg.HostKeys.Pinned("i-pin"); string(got.Marshal()) != string(pinned.Marshal()) {
		t.Error("pin was replaced by the changed key")
	}

	if err := cfg.HostKeys.Forget("i-pin"); err != nil {
		t.Fatal(err)
	}
	r2, err := lambda.DialRemote(ctx, cfg, "i-pin", "127.0.0.1")
	if err != nil {
		t.Fatalf("dial after forget: %v", err)
	}
	r2.Close()
}

// proxy forwards TCP connections to target; it can refuse the first ones,
// cut all, or freeze all (keep them open but pass nothing).
type proxy struct {
	ln          net.Listener
	target      string
	rejectFirst int
	rejectAll   atomic.Bool

	mu       sync.Mutex
	accepted int
	conns    []net.Conn
	frozen   map[net.Conn]chan struct{}
}

func newProxy(t testing.TB, target string, rejectFirst int) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, rejectFirst: rejectFirst, frozen: map[net.Conn]chan struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cutAll()
	})
	return p
}

func (p *proxy) port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *proxy) acceptedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepted++
		reject := p.accepted <= p.rejectFirst || p.rejectAll.Load()
		p.mu.Unlock()
		if reject {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.frozen[c] = nil
		p.mu.Unlock()
		go p.pipe(c, up, c)
		go p.pipe(up, c, c)
	}
}

// pipe copies src to dst unless the connection key is frozen.
func (p *proxy) pipe(dst, src, key net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		p.mu.Lock()
		gate := p.frozen[key]
		p.mu.Unlock()
		if gate != nil {
			<-gate // frozen: drop everything until cut
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	for k, gate := range p.frozen {
		if gate != nil {
			close(gate)
		}
		delete(p.frozen, k)
	}
	p.conns = nil
}

func (p *proxy) freezeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, gate := range p.frozen {
		if gate == nil {
			p.frozen[k] = make(chan struct{})
		}
	}
}

// BenchmarkExec is the cost of one command round trip to a loopback sshd,
// the floor under Tail, TrainStatus and GPU.
func BenchmarkExec(b *testing.B) {
	e := newRemoteEnv(b)
	ctx := testCtx(b)
	for b.Loop() {
		if _, err := e.remote.Exec(ctx, "true"); err != nil {
			b.Fatal(err)
		}
	}
}
