package jobs_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cpbot/cpbot/jobs"
)

const fixturePath = "../../shared/reference/contourpose/training_log_obj1.log"

// fixtureLines returns the real training log's lines, line endings kept.
func fixtureLines(tb testing.TB) []string {
	tb.Helper()
	b, err := os.ReadFile(fixturePath)
	if err != nil {
		tb.Fatalf("read fixture: %v", err)
	}
	return strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
}

// feed feeds lines and returns the updates that report something.
func feed(tr *jobs.Tracker, lines []string) []jobs.Update {
	var ups []jobs.Update
	for _, l := range lines {
		if u := tr.Feed(l); u.EpochDone || u.CheckpointLoaded || u.Eval || u.Failure {
			ups = append(ups, u)
		}
	}
	return ups
}

func TestTrackerFixture(t *testing.T) {
	tr := jobs.NewTracker(150)
	var iters int
	var done []jobs.Update
	for _, l := range fixtureLines(t) {
		u := tr.Feed(l)
		if u.Iter {
			iters++
		}
		if u.EpochDone {
			done = append(done, u)
		}
		if u.Failure || u.CheckpointLoaded || u.Eval {
			t.Errorf("unexpected update %+v for %q", u, l)
		}
	}
	p := tr.P
	if iters != 453 {
		t.Errorf("iteration lines = %d, want 453", iters)
	}
	wantLoss := []float64{0.4717, 8.5112, 0.2269}
	wantSecs := []float64{1116.1419277191162, 1109.978624343872, 1119.5778250694275}
	if len(done) != 3 {
		t.Fatalf("epochs done = %d, want 3", len(done))
	}
	for i, u := range done {
		if u.Epoch != i+1 || u.Loss != wantLoss[i] || math.Abs(u.Seconds-wantSecs[i]) > 1e-9 {
			t.Errorf("epoch update %d = %+v, want epoch %d loss %v seconds %v", i, u, i+1, wantLoss[i], wantSecs[i])
		}
	}
	if !slices.Equal(p.LossHistory, wantLoss) || p.HistoryFrom != 0 {
		t.Errorf("LossHistory = %v from %d, want %v from 0", p.LossHistory, p.HistoryFrom, wantLoss)
	}
	mean := (wantSecs[0] + wantSecs[1] + wantSecs[2]) / 3
	if math.Abs(p.EpochSeconds-mean) > 1e-9 || p.TimedEpochs != 3 || p.LastEpochSeconds != wantSecs[2] {
		t.Errorf("EpochSeconds = %v over %d (last %v), want %v over 3 (last %v)", p.EpochSeconds, p.TimedEpochs, p.LastEpochSeconds, mean, wantSecs[2])
	}
	if p.Epoch != 3 || p.Epochs != 150 || p.EpochLoss != 0.2269 || p.IterLoss != 15.898487 {
		t.Errorf("Epoch %d/%d EpochLoss %v IterLoss %v, want 3/150 0.2269 15.898487", p.Epoch, p.Epochs, p.EpochLoss, p.IterLoss)
	}
	if p.Class != "obj1" || p.Device != "cuda" || p.LR != 0.1 || p.ResumedFrom != 0 || p.Error != "" || p.Eval != nil {
		t.Errorf("unexpected progress %+v", p)
	}
	wantETA := time.Duration(147 * mean * float64(time.Second))
	if got := p.ETA(); got != wantETA {
		t.Errorf("ETA = %v, want %v", got, wantETA)
	}
}

const oomTraceback = `Traceback (most recent call last):
  File "/home/ubuntu/contourpose/14/main.py", line 173, in <module>
    main(args)
  File "/home/ubuntu/contourpose/14/main.py", line 137, in main
    loss = train(ContourNet, train_loader, optimizer, device)
  File "/usr/lib/python3/dist-packages/torch/nn/modules/module.py", line 1518, in _wrapped_call_impl
    return self._call_impl(*args, **kwargs)
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.17 GiB. GPU 0 has a total capacity of 39.39 GiB of which 846.94 MiB is free.
`

