package store_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cpbot/cpbot/jobs"
	"github.com/cpbot/cpbot/store"
)

// crashEnv names the file the helper writer fills when the test binary
// re-executes itself.
const crashEnv = "CPBOT_STORE_CRASH_DB"

// crashJob is the n-th job the helper writer creates. Its contents derive
// from n, so the parent can tell an intact job from a torn one. The log tail
// makes each job span several pages.
func crashJob(n int) *jobs.Job {
	tail := make([]string, 40)
	for i := range tail {
		tail[i] = fmt.Sprintf("job %d line %d %s", n, i, strings.Repeat("x", 100))
	}
	return &jobs.Job{Spec: spec(fmt.Sprintf("crash-%d", n), "U1"), LogTail: tail}
}

// TestHelperWriter is not a test: run as a child process by
// TestCrashKeepsAcknowledgedJobs, it creates and updates jobs until killed,
// printing each acknowledgement after its Update returned.
func TestHelperWriter(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrashKeepsAcknowledgedJobs")
	}
	ctx := context.Background()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		fmt.Fprintf(os.Stdout, "error %v\n", err)
		os.Exit(2)
	}
	stop := time.Now().Add(time.Minute) // in case the parent never kills us
	for n := 0; time.Now().Before(stop); n++ {
		out, _, err := db.CreateJobs(ctx, fmt.Sprintf("crash-%d", n), []*jobs.Job{crashJob(n)})
		if err != nil {
			fmt.Fprintf(os.Stdout, "error %v\n", err)
			os.Exit(2)
		}
		id := out[0].ID
		fmt.Fprintf(os.Stdout, "created %d %d\n", id, n)
		_, err = db.UpdateJob(ctx, id, jobs.StateQueued, func(j *jobs.Job) error {
			j.State, j.InstanceName = jobs.StateLaunching, fmt.Sprintf("cpbot-%d-1", id)
			return nil
		})
		if err != nil {
			fmt.Fprintf(os.Stdout, "error %v\n", err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stdout, "updated %d %d\n", id, n)
	}
	os.Exit(0)
}

func TestCrashKeepsAcknowledgedJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "cpbot.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	created := map[int64]int{} // acknowledged id → n
	updated := map[int64]bool{}
	ack := func(line string) {
		var verb string
		var id int64
		var n int
		if _, err := fmt.Sscanf(line, "%s %d %d", &verb, &id, &n); err != nil {
			t.Fatalf("child said %q", line)
		}
		switch verb {
		case "created":
			created[id] = n
		case "updated":
			updated[id] = true
		default:
			t.Fatalf("child said %q", line)
		}
	}

	const want = 40
	deadline := time.After(30 * time.Second)
	for len(created) < want {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("child exited after %d acks", len(created))
			}
			ack(line)
		case <-deadline:
			t.Fatalf("only %d acks before the deadline", len(created))
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL, most likely mid-write
		t.Fatal(err)
	}
	killed = true
	for line := range lines { // acks printed before the kill landed count too
		ack(line)
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("child exited cleanly; want killed")
	}
	t.Logf("child killed after %d creates, %d updates acknowledged", len(created), len(updated))

	checkFile(t, path)
	db := mustOpen(t, path, store.Options{})
	ctx := context.Background()
	for _, id := range slices.Sorted(maps.Keys(created)) {
		j, err := db.Job(ctx, id)
		if err != nil {
			t.Errorf("acknowledged job #%d lost: %v", id, err)
			continue
		}
		w := crashJob(created[id])
		if j.Spec.Class != w.Spec.Class || !slices.Equal(j.LogTail, w.LogTail) {
			t.Errorf("job #%d is not the one acknowledged: class %q", id, j.Spec.Class)
		}
		if updated[id] && (j.State != jobs.StateLaunching || j.InstanceName != fmt.Sprintf("cpbot-%d-1", id)) {
			t.Errorf("acknowledged update of job #%d lost: state %s, instance %q", id, j.State, j.InstanceName)
		}
	}
	// The store stays usable: new IDs continue after the last one written.
	all, err := db.Jobs(ctx, jobs.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := db.CreateJobs(ctx, "", []*jobs.Job{crashJob(-1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) > 0 && out[0].ID <= all[0].ID {
		t.Errorf("new job #%d does not follow the newest #%d", out[0].ID, all[0].ID)
	}
}
