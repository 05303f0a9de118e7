package jobs

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cpbot/cpbot/lambda"
)

// Remote layout: everything of a job lives in <RemoteDir>/<id>/ on the
// instance: the code (main.py beside data/), train.log, train.pid,
// train.exit and the checkpoints under model/<class>/.
func (r *runner) jobDir() string { return path.Join(r.cfg().RemoteDir, strconv.FormatInt(r.id, 10)) }

const (
	logChunk       = 1 << 20 // bytes of train.log read per poll at most
	logTailLines   = 50      // lines of train.log kept for errors and `logs`
	idleGPUPercent = 10      // GPU utilisation below this is not work
)

// dial returns the connection to the job's instance, opening it if needed.
func (r *runner) dial(ctx context.Context, j *Job) (*lambda.Remote, error) {
	if r.remote != nil {
		return r.remote, nil
	}
	dctx, cancel := context.WithTimeout(ctx, r.cfg().SSHGrace)
	defer cancel()
	sc := r.cfg().SSH
	if sc.Logger != nil {
		sc.Logger = sc.Logger.With("job", j.ID)
	}
	rm, err := lambda.DialRemote(dctx, sc, j.InstanceID, j.IP)
	if err != nil {
		return nil, err
	}
	r.remote = rm
	return rm, nil
}

