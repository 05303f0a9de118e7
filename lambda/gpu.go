package lambda

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// GPUQuery is the nvidia-smi command GPU runs; ParseGPUSamples reads its output.
const GPUQuery = "nvidia-smi --query-gpu=utilization.gpu,memory.used,memory.total,power.draw --format=csv,noheader,nounits"

// GPUSample is one GPU's figures at one moment. A figure nvidia-smi reports
// as "[N/A]" or "[Not Supported]" is NaN.
type GPUSample struct {
	Index       int // position in nvidia-smi's output
	UtilPercent float64
	MemUsedMiB  float64
	MemTotalMiB float64
	PowerW      float64
}

// GPU samples every GPU of the instance with nvidia-smi.
func (r *Remote) GPU(ctx context.Context) ([]GPUSample, error) {
	res, err := r.Exec(ctx, GPUQuery)
	if err != nil {
		return nil, fmt.Errorf("gpu sample: %w", err)
	}
	if res.ExitStatus != 0 {
		return nil, fmt.Errorf("gpu sample: nvidia-smi exit %d: %s", res.ExitStatus, firstLine(res.Stderr))
	}
	samples, err := ParseGPUSamples(string(res.Stdout))
	if err != nil {
		return nil, fmt.Errorf("gpu sample: %w", err)
	}
	return samples, nil
}

// ParseGPUSamples parses the CSV output of GPUQuery, one line per GPU
// ("util, mem used, mem total, power"). Blank lines are skipped; "[N/A]" and
// "[Not Supported]" fields become NaN; anything else unparsable is an error.
func ParseGPUSamples(out string) ([]GPUSample, error) {
	var samples []GPUSample
	for n, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Split(line, ",")
		if len(f) != 4 {
			return nil, fmt.Errorf("parse gpu line %d %q: want 4 fields, got %d", n+1, line, len(f))
		}
		var v [4]float64
		for i, s := range f {
			x, err := parseGPUField(s)
			if err != nil {
				return nil, fmt.Errorf("parse gpu line %d %q: %w", n+1, line, err)
			}
			v[i] = x
		}
		samples = append(samples, GPUSample{
			Index:       len(samples),
			UtilPercent: v[0],
			MemUsedMiB:  v[1],
			MemTotalMiB: v[2],
			PowerW:      v[3],
		})
	}
	return samples, nil
}

func parseGPUField(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		return math.NaN(), nil // [N/A], [Not Supported], [Unknown Error]
	}
	if s == "N/A" {
		return math.NaN(), nil
	}
	// Tolerate units in case nounits was ignored ("45 %", "250.00 W").
	s = strings.TrimSpace(strings.TrimRight(s, "%WMiB "))
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return x, nil
}
