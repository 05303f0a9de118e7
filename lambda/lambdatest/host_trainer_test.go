package lambdatest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cpbot/cpbot/lambda/lambdatest"
)

const trainCmd = "python3 -u main.py --train True --class_type obj1 --epochs %d --batch_size 8 --lr 0.001 --data_path data"

// detached is how the bot starts training: it survives the SSH session.
func detached(epochs int) string {
	return "setsid nohup sh -c '" + fmt.Sprintf(trainCmd, epochs) +
		"; echo $? > train.exit' > train.log 2>&1 < /dev/null & echo $! > train.pid"
}

func TestHostDetachedTraining(t *testing.T) {
	c := newClient(t)
	h := startHost(t, c, lambdatest.TrainerConfig{ItersPerEpoch: 3, IterSleep: 20 * time.Millisecond})
	prepareCode(t, h.Home())
	cl := dial(t, h, c)
	if r := run(t, cl, detached(12), ""); r.code != 0 {
		t.Fatalf("launch: %+v", r)
	}
	cl.Close()
	pid := readPid(t, filepath.Join(h.Home(), "train.pid"))
	exitFile := filepath.Join(h.Home(), "train.exit")
	if _, err := os.Stat(exitFile); err == nil || !alive(pid) {
		t.Fatalf("training was not running after the connection closed (pid %d)", pid)
	}
	waitFor(t, "train.exit", func() bool { _, err := os.Stat(exitFile); return err == nil })
	if b, _ := os.ReadFile(exitFile); strings.TrimSpace(string(b)) != "0" {
		t.Fatalf("train.exit = %q, want 0", b)
	}
	log, err := os.ReadFile(filepath.Join(h.Home(), "train.log"))
	if err != nil {
		t.Fatal(err)
	}
	epochs := epochLosses(t, string(log))
	if len(epochs) != 12 {
		t.Fatalf("log has %d epoch lines, want 12:\n%s", len(epochs), log)
	}
	if epochs[11] >= epochs[0] {
		t.Errorf("loss did not decrease: epoch 1 %.4f, epoch 12 %.4f", epochs[0], epochs[11])
	}
	if !strings.HasSuffix(string(log), "model class type:obj1:2D- 0.93  ADD-0.71\n") {
		t.Errorf("log does not end with the evaluation line:\n%s", log)
	}
	if got := checkpoints(t, h.Home()); got != "10.pkl 12.pkl" {
		t.Errorf("checkpoints = %q, want 10.pkl 12.pkl", got)
	}
}

// epochLosses returns the loss of each "Epoch: NN, Loss: X" line in order.
func epochLosses(t *testing.T, log string) []float64 {
	t.Helper()
	var losses []float64
	for _, line := range strings.Split(log, "\n") {
		var n int
		var loss float64
		if _, err := fmt.Sscanf(line, "Epoch: %d, Loss: %f", &n, &loss); err == nil {
			losses = append(losses, loss)
		}
	}
	return losses
}

func checkpoints(t *testing.T, home string) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(home, "model", "obj1"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return strings.Join(names, " ")
}