// sshFailed decides what an SSH failure means: a changed host key ends the
// job; otherwise the instance is checked, and an instance unreachable for
// longer than the grace period ends the attempt.
func (r *runner) sshFailed(ctx context.Context, j *Job, err error) error {
	r.closeRemote()
	if errors.Is(err, lambda.ErrHostKeyChanged) {
		return Errorf(EINTERNAL, "the instance's SSH host key changed; refusing to talk to it (%v)", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	inst, ierr := r.svc.cloud.GetInstance(ctx, j.InstanceID)
	if lambda.IsNotFound(ierr) || (ierr == nil && (inst.Status == lambda.StatusTerminated || inst.Status == lambda.StatusPreempted)) {
		reason := fmt.Sprintf("instance %s was %s outside cpbot", j.InstanceID, orGone(inst.Status, ierr))
		r.milestone(ctx, j, "instance lost: "+reason)
		_, ferr := r.finish(ctx, j, OutcomeLost, reason, r.foldCost)
		return ferr
	}
	since := j.ReachedAt
	if since.IsZero() {
		since = j.ActiveAt
	}
	if down := r.now().Sub(since); down > r.cfg().SSHGrace {
		return Errorf(EINTERNAL, "instance unreachable over SSH for %s: %v", roundDuration(down), err)
	}
	r.log.Warn("ssh", "err", err)
	return errRetry
}

// prepare sets the instance up, uploads code and data and starts training.
func (r *runner) prepare(ctx context.Context, j *Job) error {
	rm, err := r.dial(ctx, j)
	if err != nil {
		return r.sshFailed(ctx, j, err)
	}
	uctx, touch, cancel := stallGuard(ctx, r.cfg().SSHGrace)
	defer cancel()
	progress := func(int64, int64) { touch() }
	up, err := rm.Upload(uctx, r.cfg().CodeDir, r.jobDir(), progress)
	if err != nil {
		return r.sshFailed(ctx, j, fmt.Errorf("upload code: %w", err))
	}
	if r.cfg().DatasetDir != "" {
		ds, err := rm.Upload(uctx, r.cfg().DatasetDir, path.Join(r.jobDir(), "data"), progress)
		if err != nil {
			return r.sshFailed(ctx, j, fmt.Errorf("upload dataset: %w", err))
		}
		up.Files += ds.Files
		up.FilesSent += ds.FilesSent
		up.Bytes += ds.Bytes
		up.BytesSent += ds.BytesSent
		up.Elapsed += ds.Elapsed
	}
	r.milestone(ctx, j, fmt.Sprintf("uploaded %s in %d files (%s sent, %s/s)",
		byteSize(up.Bytes), up.Files, byteSize(up.BytesSent), byteSize(int64(up.Throughput()))))
	// The setup patches the uploaded main.py, so it runs once per job dir.
	script := SetupScript(SetupOptions{WorkDir: r.jobDir(), GPUs: 1})
	sctx, scancel := context.WithTimeout(ctx, r.cfg().SetupTimeout)
	defer scancel()
	ran, res, err := rm.RunOnce(sctx, path.Join(r.jobDir(), ".cpbot-setup-done"), script)
	if err != nil {
		return r.sshFailed(ctx, j, err)
	}
	if res.ExitStatus != 0 {
		return Errorf(EINTERNAL, "instance setup failed (exit %d): %s", res.ExitStatus, lastLines(string(res.Stdout)+string(res.Stderr), 5))
	}
	if ran {
		r.milestone(ctx, j, "environment ready")
	}
	cmd, err := RenderTrainCommand(r.cfg().TrainCommand, TrainParams{Class: j.Spec.Class, Epochs: j.Spec.Epochs,
		Batch: j.Spec.Batch, LR: j.Spec.LR, DataPath: "data"})
	if err != nil {
		return err
	}
	octx, ocancel := r.shortOp(ctx)
	defer ocancel()
	if _, err := rm.StartDetached(octx, r.jobDir(), r.jobDir(), cmd); err != nil && !errors.Is(err, lambda.ErrAlreadyRunning) {
		return r.sshFailed(ctx, j, fmt.Errorf("start training: %w", err))
	}
	now := r.now()
	nj, err := r.transition(ctx, j, StateTraining, func(x *Job) { x.TrainingAt, x.BusyAt, x.ReachedAt = now, now, now })
	if err == nil {
		r.milestone(ctx, nj, "training started")
	}
	return err
}

// train polls the trainer once: new log lines, liveness, GPU.
func (r *runner) train(ctx context.Context, j *Job) error {
	rm, err := r.dial(ctx, j)
	if err != nil {
		return r.sshFailed(ctx, j, err)
	}
	pctx, cancel := r.shortOp(ctx)
	defer cancel()
	// Status first, then the log: a trainer seen exited has written all
	// of its log, so the tail that follows reads it to the end.
	st, err := rm.TrainStatus(pctx, r.jobDir())
	if err != nil {
		return r.sshFailed(ctx, j, err)
	}
	logPath := path.Join(r.jobDir(), "train.log")
	lines, next, err := rm.Tail(pctx, logPath, j.LogOffset, logChunk)
	if err != nil {
		return r.sshFailed(ctx, j, err)
	}
	gpu, gerr := rm.GPU(pctx)
	now := r.now()

	tr := NewTracker(j.Spec.Epochs)
	tr.P = j.Progress
	if tr.P.Epochs == 0 {
		tr.P.Epochs = j.Spec.Epochs
	}
	for _, l := range lines {
		tr.Feed(l)
	}
	busy := len(lines) > 0
	util := -1.0
	if n, sum := finiteUtil(gpu); gerr == nil && n > 0 {
		util = sum / float64(n)
		busy = util >= idleGPUPercent
	}
	drained := next-j.LogOffset < logChunk
	exited := st.Exited && drained
	nj, err := r.update(ctx, j, func(x *Job) {
		x.LogOffset, x.Progress, x.ReachedAt = next, tr.P, now
		x.LogTail = appendTail(x.LogTail, lines, logTailLines)
		if util >= 0 {
			x.GPUUtil = util
		}
		if busy {
			x.BusyAt = now
		}
		if exited {
			code := st.ExitCode
			x.ExitCode = &code
		}
	})
	if err != nil {
		return err
	}
	r.notifyEpochs(ctx, nj)
	r.recordCost(ctx, nj)
	if exited {
		outcome, reason := OutcomeSucceeded, ""
		if st.ExitCode != 0 {
			outcome, reason = OutcomeFailed, trainerFailure(nj)
		}
		_, err := r.transition(ctx, nj, StateCollecting, func(x *Job) { x.Outcome, x.Reason = outcome, reason })
		return err
	}
	if st.Started && !st.Running && !st.Exited {
		return Errorf(EINTERNAL, "the trainer died without an exit status (killed?)")
	}
	if !drained {
		return nil // more log to read right away
	}
	return errRetry
}

// finiteUtil sums the GPU utilisations that were measured ([N/A] reads as
// NaN and is left out).
func finiteUtil(gpu []lambda.GPUSample) (n int, sum float64) {
	for _, g := range gpu {
		if !math.IsNaN(g.UtilPercent) && !math.IsInf(g.UtilPercent, 0) {
			n++
			sum += g.UtilPercent
		}
	}
	return n, sum
}

func trainerFailure(j *Job) string {
	switch {
	case j.Progress.OOM:
		return "CUDA out of memory: " + j.Progress.Error + " (try a smaller --batch)"
	case j.Progress.Error != "":
		return fmt.Sprintf("trainer exited with code %d: %s", *j.ExitCode, j.Progress.Error)
	default:
		return fmt.Sprintf("trainer exited with code %d", *j.ExitCode)
	}
}

// collect downloads the checkpoints and the log, then moves to terminating.
// An unreachable instance is not a reason to keep it: collect gives up and
// the instance is terminated all the same.
func (r *runner) collect(ctx context.Context, j *Job) error {
	dir := filepath.Join(r.cfg().DataDir, "artifacts", strconv.FormatInt(j.ID, 10))
	artifacts := ""
	if rm, err := r.dial(ctx, j); err != nil {
		r.log.Warn("collect: ssh", "err", err)
		r.milestone(ctx, j, "could not reach the instance to collect checkpoints")
	} else if st, err := r.download(ctx, rm, dir); err != nil {
		r.log.Warn("collect: download", "err", err)
		r.milestone(ctx, j, "downloading the checkpoints failed: "+err.Error())
	} else {
		artifacts = dir
		r.log.Info("collected", "files", st.Files, "bytes", st.Bytes)
	}
	r.closeRemote()
	_, err := r.transition(ctx, j, StateTerminating, func(x *Job) { x.Artifacts = artifacts })
	return err
}

// download fetches the checkpoints and the log within CollectTimeout.
func (r *runner) download(ctx context.Context, rm *lambda.Remote, dir string) (lambda.DownloadStats, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg().CollectTimeout)
	defer cancel()
	return rm.Download(ctx, r.jobDir(), []string{"model/*/*.pkl", "train.log"}, dir)
}

func listCheckpoints(dir string) []string {
	var out []string
	matches, _ := filepath.Glob(filepath.Join(dir, "model", "*", "*.pkl"))
	for _, m := range matches {
		if rel, err := filepath.Rel(dir, m); err == nil {
			out = append(out, rel)
		}
	}
	return out
}

func appendTail(tail, lines []string, n int) []string {
	tail = append(tail, lines...)
	if len(tail) > n {
		tail = append([]string(nil), tail[len(tail)-n:]...)
	}
	return tail
}

func lastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func byteSize(n int64) string {
	const unit = 1 << 10
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