const sunTraceback = `Traceback (most recent call last):
  File "/home/ubuntu/contourpose/14/main.py", line 137, in main
    loss = train(ContourNet, train_loader, optimizer, device)
  File "/home/ubuntu/contourpose/14/dataset/Dataset.py", line 64, in __getitem__
    bg = cv2.imread(os.path.join(self.bg_dir, random.choice(self.bg_list)))
FileNotFoundError: [Errno 2] No such file or directory: 'data/SUN2012pascalformat/JPEGImages'
`

const chainedTraceback = `Traceback (most recent call last):
  File "/home/ubuntu/contourpose/14/main.py", line 57, in load_network
    net.load_state_dict(pretrained_model['net'], strict=strict)
KeyError: 'net'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/home/ubuntu/contourpose/14/main.py", line 59, in load_network
    net.load_state_dict(pretrained_model, strict=strict)
RuntimeError: Error(s) in loading state_dict for DataParallel:
	Missing key(s) in state_dict: "module.conv1.weight".
`

const workerTraceback = `Traceback (most recent call last):
  File "/home/ubuntu/contourpose/14/main.py", line 18, in train
    for data in dataloader:
RuntimeError: Caught RuntimeError in DataLoader worker process 0.
Original Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/torch/utils/data/_utils/worker.py", line 308, in _worker_loop
    data = fetcher.fetch(index)
RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB
`

func TestTrackerTraceback(t *testing.T) {
	tests := []struct {
		name     string
		log      string
		failures int
		err      string
		oom      bool
		tail     int
	}{
		{"cuda oom", oomTraceback, 1, "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.17 GiB. GPU 0 has a total capacity of 39.39 GiB of which 846.94 MiB is free.", true, 8},
		{"missing SUN2012", sunTraceback, 1, "FileNotFoundError: [Errno 2] No such file or directory: 'data/SUN2012pascalformat/JPEGImages'", false, 6},
		{"chained with message continuation", chainedTraceback, 2, "RuntimeError: Error(s) in loading state_dict for DataParallel:", false, 10},
		{"dataloader worker", workerTraceback, 2, "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB", true, 8},
		{"CRLF", strings.ReplaceAll(sunTraceback, "\n", "\r\n"), 1, "FileNotFoundError: [Errno 2] No such file or directory: 'data/SUN2012pascalformat/JPEGImages'", false, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := jobs.NewTracker(150)
			feed(tr, fixtureLines(t)[:20])
			lines := strings.SplitAfter(strings.TrimSuffix(tt.log, "\n"), "\n")
			ups := feed(tr, lines)
			if len(ups) != tt.failures {
				t.Fatalf("updates = %+v, want %d failures", ups, tt.failures)
			}
			for _, u := range ups {
				if !u.Failure {
					t.Errorf("update %+v is not a failure", u)
				}
			}
			p := tr.P
			if p.Error != tt.err || p.OOM != tt.oom || len(p.ErrorTail) != tt.tail {
				t.Errorf("Error %q OOM %v tail %d, want %q %v %d", p.Error, p.OOM, len(p.ErrorTail), tt.err, tt.oom, tt.tail)
			}
			if len(p.ErrorTail) > 0 && p.ErrorTail[0] != "Traceback (most recent call last):" {
				t.Errorf("ErrorTail[0] = %q", p.ErrorTail[0])
			}
			// ordinary output after the traceback is parsed as usual
			if u := tr.Feed("loss:0.25  heatmap_loss:0.2  contour_loss:0.05\n"); !u.Iter || tr.P.IterLoss != 0.25 || tr.P.Trace != jobs.TraceNone {
				t.Errorf("after traceback: update %+v, IterLoss %v, Trace %v", u, tr.P.IterLoss, tr.P.Trace)
			}
			if tr.P.Error != tt.err {
				t.Errorf("Error after more output = %q, want it kept", tr.P.Error)
			}
		})
	}
}

