package lambda_test

import (
	"math"
	"testing"

	"github.com/cpbot/cpbot/lambda"
)

func TestParseGPUSamples(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name    string
		out     string
		want    []lambda.GPUSample
		wantErr bool
	}{
		{"empty", "", nil, false},
		{"one a100", "91, 30542, 40960, 312.45\n", []lambda.GPUSample{
			{Index: 0, UtilPercent: 91, MemUsedMiB: 30542, MemTotalMiB: 40960, PowerW: 312.45},
		}, false},
		{"two gpus, blank lines", "\n0, 0, 81559, 61.2\n100, 80000, 81559, 699.9\n\n", []lambda.GPUSample{
			{Index: 0, UtilPercent: 0, MemUsedMiB: 0, MemTotalMiB: 81559, PowerW: 61.2},
			{Index: 1, UtilPercent: 100, MemUsedMiB: 80000, MemTotalMiB: 81559, PowerW: 699.9},
		}, false},
		{"not available fields", "[N/A], 1024, 24576, [Not Supported]\n", []lambda.GPUSample{
			{Index: 0, UtilPercent: nan, MemUsedMiB: 1024, MemTotalMiB: 24576, PowerW: nan},
		}, false},
		{"crlf and units", "45 %, 100 MiB, 200 MiB, 70.5 W\r\n", []lambda.GPUSample{
			{Index: 0, UtilPercent: 45, MemUsedMiB: 100, MemTotalMiB: 200, PowerW: 70.5},
		}, false},
		{"too few fields", "45, 100, 200\n", nil, true},
		{"garbage", "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n", nil, true},
		{"bad number", "x, 1, 2, 3\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lambda.ParseGPUSamples(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, wantErr %v", err, tt.wantErr)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d samples %+v, want %d", len(got), got, len(tt.want))
			}
			for i := range got {
				if !sameSample(got[i], tt.want[i]) {
					t.Errorf("sample %d: %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func sameSample(a, b lambda.GPUSample) bool {
	eq := func(x, y float64) bool { return x == y || math.IsNaN(x) && math.IsNaN(y) }
	return a.Index == b.Index && eq(a.UtilPercent, b.UtilPercent) && eq(a.MemUsedMiB, b.MemUsedMiB) &&
		eq(a.MemTotalMiB, b.MemTotalMiB) && eq(a.PowerW, b.PowerW)
}

func TestRemoteGPU(t *testing.T) {
	e := newRemoteEnv(t) // its sshd puts a stand-in nvidia-smi on PATH
	got, err := e.remote.GPU(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []lambda.GPUSample{
		{Index: 0, UtilPercent: 87, MemUsedMiB: 30542, MemTotalMiB: 40960, PowerW: 301.5},
		{Index: 1, UtilPercent: 0, MemUsedMiB: 3, MemTotalMiB: 40960, PowerW: math.NaN()},
	}
	if len(got) != len(want) || !sameSample(got[0], want[0]) || !sameSample(got[1], want[1]) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
