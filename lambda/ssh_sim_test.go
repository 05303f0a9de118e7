package lambda_test

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/cpbot/cpbot/lambda"
	"github.com/cpbot/cpbot/lambda/lambdatest"
)

// TestSimHost runs the SSH layer against lambdatest's simulated instance,
// the host the rest of cpbot's tests and the demo mode use.
func TestSimHost(t *testing.T) {
	signer, err := lambda.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, err := lambdatest.NewHost("127.0.0.1", []string{lambda.AuthorizedKey(signer.PublicKey())}, lambdatest.HostConfig{})
	if err != nil {
		t.Fatalf("new host: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	_, portStr, _ := net.SplitHostPort(h.Addr())
	port, _ := strconv.Atoi(portStr)
	hk, err := lambda.OpenHostKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := lambda.SSHConfig{Port: port, Signer: signer, HostKeys: hk, KeepAlive: -1}
	ctx := testCtx(t)
	r, err := lambda.DialRemote(ctx, cfg, "i-sim", h.IP())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { r.Close() })

	t.Run("exec in home", func(t *testing.T) {
		res, err := r.Exec(ctx, "pwd -P")
		home, _ := filepath.EvalSymlinks(h.Home())
		if err != nil || string(res.Stdout) != home+"\n" {
			t.Errorf("pwd %q, %v; want %s", res.Stdout, err, home)
		}
	})
	t.Run("gpu", func(t *testing.T) {
		g, err := r.GPU(ctx)
		if err != nil || len(g) != 1 || g[0].MemTotalMiB != 40960 {
			t.Errorf("gpu %+v, %v", g, err)
		}
	})
	t.Run("upload and download", func(t *testing.T) {
		local := t.TempDir()
		makeTree(t, local)
		st, err := r.Upload(ctx, local, "contourpose/code", nil)
		if err != nil || st.FilesSent != st.Files {
			t.Fatalf("upload %+v, %v", st, err)
		}
		st, err = r.Upload(ctx, local, "contourpose/code", nil)
		if err != nil || st.BytesSent != 0 {
			t.Fatalf("re-upload %+v, %v", st, err)
		}
		back := t.TempDir()
		ds, err := r.Download(ctx, "contourpose/code", []string{"data/*/*/*.bin", "main.py"}, back)
		if err != nil || ds.FilesCopied != 21 {
			t.Fatalf("download %+v, %v", ds, err)
		}
		if !reflect.DeepEqual(treeHashes(t, back)["main.py"], treeHashes(t, local)["main.py"]) {
			t.Error("main.py differs after the round trip")
		}
	})
	t.Run("detached run survives a drop", func(t *testing.T) {
		if err := os.MkdirAll(filepath.Join(h.Home(), "w"), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := "while [ ! -f go ]; do sleep 0.02; done; echo done; exit 4"
		if _, err := r.StartDetached(ctx, "jobs/1", "w", cmd); err != nil {
			t.Fatal(err)
		}
		h.DropConnections()
		st, err := r.TrainStatus(ctx, "jobs/1") // reconnects
		if err != nil || !st.Running {
			t.Fatalf("status after drop %+v, %v", st, err)
		}
		touch(t, filepath.Join(h.Home(), "w", "go"))
		eventually(t, "exit", func() bool {
			st, err = r.TrainStatus(ctx, "jobs/1")
			return err == nil && st.Exited
		})
		if st.ExitCode != 4 {
			t.Errorf("exit code %d, want 4", st.ExitCode)
		}
		lines, _, err := r.Tail(ctx, "jobs/1/train.log", 0, 0)
		if err != nil || !reflect.DeepEqual(lines, []string{"done"}) {
			t.Errorf("log %q, %v", lines, err)
		}
	})
	t.Run("dial waits for a refusing sshd", func(t *testing.T) {
		h.RefuseFor(700 * time.Millisecond)
		r2, err := lambda.DialRemote(ctx, cfg, "i-sim", h.IP())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		r2.Close()
	})
	t.Run("rotated host key refused", func(t *testing.T) {
		if err := h.RotateHostKey(); err != nil {
			t.Fatal(err)
		}
		h.DropConnections()
		_, err := r.Exec(ctx, "touch should-not-exist")
		if !errors.Is(err, lambda.ErrHostKeyChanged) {
			t.Fatalf("exec: %v, want ErrHostKeyChanged", err)
		}
		if _, err := os.Stat(filepath.Join(h.Home(), "should-not-exist")); !os.IsNotExist(err) {
			t.Errorf("command ran: %v", err)
		}
	})
}