func TestTrackerTracebackTailBounded(t *testing.T) {
	tr := jobs.NewTracker(10)
	tr.Feed("Traceback (most recent call last):")
	for range 100 {
		tr.Feed(`  File "x.py", line 1, in f`)
	}
	tr.Feed("RecursionError: maximum recursion depth exceeded")
	p := tr.P
	if len(p.ErrorTail) != jobs.MaxErrorTail || p.ErrorTail[len(p.ErrorTail)-1] != "RecursionError: maximum recursion depth exceeded" {
		t.Errorf("ErrorTail has %d lines ending %q", len(p.ErrorTail), p.ErrorTail[len(p.ErrorTail)-1])
	}
	// a second, unrelated traceback starts afresh
	tr.Feed("Traceback (most recent call last):")
	if len(tr.P.ErrorTail) != 1 || tr.P.Error != "" || tr.P.OOM {
		t.Errorf("new traceback kept %d lines, Error %q", len(tr.P.ErrorTail), tr.P.Error)
	}
}

func TestTrackerFork(t *testing.T) {
	log := []string{
		"🔄 Epoch 21/40 - obj2",
		"----------------------------------------",
		"📚 Learning rate: 0.000500",
		"Epoch 21/40 [20/200] Loss: 0.300000 (H: 0.250000, C: 0.050000) ETA: 9.0min",
		"Epoch 21/40 [40/200] Loss: 0.280000 (H: 0.240000, C: 0.040000) ETA: 8.0min",
		"Epoch 21 completed in 10.5min - Avg Loss: 0.290000 (H: 0.245000, C: 0.045000)",
		"💾 Saving checkpoint at epoch 21",
		"🔄 Epoch 22/40 - obj2",
		"Epoch 22/40 [20/200] Loss: 0.270000 (H: 0.230000, C: 0.040000) ETA: 0:09:00",
	}
	tr := jobs.NewTracker(150)
	tr.Feed("Successfully loaded model from epoch 20")
	if tr.P.ResumedFrom != 20 || tr.P.Epoch != 20 {
		t.Fatalf("after resume: %+v", tr.P)
	}
	for i, line := range log {
		u := tr.Feed(line)
		p := tr.P
		switch i {
		case 0:
			if p.Class != "obj2" || p.Epochs != 40 {
				t.Errorf("header: class %q epochs %d", p.Class, p.Epochs)
			}
		case 3:
			// 9 minutes left after 20 of 200 iterations: the epoch takes 10 minutes
			if !u.Iter || p.Iter != 20 || p.Iters != 200 || math.Abs(p.EpochSeconds-600) > 1e-6 || p.TimedEpochs != 0 {
				t.Errorf("first iteration: %+v, EpochSeconds %v", u, p.EpochSeconds)
			}
		case 5:
			if !u.EpochDone || u.Epoch != 21 || u.Loss != 0.29 || u.Seconds != 630 || p.EpochSeconds != 630 {
				t.Errorf("epoch done: %+v, EpochSeconds %v", u, p.EpochSeconds)
			}
		case 8:
			// a measured epoch beats the ETA estimate
			if p.EpochSeconds != 630 || p.IterLoss != 0.27 || p.Iter != 20 {
				t.Errorf("second epoch: EpochSeconds %v IterLoss %v", p.EpochSeconds, p.IterLoss)
			}
		}
	}
	p := tr.P
	if p.LR != 0.0005 || p.Epoch != 21 || p.HistoryFrom != 20 || !slices.Equal(p.LossHistory, []float64{0.29}) {
		t.Errorf("final progress %+v", p)
	}
	if got, want := p.ETA(), 19*630*time.Second; got != want {
		t.Errorf("ETA = %v, want %v", got, want)
	}
}

