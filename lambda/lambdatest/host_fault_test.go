package lambdatest_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cpbot/cpbot/lambda/lambdatest"
)

func TestHostDropConnections(t *testing.T) {
	c := newClient(t)
	h := startHost(t, c, lambdatest.TrainerConfig{})
	cl := dial(t, h, c)
	if r := run(t, cl, "setsid nohup sleep 1000 > /dev/null 2>&1 < /dev/null & echo $! > sleep.pid", ""); r.code != 0 {
		t.Fatalf("launch: %+v", r)
	}
	detachedPid := readPid(t, filepath.Join(h.Home(), "sleep.pid"))
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("echo $$ > fg.pid; exec sleep 1000"); err != nil {
		t.Fatal(err)
	}
	fgFile := filepath.Join(h.Home(), "fg.pid")
	waitFor(t, "fg.pid", func() bool { b, _ := os.ReadFile(fgFile); return strings.HasSuffix(string(b), "\n") })
	fgPid := readPid(t, fgFile)

	h.DropConnections()
	if err := s.Wait(); err == nil {
		t.Fatal("session survived DropConnections")
	}
	waitFor(t, "the session's command to die", func() bool { return !alive(fgPid) })
	if !alive(detachedPid) {
		t.Fatal("detached process died with the connection")
	}
	if r := run(t, dial(t, h, c), "echo back", ""); r.stdout != "back\n" {
		t.Fatalf("after drop: %+v", r)
	}
}

func TestHostRefuseFor(t *testing.T) {
	c := newClient(t)
	h := startHost(t, c, lambdatest.TrainerConfig{})
	live := dial(t, h, c)
	h.RefuseFor(time.Hour)
	if cl, err := dialWith(h, c, ssh.FixedHostKey(h.HostKey())); err == nil {
		cl.Close()
		t.Fatal("dial succeeded while refusing")
	}
	if r := run(t, live, "echo still", ""); r.stdout != "still\n" {
		t.Fatalf("live connection during refusal: %+v", r)
	}
	h.RefuseFor(200 * time.Millisecond)
	waitFor(t, "the host to accept again", func() bool {
		cl, err := dialWith(h, c, ssh.FixedHostKey(h.HostKey()))
		if err == nil {
			cl.Close()
		}
		return err == nil
	})
}

func TestHostRotateHostKey(t *testing.T) {
	c := newClient(t)
	h := startHost(t, c, lambdatest.TrainerConfig{})
	old := h.HostKey()
	if err := h.RotateHostKey(); err != nil {
		t.Fatal(err)
	}
	if string(h.HostKey().Marshal()) == string(old.Marshal()) {
		t.Fatal("host key did not change")
	}
	if cl, err := dialWith(h, c, ssh.FixedHostKey(old)); err == nil {
		cl.Close()
		t.Fatal("client pinned to the old key connected")
	}
	cl, err := dialWith(h, c, ssh.FixedHostKey(h.HostKey()))
	if err != nil {
		t.Fatalf("dial with the new key: %v", err)
	}
	cl.Close()
}

