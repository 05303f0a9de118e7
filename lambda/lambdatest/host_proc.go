package lambdatest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Environment variables that mark every process a Host starts. Children
// inherit them, so Close can find detached descendants that left the
// session's process group.
const (
	envSimHost = "CPBOT_SIM_HOST"
	envSimID   = "CPBOT_SIM_ID"
)

// environ is the base environment of a command on the host.
func (h *Host) environ() []string {
	return []string{
		"HOME=" + h.home,
		"PATH=" + h.bin + ":/usr/bin:/bin",
		"SHELL=/bin/sh",
		"USER=ubuntu",
		"LOGNAME=ubuntu",
		"LANG=C.UTF-8",
		envSimHost + "=" + h.ip,
		envSimID + "=" + h.id,
	}
}

// start starts cmd unless the host is closing, and records its pid.
func (h *Host) start(cmd *exec.Cmd) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errors.New("host is shutting down")
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	h.procs[cmd.Process.Pid] = struct{}{}
	return nil
}

// finished forgets a session shell that has been waited for.
func (h *Host) finished(pid int) {
	h.mu.Lock()
	delete(h.procs, pid)
	h.mu.Unlock()
}

// killAll kills every live process of the host: the process groups of the
// session shells, then, until none is left, every process whose
// environment carries this host's mark or whose working directory lies in
// its sandbox.
func (h *Host) killAll() {
	h.mu.Lock()
	for pid := range h.procs {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	h.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := h.processes()
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			h.logger.Error("processes survive close", "pids", pids)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// processes lists the live (non-zombie) processes belonging to the host.
func (h *Host) processes() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	mark := []byte(envSimID + "=" + h.id)
	self := os.Getpid()
	sandbox := filepath.Join(h.root, h.ip) + string(filepath.Separator)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid <= 1 {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		if env, err := os.ReadFile(filepath.Join(dir, "environ")); err == nil && hasEntry(env, mark) {
			pids = append(pids, pid)
			continue
		}
		if cwd, err := os.Readlink(filepath.Join(dir, "cwd")); err == nil && strings.HasPrefix(cwd+"/", sandbox) {
			if !zombie(pid) {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// hasEntry reports whether a NUL-separated environment block holds entry.
func hasEntry(env, entry []byte) bool {
	for _, kv := range bytes.Split(env, []byte{0}) {
		if bytes.Equal(kv, entry) {
			return true
		}
	}
	return false
}

// zombie reports whether pid has exited but is not yet reaped.
func zombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X'
}