func TestTrackerResume(t *testing.T) {
	epoch := func(n int, loss string) string { return fmt.Sprintf("Epoch: %02d, Loss: %s\n", n, loss) }
	tr := jobs.NewTracker(25)
	if u := tr.Feed("Load model: /home/ubuntu/contourpose/3/model/obj1/20.pkl\n"); !u.CheckpointLoaded || u.Epoch != 20 {
		t.Fatalf("load update %+v", u)
	}
	feed(tr, []string{"current class:obj1", epoch(21, "0.5"), epoch(22, "0.4"), epoch(23, "0.3")})
	if p := tr.P; p.Epoch != 23 || p.HistoryFrom != 20 || !slices.Equal(p.LossHistory, []float64{0.5, 0.4, 0.3}) || p.ResumedFrom != 20 {
		t.Fatalf("after resumed epochs: %+v", p)
	}
	// the training process restarts from checkpoint 22, then from 20: epochs are printed anew
	snapshot := tr.P
	feed(tr, []string{"Load model: model/obj1/22.pkl", epoch(23, "0.9")})
	if !slices.Equal(snapshot.LossHistory, []float64{0.5, 0.4, 0.3}) || !slices.Equal(tr.P.LossHistory, []float64{0.5, 0.4, 0.9}) {
		t.Fatalf("after restart from 22: snapshot %v, now %v", snapshot.LossHistory, tr.P.LossHistory)
	}
	tr.Feed("Load model: model/obj1/20.pkl")
	if p := tr.P; p.Epoch != 20 || p.LossHistory != nil || p.HistoryFrom != 20 {
		t.Fatalf("after second resume: %+v", p)
	}
	feed(tr, []string{epoch(21, "0.45"), epoch(22, "nan"), epoch(24, "0.2"), epoch(25, "0.1")})
	p := tr.P
	if want := []float64{0.45, math.NaN(), math.NaN(), 0.2, 0.1}; !slices.EqualFunc(p.LossHistory, want, sameFloat) {
		t.Errorf("LossHistory = %v, want %v", p.LossHistory, want)
	}
	// evaluation loads the last checkpoint: not a resume
	ups := feed(tr, []string{"Load model: model/obj1/25.pkl", "model class type:obj1:2D- 0.93  ADD-0.71"})
	if len(ups) != 1 || !ups[0].Eval || tr.P.ResumedFrom != 20 || tr.P.Epoch != 25 {
		t.Errorf("eval updates %+v, progress %+v", ups, tr.P)
	}
	if e := tr.P.Eval; e == nil || *e != (jobs.EvalMetrics{Class: "obj1", Metric2D: 0.93, ADD: 0.71}) {
		t.Errorf("Eval = %+v", e)
	}
	if tr.P.ETA() != 0 || !tr.P.Done() {
		t.Errorf("finished run: ETA %v, Done %v", tr.P.ETA(), tr.P.Done())
	}
}

func TestProgressETA(t *testing.T) {
	tests := []struct {
		name string
		p    jobs.Progress
		want time.Duration
	}{
		{"no timing", jobs.Progress{Epoch: 1, Epochs: 10}, 0},
		{"timed", jobs.Progress{Epoch: 3, Epochs: 150, EpochSeconds: 250}, 147 * 250 * time.Second},
		{"done", jobs.Progress{Epoch: 10, Epochs: 10, EpochSeconds: 250}, 0},
		{"past the end", jobs.Progress{Epoch: 12, Epochs: 10, EpochSeconds: 250}, 0},
		{"unknown total", jobs.Progress{Epoch: 3, EpochSeconds: 250}, 0},
		{"nan timing", jobs.Progress{Epoch: 3, Epochs: 10, EpochSeconds: math.NaN()}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.ETA(); got != tt.want {
				t.Errorf("ETA() = %v, want %v", got, tt.want)
			}
		})
	}
}