func TestHostResume(t *testing.T) {
	c := newClient(t)
	h := startHost(t, c, lambdatest.TrainerConfig{})
	prepareCode(t, h.Home())
	dir := filepath.Join(h.Home(), "model", "obj1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"10.pkl", "20.pkl", "9.pkl", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := run(t, dial(t, h, c), fmt.Sprintf(trainCmd, 22), "")
	if r.code != 0 {
		t.Fatalf("train: %+v", r)
	}
	lines := strings.Split(r.stdout, "\n")
	if lines[1] != "Load model from model/obj1/20.pkl" {
		t.Fatalf("second line = %q, want the load-model line", lines[1])
	}
	for _, want := range []string{"Epoch: 21, Loss: ", "Epoch: 22, Loss: "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(r.stdout, "Epoch: 20,") || len(epochLosses(t, r.stdout)) != 2 {
		t.Errorf("resumed run did not start at epoch 21:\n%s", r.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "22.pkl")); err != nil || string(b) != "epoch 22\n" {
		t.Errorf("22.pkl = %q, %v", b, err)
	}
}

func TestHostMissingData(t *testing.T) {
	c := newClient(t)
	h := startHost(t, c, lambdatest.TrainerConfig{})
	if err := os.WriteFile(filepath.Join(h.Home(), "main.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, dial(t, h, c), fmt.Sprintf(trainCmd, 5), "")
	if r.code != 1 {
		t.Fatalf("exit = %d, want 1", r.code)
	}
	if !strings.HasPrefix(r.stderr, "Traceback (most recent call last):\n") ||
		!strings.HasSuffix(r.stderr, "\nFileNotFoundError: [Errno 2] No such file or directory: 'data/train/obj1'\n") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
	if strings.Contains(r.stdout, "Epoch:") {
		t.Fatalf("trained without data:\n%s", r.stdout)
	}
}

func TestHostFailingModes(t *testing.T) {
	tests := []struct{ mode, lastLine string }{
		{lambdatest.ModeOOM, "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 39.59 GiB total capacity; "},
		{lambdatest.ModeCrash, "RuntimeError: DataLoader worker (pid(s) "},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			c := newClient(t)
			h := startHost(t, c, lambdatest.TrainerConfig{Mode: tt.mode})
			prepareCode(t, h.Home())
			r := run(t, dial(t, h, c), fmt.Sprintf(trainCmd, 50), "")
			if r.code != 1 {
				t.Fatalf("exit = %d, want 1", r.code)
			}
			if n := len(epochLosses(t, r.stdout)); n != 1 {
				t.Errorf("%d epochs before failing, want 1", n)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if lines[0] != "Traceback (most recent call last):" || !strings.HasPrefix(lines[len(lines)-1], tt.lastLine) {
				t.Errorf("stderr:\n%s", r.stderr)
			}
		})
	}
	t.Run("unknown mode", func(t *testing.T) {
		h := startHost(t, newClient(t), lambdatest.TrainerConfig{})
		if err := h.SetTrainer(lambdatest.TrainerConfig{Mode: "explode"}); err == nil {
			t.Fatal("SetTrainer accepted an unknown mode")
		}
	})
}

const smiQuery = "nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total,power.draw --format=csv,noheader,nounits"

// TestHostNvidiaSMI walks one trainer through idle, busy and hung, and
// checks the mode switch reaches a running trainer.
func TestHostNvidiaSMI(t *testing.T) {
	c := newClient(t)
	h := startHost(t, c, lambdatest.TrainerConfig{ItersPerEpoch: 2, IterSleep: 10 * time.Millisecond})
	prepareCode(t, h.Home())
	cl := dial(t, h, c)
	smi := func() string { return run(t, cl, smiQuery, "").stdout }
	if got := smi(); got != "0, 0, 40960, 55.0\n" {
		t.Fatalf("idle nvidia-smi = %q", got)
	}
	if r := run(t, cl, detached(1000), ""); r.code != 0 {
		t.Fatalf("launch: %+v", r)
	}
	pidFile := filepath.Join(h.Home(), ".sim", "trainer.pid")
	waitFor(t, "trainer.pid", func() bool { b, _ := os.ReadFile(pidFile); return strings.HasSuffix(string(b), "\n") })
	if got := smi(); got != "91, 30512, 40960, 265.3\n" {
		t.Fatalf("busy nvidia-smi = %q", got)
	}
	if got := run(t, cl, "nvidia-smi --query-gpu=utilization.gpu,name --format=csv", "").stdout; got != "utilization.gpu [%], name\n91 %, NVIDIA A100-SXM4-40GB\n" {
		t.Errorf("csv with header and units = %q", got)
	}
	if err := h.SetTrainer(lambdatest.TrainerConfig{ItersPerEpoch: 2, Mode: lambdatest.ModeHang}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "hang marker", func() bool {
		_, err := os.Stat(filepath.Join(h.Home(), ".sim", "trainer.hung"))
		return err == nil
	})
	if got := smi(); got != "0, 30512, 40960, 60.1\n" {
		t.Fatalf("hung nvidia-smi = %q", got)
	}
	pid := readPid(t, pidFile)
	if !alive(pid) {
		t.Fatal("hung trainer is not running")
	}
	if r := run(t, cl, "kill $(cat .sim/trainer.pid)", ""); r.code != 0 {
		t.Fatalf("kill: %+v", r)
	}
	waitFor(t, "trainer exit", func() bool { return !alive(pid) })
	if got := smi(); got != "0, 0, 40960, 55.0\n" {
		t.Fatalf("nvidia-smi after the trainer died = %q", got)
	}
}

func TestHostPip(t *testing.T) {
	c := newClient(t)
	h := startHost(t, c, lambdatest.TrainerConfig{})
	cl := dial(t, h, c)
	if err := os.WriteFile(filepath.Join(h.Home(), "requirements.txt"),
		[]byte("# platform: linux-64\n_libgcc_mutex=0.1=main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cmd, want string
		code      int
	}{
		{"pip install opencv-python-headless tqdm", "Successfully installed opencv-python-headless-4.8.1.78 tqdm-4.66.1\n", 0},
		{"python3 -m pip install tqdm", "Requirement already satisfied: tqdm", 0},
		{"pip3 install torch", "Requirement already satisfied: torch", 0},
		{"pip install -r requirements.txt", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.cmd, func(t *testing.T) {
			r := run(t, cl, tt.cmd, "")
			if r.code != tt.code || !strings.Contains(r.stdout, tt.want) {
				t.Fatalf("%q = %+v; want exit %d and %q", tt.cmd, r, tt.code, tt.want)
			}
		})
	}
	log, err := os.ReadFile(filepath.Join(h.Home(), ".sim", "pip.log"))
	want := "install opencv-python-headless tqdm\ninstall tqdm\ninstall torch\ninstall -r requirements.txt\n"
	if err != nil || string(log) != want {
		t.Fatalf("pip.log = %q, %v; want %q", log, err, want)
	}
}
