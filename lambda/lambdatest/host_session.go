package lambdatest

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// hostSession is one SSH session channel: its environment and at most one
// program (exec, shell or the sftp subsystem).
type hostSession struct {
	h       *Host
	ch      ssh.Channel
	env     []string
	started bool
}

// handleSession serves one session channel until its program ends or the
// client goes away.
func (h *Host) handleSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	s := &hostSession{h: h, ch: ch}
	defer ch.Close()
	for req := range reqs {
		ok, run := s.request(req)
		if req.WantReply {
			_ = req.Reply(ok, nil)
		}
		if run != nil {
			s.started = true
			status := run(reqs)
			_, _ = ch.SendRequest(status.kind, false, status.payload)
			return
		}
	}
}

// exitStatus is the exit-status or exit-signal request ending a session.
type exitStatus struct {
	kind    string
	payload []byte
}

func exitCode(code int) exitStatus {
	return exitStatus{"exit-status", ssh.Marshal(struct{ Status uint32 }{uint32(code)})}
}

func exitSignal(sig syscall.Signal) exitStatus {
	name := strings.TrimPrefix(signalNames[sig], "SIG")
	if name == "" {
		name = "KILL"
	}
	return exitStatus{"exit-signal", ssh.Marshal(struct {
		Signal     string
		CoreDumped bool
		Error      string
		Lang       string
	}{name, false, "", ""})}
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGHUP: "HUP", syscall.SIGINT: "INT", syscall.SIGQUIT: "QUIT",
	syscall.SIGKILL: "KILL", syscall.SIGPIPE: "PIPE", syscall.SIGTERM: "TERM",
	syscall.SIGUSR1: "USR1", syscall.SIGUSR2: "USR2", syscall.SIGSEGV: "SEGV",
	syscall.SIGABRT: "ABRT", syscall.SIGALRM: "ALRM",
}

// request answers one session request. When the request starts a program it
// returns a function running it to completion; that function consumes the
// remaining requests.
func (s *hostSession) request(req *ssh.Request) (bool, func(<-chan *ssh.Request) exitStatus) {
	if s.started {
		return false, nil
	}
	switch req.Type {
	case "env":
		var kv struct{ Name, Value string }
		if ssh.Unmarshal(req.Payload, &kv) != nil {
			return false, nil
		}
		if kv.Name != "LANG" && !strings.HasPrefix(kv.Name, "LC_") {
			return false, nil // like sshd's AcceptEnv LANG LC_*
		}
		s.env = append(s.env, kv.Name+"="+kv.Value)
		return true, nil
	case "exec":
		var cmd struct{ Command string }
		if ssh.Unmarshal(req.Payload, &cmd) != nil {
			return false, nil
		}
		return true, func(reqs <-chan *ssh.Request) exitStatus {
			return s.run(exec.Command("/bin/sh", "-c", cmd.Command), reqs)
		}
	case "shell":
		return true, func(reqs <-chan *ssh.Request) exitStatus {
			return s.run(exec.Command("/bin/sh"), reqs)
		}
	case "subsystem":
		var sub struct{ Name string }
		if ssh.Unmarshal(req.Payload, &sub) != nil || sub.Name != "sftp" {
			return false, nil
		}
		return true, s.sftp
	default: // pty-req, x11-req, auth-agent-req@openssh.com, …
		return false, nil
	}
}

// run executes cmd in the sandbox with the channel as its stdio. If the
// client goes away first, only the session's own shell is killed, so
// detached children live on.
func (s *hostSession) run(cmd *exec.Cmd, reqs <-chan *ssh.Request) exitStatus {
	h := s.h
	cmd.Dir = h.home
	cmd.Env = append(h.environ(), s.env...)
	cmd.Stdout = s.ch
	cmd.Stderr = s.ch.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second // output pipes held by leftover children
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return s.fail(err)
	}
	if err := h.start(cmd); err != nil {
		return s.fail(err)
	}
	pid := cmd.Process.Pid
	h.logger.Debug("exec", "pid", pid, "args", cmd.Args)
	go func() {
		_, _ = io.Copy(stdin, s.ch)
		_ = stdin.Close()
	}()
	done := make(chan struct{})
	go func() {
		for req := range reqs {
			ok := false
			if req.Type == "signal" {
				var sig struct{ Name string }
				if ssh.Unmarshal(req.Payload, &sig) == nil {
					ok = signalByName(pid, sig.Name)
				}
			}
			if req.WantReply {
				_ = req.Reply(ok, nil)
			}
		}
		select { // the client closed the channel or the connection died
		case <-done:
		default:
			_ = cmd.Process.Kill()
		}
	}()
	err = cmd.Wait()
	close(done)
	h.finished(pid)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return exitCode(0)
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return exitSignal(ws.Signal())
		}
		return exitCode(ee.ExitCode())
	case errors.Is(err, exec.ErrWaitDelay):
		return exitCode(cmd.ProcessState.ExitCode())
	default:
		return s.fail(err)
	}
}

// sftp serves the sftp subsystem with relative paths resolved in the home.
func (s *hostSession) sftp(reqs <-chan *ssh.Request) exitStatus {
	go ssh.DiscardRequests(reqs)
	srv, err := sftp.NewServer(s.ch, sftp.WithServerWorkingDirectory(s.h.home))
	if err != nil {
		return s.fail(err)
	}
	if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
		s.h.logger.Debug("sftp", "err", err)
	}
	_ = srv.Close()
	return exitCode(0)
}

// fail reports an internal error on the session's stderr, like sshd would.
func (s *hostSession) fail(err error) exitStatus {
	s.h.logger.Warn("session", "err", err)
	_, _ = fmt.Fprintf(s.ch.Stderr(), "sim: %v\n", err)
	return exitCode(255)
}

func signalByName(pid int, name string) bool {
	for sig, n := range signalNames {
		if n == strings.TrimPrefix(name, "SIG") {
			return syscall.Kill(pid, sig) == nil
		}
	}
	return false
}
