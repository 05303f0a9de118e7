package lambdatest

import (
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Trainer modes for TrainerConfig.Mode.
const (
	// ModeNormal trains to the last epoch and evaluates.
	ModeNormal = "normal"
	// ModeOOM ends the run after an epoch with a CUDA out-of-memory
	// traceback and exit status 1.
	ModeOOM = "oom"
	// ModeHang stops printing after an epoch and sleeps forever, like a
	// stalled training loop; nvidia-smi then shows an idle GPU.
	ModeHang = "hang"
	// ModeCrash ends the run after an epoch with a Python traceback and
	// exit status 1.
	ModeCrash = "crash"
)

// TrainerConfig sets the pace and behaviour of the stand-in trainer. The
// trainer reads it when it starts and again after every epoch, so a change
// through SetTrainer affects a running trainer from its next epoch.
//
// A Host's PATH starts with stand-ins written from embedded POSIX scripts:
//
//   - python3 (and python) run "main.py" with ContourPose's flags as the
//     trainer: "using cuda device", then per epoch "current class:<c>",
//     ItersPerEpoch lines "loss:%.6f  heatmap_loss:%.6f  contour_loss:%.6f"
//     (two spaces between fields),
//     "Time cost:<s>", "LR:0.1", "Epoch: %02d, Loss: %.4f" (losses fall with
//     the epoch), and, unless --eval is "", "model class type:<c>:2D- 0.93
//     ADD-0.71" at the end. It writes model/<c>/<n>.pkl every 10 epochs and
//     at the last one, before the epoch's "Epoch:" line. It resumes from the
//     highest model/<c>/<n>.pkl, printing "Load model from model/<c>/<n>.pkl"
//     after "using cuda device", at epoch n+1. Without <data_path>/train/<c>
//     it prints a traceback ending "FileNotFoundError: [Errno 2] No such
//     file or directory: '<data_path>/train/<c>'" and exits 1. A missing
//     script fails as python does (exit 2); other scripts and "-c" code
//     succeed quietly, except that "-c" code asking
//     torch.cuda.is_available() prints True; "-m pip" is pip.
//     While training, <home>/.sim/trainer.pid holds its pid.
//   - pip and pip3 log each argument list as a line of <home>/.sim/pip.log
//     and report "Successfully installed …" or "Requirement already
//     satisfied: …"; a conda export passed with -r fails as with real pip.
//   - nvidia-smi answers --query-gpu for one A100 40GB: with
//     --format=csv,noheader,nounits and utilization.gpu, memory.used,
//     memory.total, power.draw it prints "91, 30512, 40960, 265.3" while a
//     trainer runs, "0, 30512, 40960, 60.1" while it hangs and
//     "0, 0, 40960, 55.0" otherwise.
type TrainerConfig struct {
	// ItersPerEpoch is the number of loss lines per epoch; zero means 3.
	ItersPerEpoch int
	// IterSleep is the pause after each loss line; zero means none.
	IterSleep time.Duration
	// Mode is one of ModeNormal (the default when empty), ModeOOM,
	// ModeHang or ModeCrash.
	Mode string
}

//go:embed scripts/python3 scripts/pip scripts/nvidia-smi
var scriptFS embed.FS

// stand-in programs: sandbox name → embedded script.
var standIns = map[string]string{
	"python3":    "scripts/python3",
	"python":     "scripts/python3",
	"pip":        "scripts/pip",
	"pip3":       "scripts/pip",
	"nvidia-smi": "scripts/nvidia-smi",
}

// installSandbox creates the home and bin directories, writes the stand-ins
// and the trainer control file.
func (h *Host) installSandbox(tc TrainerConfig) error {
	for _, dir := range []string{h.home, h.bin, filepath.Join(h.home, ".sim")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	for name, src := range standIns {
		body, err := scriptFS.ReadFile(src)
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if err := writeFileAtomic(filepath.Join(h.bin, name), body, 0o755); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
	}
	return h.SetTrainer(tc)
}

// SetTrainer writes the trainer control file <home>/.sim/trainer.env.
// It fails on an unknown mode or a negative pace.
func (h *Host) SetTrainer(tc TrainerConfig) error {
	if tc.Mode == "" {
		tc.Mode = ModeNormal
	}
	switch tc.Mode {
	case ModeNormal, ModeOOM, ModeHang, ModeCrash:
	default:
		return fmt.Errorf("set trainer: unknown mode %q", tc.Mode)
	}
	if tc.ItersPerEpoch < 0 || tc.IterSleep < 0 {
		return fmt.Errorf("set trainer: negative pace %d iterations, %v", tc.ItersPerEpoch, tc.IterSleep)
	}
	if tc.ItersPerEpoch == 0 {
		tc.ItersPerEpoch = 3
	}
	body := fmt.Sprintf("SIM_ITERS_PER_EPOCH=%d\nSIM_ITER_SLEEP=%s\nSIM_MODE=%s\n",
		tc.ItersPerEpoch, strconv.FormatFloat(tc.IterSleep.Seconds(), 'f', -1, 64), tc.Mode)
	path := filepath.Join(h.home, ".sim", "trainer.env")
	if err := writeFileAtomic(path, []byte(body), 0o644); err != nil {
		return fmt.Errorf("set trainer: %w", err)
	}
	return nil
}

// writeFileAtomic writes a file through a temporary sibling and a rename,
// so a concurrent reader sees the old or the new content, never a part.
func writeFileAtomic(path string, body []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, body, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
