package lambdatest_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// client is a test SSH identity.
type client struct {
	signer ssh.Signer
	line   string // authorized_keys line
}

func newClient(tb testing.TB) client {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey()))) + " test@cpbot"
	return client{signer: signer, line: line}
}

var nextIP atomic.Int32

// startHost starts a host on a fresh loopback IP and a free port, closed at
// the end of the test.
func startHost(tb testing.TB, c client, tc lambdatest.TrainerConfig) *lambdatest.Host {
	tb.Helper()
	port, err := lambdatest.FreePort()
	if err != nil {
		tb.Fatal(err)
	}
	n := nextIP.Add(1)
	ip := fmt.Sprintf("127.77.%d.%d", n/250, n%250+2)
	h, err := lambdatest.NewHost(ip, []string{c.line}, lambdatest.HostConfig{
		Port: port, Root: tb.TempDir(), Trainer: tc,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = h.Close() })
	return h
}

func dialWith(h *lambdatest.Host, c client, hostKey ssh.HostKeyCallback) (*ssh.Client, error) {
	return ssh.Dial("tcp", h.Addr(), &ssh.ClientConfig{
		User:            "ubuntu",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(c.signer)},
		HostKeyCallback: hostKey,
		Timeout:         5 * time.Second,
	})
}

func dial(tb testing.TB, h *lambdatest.Host, c client) *ssh.Client {
	tb.Helper()
	cl, err := dialWith(h, c, ssh.FixedHostKey(h.HostKey()))
	if err != nil {
		tb.Fatalf("dial %s: %v", h.Addr(), err)
	}
	tb.Cleanup(func() { _ = cl.Close() })
	return cl
}

// result is what one exec produced.
type result struct {
	stdout, stderr string
	code           int
}

func run(tb testing.TB, cl *ssh.Client, cmd, stdin string) result {
	tb.Helper()
	s, err := cl.NewSession()
	if err != nil {
		tb.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	s.Stdin = strings.NewReader(stdin)
	err = s.Run(cmd)
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *ssh.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitStatus()
	default:
		tb.Fatalf("run %q: %v", cmd, err)
	}
	return r
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid is a live, non-zombie process.
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] != 'Z' && stat[i+2] != 'X'
}

func readPid(tb testing.TB, path string) int {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatalf("pid file %s: %v", path, err)
	}
	return pid
}

// prepareCode lays out a ContourPose checkout with data for obj1 in home.
func prepareCode(tb testing.TB, home string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Join(home, "data", "train", "obj1"), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "main.py"), []byte("# ContourPose\n"), 0o644); err != nil {
		tb.Fatal(err)
	}
}

func TestHostAuth(t *testing.T) {
	good, stranger := newClient(t), newClient(t)
	h := startHost(t, good, lambdatest.TrainerConfig{})
	tests := []struct {
		name string
		c    client
		ok   bool
	}{
		{"authorized key", good, true},
		{"unknown key", stranger, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, err := dialWith(h, tt.c, ssh.FixedHostKey(h.HostKey()))
			if cl != nil {
				cl.Close()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("dial: err = %v, want ok = %v", err, tt.ok)
			}
		})
	}
	t.Run("bad authorized key line", func(t *testing.T) {
		_, err := lambdatest.NewHost("127.77.255.1", []string{"ssh-ed25519 not-base64"}, lambdatest.HostConfig{Root: t.TempDir()})
		if err == nil {
			t.Fatal("NewHost accepted a malformed key")
		}
	})
}

// binList is the sandbox paths of programs, one a line.
func binList(h *lambdatest.Host, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString(filepath.Join(filepath.Dir(h.Home()), "bin", n) + "\n")
	}
	return b.String()
}

func TestHostExec(t *testing.T) {
	c := newClient(t)
	h := startHost(t, c, lambdatest.TrainerConfig{})
	cl := dial(t, h, c)
	tests := []struct {
		name, cmd, stdin string
		want             result
	}{
		{"exit status and stderr", "echo out; echo err >&2; exit 3", "", result{"out\n", "err\n", 3}},
		{"stdin", "tr a-z A-Z", "hello", result{"HELLO", "", 0}},
		{"home is the working directory", "pwd; echo $HOME", "", result{h.Home() + "\n" + h.Home() + "\n", "", 0}},
		{"stand-ins come first on PATH", "for p in python3 python pip pip3 nvidia-smi; do command -v $p; done", "", result{binList(h, "python3", "python", "pip", "pip3", "nvidia-smi"), "", 0}},
		{"cuda check", `python3 -c 'import torch; print(torch.cuda.is_available())'`, "", result{"True\n", "", 0}},
		{"missing script", "python3 nope.py", "", result{"", "python3: can't open file '" + h.Home() + "/nope.py': [Errno 2] No such file or directory\n", 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := run(t, cl, tt.cmd, tt.stdin); got != tt.want {
				t.Fatalf("run %q = %+v, want %+v", tt.cmd, got, tt.want)
			}
		})
	}
	t.Run("killed by a signal", func(t *testing.T) {
		s, err := cl.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		err = s.Run("kill -TERM $$")
		var ee *ssh.ExitError
		if !errors.As(err, &ee) || ee.Signal() != "TERM" {
			t.Fatalf("run = %v, want exit signal TERM", err)
		}
	})
	t.Run("env request", func(t *testing.T) {
		s, err := cl.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Setenv("LC_ALL", "C"); err != nil {
			t.Fatalf("setenv LC_ALL: %v", err)
		}
		if err := s.Setenv("EVIL", "1"); err == nil {
			t.Fatal("setenv EVIL accepted")
		}
		out, err := s.Output("echo $LC_ALL-$EVIL")
		if err != nil || string(out) != "C-\n" {
			t.Fatalf("output = %q, %v", out, err)
		}
	})
	t.Run("keepalive", func(t *testing.T) {
		ok, _, err := cl.SendRequest("keepalive@openssh.com", true, nil)
		if err != nil || !ok {
			t.Fatalf("keepalive = %v, %v", ok, err)
		}
	})
}

func TestHostSFTP(t *testing.T) {
	c := newClient(t)
	h := startHost(t, c, lambdatest.TrainerConfig{})
	sc, err := sftp.NewClient(dial(t, h, c))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if wd, err := sc.Getwd(); err != nil || wd != h.Home() {
		t.Fatalf("getwd = %q, %v; want %q", wd, err, h.Home())
	}
	if err := sc.MkdirAll("data/train/obj1"); err != nil {
		t.Fatal(err)
	}
	f, err := sc.Create("data/train/obj1/0001.png")
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("contourpose"), 10000)
	if _, err := f.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(h.Home(), "data/train/obj1/0001.png"))
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("uploaded file: %d bytes, %v; want %d bytes", len(got), err, len(payload))
	}
	r, err := sc.Open("data/train/obj1/0001.png")
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(back, payload) {
		t.Fatalf("downloaded %d bytes, %v; want %d", len(back), err, len(payload))
	}
}
