package jobs_test

import (
	"math"
	"testing"
	"time"

	"github.com/cpbot/cpbot/jobs"
)

// sameLine compares two Lines field by field, NaN equal to NaN.
func sameLine(t *testing.T, got, want jobs.Line) {
	t.Helper()
	if got.Kind != want.Kind || got.Text != want.Text || got.Indented != want.Indented ||
		got.Epoch != want.Epoch || got.Epochs != want.Epochs || got.Iter != want.Iter || got.Iters != want.Iters ||
		!sameFloat(got.Loss, want.Loss) || !sameFloat(got.HeatmapLoss, want.HeatmapLoss) ||
		!sameFloat(got.ContourLoss, want.ContourLoss) || !sameFloat(got.Seconds, want.Seconds) ||
		!sameFloat(got.LR, want.LR) || got.ETA != want.ETA || got.Class != want.Class ||
		got.Device != want.Device || got.Checkpoint != want.Checkpoint ||
		!sameFloat(got.Metric2D, want.Metric2D) || !sameFloat(got.ADD, want.ADD) || got.OOM != want.OOM {
		t.Errorf("ParseLine:\n got %+v\nwant %+v", got, want)
	}
}

func sameFloat(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b)) || math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b))
}

func TestParseLine(t *testing.T) {
	iter := "loss:0.512825  heatmap_loss:0.451616  contour_loss:0.061210"
	tests := []struct {
		name string
		in   string
		want jobs.Line
	}{
		{"iteration", iter, jobs.Line{Kind: jobs.LineIter, Text: iter, Loss: 0.512825, HeatmapLoss: 0.451616, ContourLoss: 0.061210}},
		{"iteration LF", iter + "\n", jobs.Line{Kind: jobs.LineIter, Text: iter, Loss: 0.512825, HeatmapLoss: 0.451616, ContourLoss: 0.061210}},
		{"iteration CRLF and trailing spaces", iter + "  \t\r\n", jobs.Line{Kind: jobs.LineIter, Text: iter, Loss: 0.512825, HeatmapLoss: 0.451616, ContourLoss: 0.061210}},
		{"iteration spike", "loss:1419.438965  heatmap_loss:1419.307373  contour_loss:0.131604",
			jobs.Line{Kind: jobs.LineIter, Text: "loss:1419.438965  heatmap_loss:1419.307373  contour_loss:0.131604", Loss: 1419.438965, HeatmapLoss: 1419.307373, ContourLoss: 0.131604}},
		{"iteration scientific", "loss:1.5e-05  heatmap_loss:1E-05  contour_loss:5.000000e-06",
			jobs.Line{Kind: jobs.LineIter, Text: "loss:1.5e-05  heatmap_loss:1E-05  contour_loss:5.000000e-06", Loss: 1.5e-5, HeatmapLoss: 1e-5, ContourLoss: 5e-6}},
		{"iteration nan", "loss:nan  heatmap_loss:nan  contour_loss:0.061210",
			jobs.Line{Kind: jobs.LineIter, Text: "loss:nan  heatmap_loss:nan  contour_loss:0.061210", Loss: math.NaN(), HeatmapLoss: math.NaN(), ContourLoss: 0.06121}},
		{"iteration inf", "loss:inf  heatmap_loss:inf  contour_loss:0.1",
			jobs.Line{Kind: jobs.LineIter, Text: "loss:inf  heatmap_loss:inf  contour_loss:0.1", Loss: math.Inf(1), HeatmapLoss: math.Inf(1), ContourLoss: 0.1}},
		{"iteration single spaces", "loss:0.5 heatmap_loss:0.4 contour_loss:0.1",
			jobs.Line{Kind: jobs.LineIter, Text: "loss:0.5 heatmap_loss:0.4 contour_loss:0.1", Loss: 0.5, HeatmapLoss: 0.4, ContourLoss: 0.1}},
		{"iteration garbage", "loss:abc  heatmap_loss:0.4", jobs.Line{Kind: jobs.LineOther, Text: "loss:abc  heatmap_loss:0.4"}},
		{"class", "current class:obj1", jobs.Line{Kind: jobs.LineClass, Text: "current class:obj1", Class: "obj1"}},
		{"class empty", "current class:", jobs.Line{Kind: jobs.LineOther, Text: "current class:"}},
		{"time cost", "Time cost:1116.1419277191162\r\n", jobs.Line{Kind: jobs.LineTimeCost, Text: "Time cost:1116.1419277191162", Seconds: 1116.1419277191162}},
		{"lr", "LR:0.1", jobs.Line{Kind: jobs.LineLR, Text: "LR:0.1", LR: 0.1}},
		{"lr scientific", "LR:6.25e-05", jobs.Line{Kind: jobs.LineLR, Text: "LR:6.25e-05", LR: 6.25e-5}},
		{"epoch", "Epoch: 01, Loss: 0.4717", jobs.Line{Kind: jobs.LineEpoch, Text: "Epoch: 01, Loss: 0.4717", Epoch: 1, Loss: 0.4717}},
		{"epoch three digits", "Epoch: 150, Loss: 0.0412  ", jobs.Line{Kind: jobs.LineEpoch, Text: "Epoch: 150, Loss: 0.0412", Epoch: 150, Loss: 0.0412}},
		{"epoch nan", "Epoch: 07, Loss: nan", jobs.Line{Kind: jobs.LineEpoch, Text: "Epoch: 07, Loss: nan", Epoch: 7, Loss: math.NaN()}},
		{"epoch no loss", "Epoch: 07", jobs.Line{Kind: jobs.LineOther, Text: "Epoch: 07"}},
		{"load model", "Load model: /home/ubuntu/contourpose/14/model/obj1/20.pkl",
			jobs.Line{Kind: jobs.LineCheckpoint, Text: "Load model: /home/ubuntu/contourpose/14/model/obj1/20.pkl", Epoch: 20, Checkpoint: "/home/ubuntu/contourpose/14/model/obj1/20.pkl"}},
		{"load model odd name", "Load model: model/obj1/best.pkl",
			jobs.Line{Kind: jobs.LineCheckpoint, Text: "Load model: model/obj1/best.pkl", Checkpoint: "model/obj1/best.pkl"}},
		{"device", "using cuda device", jobs.Line{Kind: jobs.LineDevice, Text: "using cuda device", Device: "cuda"}},
		{"device cpu", "using cpu device\r\n", jobs.Line{Kind: jobs.LineDevice, Text: "using cpu device", Device: "cpu"}},
		{"device mps", "using mps device (Metal GPU acceleration)", jobs.Line{Kind: jobs.LineDevice, Text: "using mps device (Metal GPU acceleration)", Device: "mps"}},
		{"eval", "model class type:obj1:2D- 0.93  ADD-0.71",
			jobs.Line{Kind: jobs.LineEval, Text: "model class type:obj1:2D- 0.93  ADD-0.71", Class: "obj1", Metric2D: 0.93, ADD: 0.71}},
		{"eval numpy floats", "model class type:obj13:2D- 0.9487179487179487  ADD-0.7115384615384616",
			jobs.Line{Kind: jobs.LineEval, Text: "model class type:obj13:2D- 0.9487179487179487  ADD-0.7115384615384616", Class: "obj13", Metric2D: 0.9487179487179487, ADD: 0.7115384615384616}},
		{"eval after tqdm bar", "val:  99%|#########9| 99/100 [00:10<00:00]\r                          \rmodel class type:obj1:2D- nan  ADD-nan\n",
			jobs.Line{Kind: jobs.LineEval, Text: "model class type:obj1:2D- nan  ADD-nan", Class: "obj1", Metric2D: math.NaN(), ADD: math.NaN()}},
		{"eval without ADD", "model class type:obj1:2D- 0.93", jobs.Line{Kind: jobs.LineOther, Text: "model class type:obj1:2D- 0.93"}},
		{"traceback", "Traceback (most recent call last):", jobs.Line{Kind: jobs.LineTraceback, Text: "Traceback (most recent call last):"}},
		{"frame", `  File "/home/ubuntu/contourpose/main.py", line 126, in main`,
			jobs.Line{Kind: jobs.LineOther, Indented: true, Text: `File "/home/ubuntu/contourpose/main.py", line 126, in main`}},
		{"oom", "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB",
			jobs.Line{Kind: jobs.LineError, Text: "torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB", OOM: true}},
		{"oom old torch", "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.69 GiB total capacity)",
			jobs.Line{Kind: jobs.LineError, Text: "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 23.69 GiB total capacity)", OOM: true}},
		{"error", "AssertionError: Invalid device id", jobs.Line{Kind: jobs.LineError, Text: "AssertionError: Invalid device id"}},
		{"bare error", "KeyboardInterrupt", jobs.Line{Kind: jobs.LineError, Text: "KeyboardInterrupt"}},
		{"lowercase module error", "cv2.error: OpenCV(4.8.0) error: (-215:Assertion failed)", jobs.Line{Kind: jobs.LineError, Text: "cv2.error: OpenCV(4.8.0) error: (-215:Assertion failed)"}},
		{"not an error", "Error loading model: boom", jobs.Line{Kind: jobs.LineOther, Text: "Error loading model: boom"}},
		{"blank", "", jobs.Line{Kind: jobs.LineBlank}},
		{"blank CRLF", " \t\r\n", jobs.Line{Kind: jobs.LineBlank}},
		{"other", "hello world", jobs.Line{Kind: jobs.LineOther, Text: "hello world"}},
		{"warning", "/usr/lib/python3/dist-packages/torchvision/models/_utils.py:208: UserWarning: The parameter 'pretrained' is deprecated",
			jobs.Line{Kind: jobs.LineOther, Text: "/usr/lib/python3/dist-packages/torchvision/models/_utils.py:208: UserWarning: The parameter 'pretrained' is deprecated"}},

		// the Lambda fork (alanli-ML/ContourPose_Metal, lambda-labs-setup/main_lambda.py)
		{"fork iteration", "Epoch 3/150 [100/230] Loss: 0.226900 (H: 0.200000, C: 0.026900) ETA: 12.3min",
			jobs.Line{Kind: jobs.LineIter, Text: "Epoch 3/150 [100/230] Loss: 0.226900 (H: 0.200000, C: 0.026900) ETA: 12.3min",
				Epoch: 3, Epochs: 150, Iter: 100, Iters: 230, Loss: 0.2269, HeatmapLoss: 0.2, ContourLoss: 0.0269, ETA: 738 * time.Second}},
		{"fork iteration h:mm:ss", "Epoch 3/150 [100/230] Loss: 0.2269 ETA: 0:12:34",
			jobs.Line{Kind: jobs.LineIter, Text: "Epoch 3/150 [100/230] Loss: 0.2269 ETA: 0:12:34", Epoch: 3, Epochs: 150, Iter: 100, Iters: 230, Loss: 0.2269, ETA: 754 * time.Second}},
		{"fork iteration m:ss", "Epoch 3/150 [100/230] Loss: 0.2269 ETA: 12:34",
			jobs.Line{Kind: jobs.LineIter, Text: "Epoch 3/150 [100/230] Loss: 0.2269 ETA: 12:34", Epoch: 3, Epochs: 150, Iter: 100, Iters: 230, Loss: 0.2269, ETA: 754 * time.Second}},
		{"fork iteration seconds", "Epoch 3/150 [100/230] Loss: 0.2269 ETA: 754s",
			jobs.Line{Kind: jobs.LineIter, Text: "Epoch 3/150 [100/230] Loss: 0.2269 ETA: 754s", Epoch: 3, Epochs: 150, Iter: 100, Iters: 230, Loss: 0.2269, ETA: 754 * time.Second}},
		{"fork iteration bare seconds", "Epoch 3/150 [100/230] Loss: 0.2269 ETA: 754",
			jobs.Line{Kind: jobs.LineIter, Text: "Epoch 3/150 [100/230] Loss: 0.2269 ETA: 754", Epoch: 3, Epochs: 150, Iter: 100, Iters: 230, Loss: 0.2269, ETA: 754 * time.Second}},
		{"fork iteration go duration", "Epoch 3/150 [100/230] Loss: 0.2269 ETA: 12m34s",
			jobs.Line{Kind: jobs.LineIter, Text: "Epoch 3/150 [100/230] Loss: 0.2269 ETA: 12m34s", Epoch: 3, Epochs: 150, Iter: 100, Iters: 230, Loss: 0.2269, ETA: 754 * time.Second}},
		{"fork iteration no ETA", "Epoch 3/150 [100/230] Loss: 0.2269",
			jobs.Line{Kind: jobs.LineIter, Text: "Epoch 3/150 [100/230] Loss: 0.2269", Epoch: 3, Epochs: 150, Iter: 100, Iters: 230, Loss: 0.2269}},
		{"fork iteration bad ETA", "Epoch 3/150 [100/230] Loss: 0.2269 ETA: soon", jobs.Line{Kind: jobs.LineOther, Text: "Epoch 3/150 [100/230] Loss: 0.2269 ETA: soon"}},
		{"fork epoch done", "Epoch 3 completed in 18.5min - Avg Loss: 0.226900 (H: 0.200000, C: 0.026900)",
			jobs.Line{Kind: jobs.LineEpoch, Text: "Epoch 3 completed in 18.5min - Avg Loss: 0.226900 (H: 0.200000, C: 0.026900)", Epoch: 3, Seconds: 1110, Loss: 0.2269}},
		{"fork epoch header", "🔄 Epoch 3/150 - obj1", jobs.Line{Kind: jobs.LineClass, Text: "🔄 Epoch 3/150 - obj1", Epoch: 3, Epochs: 150, Class: "obj1"}},
		{"fork learning rate", "📚 Learning rate: 0.001000", jobs.Line{Kind: jobs.LineLR, Text: "📚 Learning rate: 0.001000", LR: 0.001}},
		{"fork checkpoint", "Successfully loaded model from epoch 20", jobs.Line{Kind: jobs.LineCheckpoint, Text: "Successfully loaded model from epoch 20", Epoch: 20}},
		{"fork loading is not loaded", "Loading model from: /x/model/obj1/20.pkl", jobs.Line{Kind: jobs.LineOther, Text: "Loading model from: /x/model/obj1/20.pkl"}},
		{"epoch word only", "Epoch of doom", jobs.Line{Kind: jobs.LineOther, Text: "Epoch of doom"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sameLine(t, jobs.ParseLine(tt.in), tt.want)
		})
	}
}

func TestLineKindString(t *testing.T) {
	tests := []struct {
		kind jobs.LineKind
		want string
	}{
		{jobs.LineOther, "other"},
		{jobs.LineIter, "iter"},
		{jobs.LineTimeCost, "time-cost"},
		{jobs.LineError, "error"},
		{jobs.LineKind(200), "kind(200)"},
	}
	for _, tt := range tests {
		if got := tt.kind.String(); got != tt.want {
			t.Errorf("LineKind(%d).String() = %q, want %q", tt.kind, got, tt.want)
		}
	}
}

func TestParseLineAllocations(t *testing.T) {
	lines := []string{
		"loss:0.512825  heatmap_loss:0.451616  contour_loss:0.061210\n",
		"Epoch 3/150 [100/230] Loss: 0.226900 (H: 0.200000, C: 0.026900) ETA: 12.3min",
		"Time cost:1116.1419277191162",
		"Epoch: 01, Loss: 0.4717",
		"current class:obj1",
	}
	for _, line := range lines {
		if n := testing.AllocsPerRun(100, func() { jobs.ParseLine(line) }); n != 0 {
			t.Errorf("ParseLine(%q) allocates %v times, want 0", line, n)
		}
	}
}
