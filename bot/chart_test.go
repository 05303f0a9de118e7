package bot_test

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"math"
	"testing"

	"github.com/cpbot/cpbot/bot"
)

// spikeLosses are the shape of the real obj1 log: 0.47, a spike to 8.5, then
// a slow fall.
func spikeLosses() []float64 {
	ls := []float64{0.4717, 8.5123, 0.2269}
	for i := range 47 {
		ls = append(ls, 0.22*math.Pow(0.97, float64(i)))
	}
	return ls
}

func TestLossChartPNG(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name   string
		first  int
		losses []float64
	}{
		{"one point", 1, []float64{0.4717}},
		{"with NaN epochs", 11, []float64{nan, 0.3, nan, 0.25, 0.2, nan}},
		{"spike", 1, spikeLosses()},
		{"flat", 1, []float64{0.2, 0.2, 0.2}},
		{"long run", 1, func() []float64 {
			ls := make([]float64, 1000)
			for i := range ls {
				ls[i] = 1 / float64(i+1)
			}
			return ls
		}()},
		{"with infinity and zero", 1, []float64{math.Inf(1), 0, 0.5, 1e-3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := bot.LossChartPNG("#14 obj1 loss", tc.first, tc.losses)
			if err != nil {
				t.Fatalf("LossChartPNG: %v", err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("decode png: %v", err)
			}
			if got := img.Bounds().Size(); got != image.Pt(bot.ChartWidth, bot.ChartHeight) {
				t.Errorf("size %v, want %dx%d", got, bot.ChartWidth, bot.ChartHeight)
			}
			if colours(img) < 3 {
				t.Errorf("image looks blank")
			}
		})
	}
}

// colours counts distinct colours on a sample grid of img.
func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y += 3 {
		for x := r.Min.X; x < r.Max.X; x += 3 {
			cr, cg, cb, ca := img.At(x, y).RGBA()
			seen[[4]uint32{cr, cg, cb, ca}] = true
		}
	}
	return len(seen)
}

func TestLossChartPNGNothingToDraw(t *testing.T) {
	for _, losses := range [][]float64{nil, {math.NaN(), math.Inf(-1)}} {
		if _, err := bot.LossChartPNG("t", 1, losses); !errors.Is(err, bot.ErrNoLosses) {
			t.Errorf("%v: err = %v, want ErrNoLosses", losses, err)
		}
	}
}

func BenchmarkLossChartPNG(b *testing.B) {
	ls := spikeLosses()
	for b.Loop() {
		if _, err := bot.LossChartPNG("#14 obj1 loss", 1, ls); err != nil {
			b.Fatal(err)
		}
	}
}