func TestHostCloseKillsEverything(t *testing.T) {
	c := newClient(t)
	h := startHost(t, c, lambdatest.TrainerConfig{ItersPerEpoch: 1, Mode: lambdatest.ModeHang})
	prepareCode(t, h.Home())
	cl := dial(t, h, c)
	if r := run(t, cl, detached(100), ""); r.code != 0 {
		t.Fatalf("launch trainer: %+v", r)
	}
	if r := run(t, cl, "setsid nohup sh -c 'sleep 1000; true' > /dev/null 2>&1 < /dev/null & echo $! > sleep.pid", ""); r.code != 0 {
		t.Fatalf("launch sleeper: %+v", r)
	}
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("echo $$ > fg.pid; sleep 1000; true"); err != nil {
		t.Fatal(err)
	}
	pidFiles := []string{"train.pid", ".sim/trainer.pid", "sleep.pid", "fg.pid"}
	waitFor(t, "pid files", func() bool {
		for _, f := range pidFiles {
			if b, _ := os.ReadFile(filepath.Join(h.Home(), f)); !strings.HasSuffix(string(b), "\n") {
				return false
			}
		}
		return true
	})
	var pids []int
	for _, f := range pidFiles {
		pid := readPid(t, filepath.Join(h.Home(), f))
		if !alive(pid) {
			t.Fatalf("%s: pid %d is not running before Close", f, pid)
		}
		pids = append(pids, pid)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	for i, pid := range pids {
		if alive(pid) {
			t.Errorf("%s: pid %d outlived Close", pidFiles[i], pid)
		}
	}
	if cl, err := dialWith(h, c, ssh.InsecureIgnoreHostKey()); err == nil {
		cl.Close()
		t.Error("closed host accepted a connection")
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestSim(t *testing.T) {
	c := newClient(t)
	sim := lambdatest.NewSim(lambdatest.HostConfig{Root: t.TempDir()})
	t.Cleanup(func() { _ = sim.Close() })
	var hosts []*lambdatest.Host
	for _, ip := range []string{"127.78.0.3", "127.78.0.2"} {
		m, err := sim.NewMachine(ip, []string{c.line})
		if err != nil {
			t.Fatal(err)
		}
		h, ok := m.(*lambdatest.Host)
		if !ok {
			t.Fatalf("machine is %T, want *Host", m)
		}
		if want := fmt.Sprintf("%s:%d", ip, sim.Port()); h.Addr() != want {
			t.Errorf("addr = %s, want %s", h.Addr(), want)
		}
		if sim.Host(ip) != h || lambdatest.HostFor(ip) != h {
			t.Errorf("host %s not found by ip", ip)
		}
		hosts = append(hosts, h)
	}
	if _, err := sim.NewMachine("127.78.0.2", []string{c.line}); err == nil {
		t.Error("second host on the same ip started")
	}
	if got := sim.Hosts(); len(got) != 2 || got[0] != hosts[1] || got[1] != hosts[0] {
		t.Errorf("Hosts() = %v, want both ordered by ip", got)
	}
	if r := run(t, dial(t, hosts[0], c), "echo hi", ""); r.stdout != "hi\n" {
		t.Errorf("exec on a sim host: %+v", r)
	}
	if err := hosts[0].Close(); err != nil {
		t.Fatal(err)
	}
	if sim.Host("127.78.0.3") != nil || lambdatest.HostFor("127.78.0.3") != nil {
		t.Error("closed host still registered")
	}
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.NewMachine("127.78.0.4", []string{c.line}); err == nil {
		t.Error("closed sim started a host")
	}
	if len(sim.Hosts()) != 0 {
		t.Error("closed sim still lists hosts")
	}
}

func TestSimulatedMachines(t *testing.T) {
	c := newClient(t)
	newMachine := lambdatest.SimulatedMachines(lambdatest.HostConfig{Root: t.TempDir()})
	m, err := newMachine("127.78.1.2", []string{c.line})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := lambdatest.HostFor("127.78.1.2")
	if h == nil || lambdatest.Machine(h) != m {
		t.Fatal("HostFor does not find the machine")
	}
	if r := run(t, dial(t, h, c), "true", ""); r.code != 0 {
		t.Fatalf("exec: %+v", r)
	}
	if err := m.Close(); err != nil || lambdatest.HostFor("127.78.1.2") != nil {
		t.Fatalf("close: %v", errors.Join(err))
	}
}

func BenchmarkHostExec(b *testing.B) {
	c := newClient(b)
	h := startHost(b, c, lambdatest.TrainerConfig{})
	cl := dial(b, h, c)
	for b.Loop() {
		if r := run(b, cl, "true", ""); r.code != 0 {
			b.Fatal(r)
		}
	}
}

func BenchmarkHostDial(b *testing.B) {
	c := newClient(b)
	h := startHost(b, c, lambdatest.TrainerConfig{})
	for b.Loop() {
		cl, err := dialWith(h, c, ssh.FixedHostKey(h.HostKey()))
		if err != nil {
			b.Fatal(err)
		}
		cl.Close()
	}
}
