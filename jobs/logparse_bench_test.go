package jobs_test

import (
	"testing"

	"github.com/cpbot/cpbot/jobs"
)

// BenchmarkParseLine parses the real training log, one line per operation.
func BenchmarkParseLine(b *testing.B) {
	lines := fixtureLines(b)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		jobs.ParseLine(lines[n%len(lines)])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkParseLineLoss parses only iteration-loss lines; it must not allocate.
func BenchmarkParseLineLoss(b *testing.B) {
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		jobs.ParseLine("loss:0.512825  heatmap_loss:0.451616  contour_loss:0.061210\n")
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkTrackerFeed feeds the real training log to a Tracker, starting
// afresh each time the log ends.
func BenchmarkTrackerFeed(b *testing.B) {
	lines := fixtureLines(b)
	tr := jobs.NewTracker(150)
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		i := n % len(lines)
		if i == 0 {
			tr.P = jobs.Progress{Epochs: 150, LossHistory: tr.P.LossHistory[:0]}
		}
		tr.Feed(lines[i])
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
}
