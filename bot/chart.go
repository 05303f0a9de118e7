package bot

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Size of the loss chart in pixels.
const (
	ChartWidth  = 800
	ChartHeight = 400
)

// chartDPI is the chart's resolution: at 72 dpi a point is a pixel.
const chartDPI = 72

// logScaleRatio is the spread of losses (largest over smallest) above which
// the chart's y axis is logarithmic, so a spike does not flatten the curve.
const logScaleRatio = 100

// maxChartMarkers is the most points that get a marker besides the line.
const maxChartMarkers = 200

// ErrNoLosses is returned by LossChartPNG when no loss is a finite number.
var ErrNoLosses = errors.New("no losses to plot")

// LossChartPNG draws a loss curve as a ChartWidth×ChartHeight PNG: losses[i]
// is the loss of epoch firstEpoch+i. NaN and infinite losses (epochs not
// seen) are left out; when the finite ones span more than 100× and are all
// positive, the y axis is logarithmic. It returns ErrNoLosses when nothing
// is left to draw.
func LossChartPNG(title string, firstEpoch int, losses []float64) ([]byte, error) {
	pts := make(plotter.XYs, 0, len(losses))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, l := range losses {
		if math.IsNaN(l) || math.IsInf(l, 0) {
			continue
		}
		pts = append(pts, plotter.XY{X: float64(firstEpoch + i), Y: l})
		lo, hi = min(lo, l), max(hi, l)
	}
	if len(pts) == 0 {
		return nil, ErrNoLosses
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "loss"
	p.Add(plotter.NewGrid())
	if lo > 0 && hi/lo > logScaleRatio {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Y.Label.Text = "loss (log scale)"
	}
	if len(pts) == 1 {
		// one point: give the axes some room around it
		x, y := pts[0].X, pts[0].Y
		p.X.Min, p.X.Max = x-1, x+1
		p.Y.Min, p.Y.Max = y-math.Max(math.Abs(y)/2, 0.01), y+math.Max(math.Abs(y)/2, 0.01)
	}
	line, err := plotter.NewLine(pts)
	if err != nil {
		return nil, fmt.Errorf("loss line: %w", err)
	}
	line.Color = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	line.Width = vg.Points(2)
	p.Add(line)
	if len(pts) <= maxChartMarkers {
		dots, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, fmt.Errorf("loss points: %w", err)
		}
		dots.GlyphStyle.Color = line.Color
		dots.GlyphStyle.Shape = draw.CircleGlyph{}
		dots.GlyphStyle.Radius = vg.Points(2.5)
		p.Add(dots)
	}
	c := vgimg.NewWith(vgimg.UseWH(vg.Points(ChartWidth), vg.Points(ChartHeight)), vgimg.UseDPI(chartDPI),
		vgimg.UseBackgroundColor(color.White))
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("encode loss chart: %w", err)
	}
	return buf.Bytes(), nil
}