// fullProgress sets every field of Progress.
func fullProgress() jobs.Progress {
	return jobs.Progress{
		Class: "obj1", Device: "cuda", Epoch: 3, Epochs: 150, Iter: 40, Iters: 230,
		EpochLoss: 0.2269, IterLoss: 15.898487, LR: 0.1,
		EpochSeconds: 1115.232792377472, LastEpochSeconds: 1119.5778250694275, TimedEpochs: 3,
		LossHistory: []float64{0.4717, 8.5112, 0.2269}, HistoryFrom: 2, ResumedFrom: 2,
		Eval:  &jobs.EvalMetrics{Class: "obj1", Metric2D: 0.93, ADD: 0.71},
		Error: "RuntimeError: CUDA out of memory.", OOM: true,
		ErrorTail: []string{"Traceback (most recent call last):", "RuntimeError: CUDA out of memory."},
		Trace:     jobs.TraceMessage,
	}
}

func TestProgressJSON(t *testing.T) {
	t.Run("every field", func(t *testing.T) {
		p := fullProgress()
		v := reflect.ValueOf(p)
		for i := range v.NumField() {
			if v.Field(i).IsZero() {
				t.Fatalf("fullProgress leaves %s zero: set it so its round trip is tested", v.Type().Field(i).Name)
			}
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var got jobs.Progress
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("round trip:\n got %+v\nwant %+v\njson %s", got, p, b)
		}
	})
	t.Run("nan and inf", func(t *testing.T) {
		p := jobs.Progress{EpochLoss: math.NaN(), IterLoss: math.Inf(1), LR: math.Inf(-1), LossHistory: []float64{math.NaN(), 1},
			Eval: &jobs.EvalMetrics{Metric2D: math.NaN(), ADD: math.NaN()}}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var got jobs.Progress
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if !math.IsNaN(got.EpochLoss) || !math.IsInf(got.IterLoss, 1) || !math.IsInf(got.LR, -1) ||
			!math.IsNaN(got.LossHistory[0]) || got.LossHistory[1] != 1 || !math.IsNaN(got.Eval.ADD) {
			t.Errorf("round trip of %s = %+v", b, got)
		}
	})
	t.Run("zero", func(t *testing.T) {
		var got jobs.Progress
		if err := json.Unmarshal([]byte(`{"epoch_loss":null}`), &got); err != nil || !reflect.DeepEqual(got, jobs.Progress{}) {
			t.Errorf("decode of zero progress = %+v, %v", got, err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		var got jobs.Progress
		if err := json.Unmarshal([]byte(`{"epoch_loss":"lots"}`), &got); err == nil {
			t.Errorf("decode of a bad number succeeded: %+v", got)
		}
	})
}

// TestTrackerResumeFromJSON stores the tracker after every line, as the runner
// does, and checks that resuming from the stored value ends exactly where
// feeding straight through ends.
func TestTrackerResumeFromJSON(t *testing.T) {
	lines := fixtureLines(t)
	lines = append(lines, "Epoch: 04, Loss: nan\n", "Time cost:1000\n")
	lines = append(lines, strings.SplitAfter(chainedTraceback, "\n")...)
	lines = append(lines, strings.SplitAfter(workerTraceback, "\n")...)

	straight := jobs.NewTracker(150)
	wantUps := feed(straight, lines)
	want, err := json.Marshal(straight.P)
	if err != nil {
		t.Fatal(err)
	}
	for cut := range len(lines) + 1 {
		first := jobs.NewTracker(150)
		ups := feed(first, lines[:cut])
		b, err := json.Marshal(first.P)
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		var second jobs.Tracker
		if err := json.Unmarshal(b, &second.P); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		ups = append(ups, feed(&second, lines[cut:])...)
		got, err := json.Marshal(second.P)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("cut at line %d %q:\n got %s\nwant %s", cut, lines[min(cut, len(lines)-1)], got, want)
		}
		if len(ups) != len(wantUps) {
			t.Fatalf("cut at line %d: %d updates, want %d", cut, len(ups), len(wantUps))
		}
	}
	if len(wantUps) != 4+4 || !straight.P.OOM || !math.IsNaN(straight.P.EpochLoss) {
		t.Errorf("straight run: %d updates, progress %+v", len(wantUps), straight.P)
	}
}
