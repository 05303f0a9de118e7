package lambda_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cpbot/cpbot/lambda"
	"golang.org/x/crypto/ssh"
)

const sshdPath = "/usr/sbin/sshd"

// fakeNvidiaSMI answers lambda.GPUQuery like a two-GPU machine whose second
// GPU cannot report power.
const fakeNvidiaSMI = `#!/bin/sh
[ "$*" = "--query-gpu=utilization.gpu,memory.used,memory.total,power.draw --format=csv,noheader,nounits" ] || { echo "unexpected args: $*" >&2; exit 2; }
echo "87, 30542, 40960, 301.50"
echo "0, 3, 40960, [N/A]"
`

// testSSHD is a real OpenSSH server on 127.0.0.1 with throwaway keys,
// letting the current user log in with one client key.
type testSSHD struct {
	t    testing.TB
	dir  string
	port int
	home string // the login user's home directory

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// requireSSHD skips the test when sshd is missing, or fails it when
// CPBOT_REQUIRE_SSHD=1 says it must be there.
func requireSSHD(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		if os.Getenv("CPBOT_REQUIRE_SSHD") == "1" {
			t.Fatalf("OpenSSH server %s is required (CPBOT_REQUIRE_SSHD=1): %v", sshdPath, err)
		}
		t.Skipf("OpenSSH server %s not installed (install openssh-server); skipping real-sshd test", sshdPath)
	}
}

// startSSHD starts sshd authorizing clientKey, with a fresh host key.
func startSSHD(t testing.TB, clientKey ssh.PublicKey) *testSSHD {
	t.Helper()
	requireSSHD(t)
	u, err := user.Current()
	if err != nil {
		t.Fatalf("current user: %v", err)
	}
	if os.Geteuid() == 0 {
		// sshd refuses to start as root without its privilege separation dir.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("privsep dir: %v", err)
		}
	}
	s := &testSSHD{t: t, dir: t.TempDir(), home: u.HomeDir, logs: &syncBuffer{}}
	// Logins get a PATH starting with bin/, which holds a stand-in nvidia-smi.
	bin := filepath.Join(s.dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "nvidia-smi"), []byte(fakeNvidiaSMI), 0o755); err != nil {
		t.Fatal(err)
	}
	authorized := fmt.Sprintf("environment=\"PATH=%s:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin\" %s", bin, ssh.MarshalAuthorizedKey(clientKey))
	if err := os.WriteFile(filepath.Join(s.dir, "authorized_keys"), []byte(authorized), 0o600); err != nil {
		t.Fatal(err)
	}
	s.writeHostKey()
	s.port = freePort(t)
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %[2]s/host_ed25519
AuthorizedKeysFile %[2]s/authorized_keys
PidFile %[2]s/sshd.pid
PermitRootLogin yes
UsePAM no
StrictModes no
PubkeyAuthentication yes
PermitUserEnvironment PATH
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp internal-sftp
LogLevel VERBOSE
`, s.port, s.dir)
	if err := os.WriteFile(filepath.Join(s.dir, "sshd_config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.logs.String())
		}
	})
	return s
}

// writeHostKey makes a new ed25519 host key.
func (s *testSSHD) writeHostKey() {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test host")
	if err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "host_ed25519"), pem.EncodeToMemory(block), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

func (s *testSSHD) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", filepath.Join(s.dir, "sshd_config"))
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start sshd: %v", err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if bannerOK(s.Addr()) {
			// Keep reaping in the background.
			go func() { <-exited }()
			return
		}
		select {
		case err := <-exited:
			s.cmd = nil
			s.t.Fatalf("sshd exited: %v\n%s", err, s.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("sshd did not answer on %s:\n%s", s.Addr(), s.logs.String())
		}
	}
}

// bannerOK says whether an SSH server answers on addr.
func bannerOK(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "SSH-2.0-")
}

// stop ends the listening sshd; sessions it already forked live on.
func (s *testSSHD) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	s.cmd = nil
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", s.Addr(), 200*time.Millisecond)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// restart stops sshd and starts it again on the same port, with a new host
// key if newHostKey.
func (s *testSSHD) restart(newHostKey bool) {
	s.t.Helper()
	s.stop()
	if newHostKey {
		s.writeHostKey()
	}
	s.start()
}

// Addr is sshd's host:port.
func (s *testSSHD) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// remoteEnv is a Remote to a real sshd plus a unique scratch dir, relative
// to the home directory, removed at the end.
type remoteEnv struct {
	sshd     *testSSHD
	cfg      lambda.SSHConfig
	remote   *lambda.Remote
	dir      string // relative to home
	localDir string // the same dir seen from this machine
}

// newRemoteEnv starts sshd and dials it as the current user.
func newRemoteEnv(t testing.TB) *remoteEnv {
	t.Helper()
	signer, err := lambda.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := startSSHD(t, signer.PublicKey())
	hk, err := lambda.OpenHostKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := user.Current()
	e := &remoteEnv{
		sshd: d,
		cfg: lambda.SSHConfig{
			User: u.Username, Port: d.port, Signer: signer, HostKeys: hk,
			DialTimeout: 5 * time.Second, KeepAlive: time.Second,
		},
		dir: "cpbot-test-" + randHex(t, 6),
	}
	e.localDir = filepath.Join(d.home, e.dir)
	t.Cleanup(func() { os.RemoveAll(e.localDir) })
	e.remote = e.dial(t, "i-test")
	return e
}

func (e *remoteEnv) dial(t testing.TB, instanceID string) *lambda.Remote {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := lambda.DialRemote(ctx, e.cfg, instanceID, "127.0.0.1")
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func randHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
