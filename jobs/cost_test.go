package jobs_test

import (
	"testing"
	"time"

	"github.com/cpbot/cpbot/jobs"
)

func TestMoney(t *testing.T) {
	tests := []struct {
		name    string
		m       jobs.Money
		str     string
		dollars float64
	}{
		{"zero", 0, "$0.00", 0},
		{"under a dollar", jobs.USD(0.41), "$0.41", 0.41},
		{"budget", jobs.USD(19.98), "$19.98", 19.98},
		{"rounds half up", jobs.USD(0.005), "$0.01", 0.005},
		{"rounds down", jobs.USD(1.234999), "$1.23", 1.234999},
		{"one micro-dollar", 1, "$0.00", 0.000001},
		{"price per hour", jobs.PriceFromCents(199), "$1.99", 1.99},
		{"large", jobs.USD(12345.6), "$12345.60", 12345.6},
		{"negative", jobs.USD(-1.5), "-$1.50", -1.5},
		{"constants", 2*jobs.Dollar + 3*jobs.Cent, "$2.03", 2.03},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.m.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			if got := tt.m.Dollars(); got != tt.dollars {
				t.Errorf("Dollars() = %v, want %v", got, tt.dollars)
			}
		})
	}
	if got := jobs.USD(0.1) + jobs.USD(0.2); got != jobs.USD(0.3) {
		t.Errorf("USD(0.1)+USD(0.2) = %d, want %d: money must add exactly", got, jobs.USD(0.3))
	}
}

func TestBilledMinutes(t *testing.T) {
	launch := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		launched time.Time
		now      time.Time
		want     int
	}{
		{"not launched", time.Time{}, launch, 0},
		{"at launch", launch, launch, 0},
		{"clock behind launch", launch, launch.Add(-time.Minute), 0},
		{"one nanosecond", launch, launch.Add(time.Nanosecond), 1},
		{"one second", launch, launch.Add(time.Second), 1},
		{"exactly a minute", launch, launch.Add(time.Minute), 1},
		{"a minute and a bit", launch, launch.Add(time.Minute + time.Millisecond), 2},
		{"ten hours two minutes", launch, launch.Add(10*time.Hour + 2*time.Minute), 602},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jobs.BilledMinutes(tt.launched, tt.now); got != tt.want {
				t.Errorf("BilledMinutes = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestCost(t *testing.T) {
	launch := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	a100 := jobs.PriceFromCents(199)
	tests := []struct {
		name  string
		price jobs.Money
		end   time.Time
		want  jobs.Money
	}{
		{"nothing yet", a100, launch, 0},
		{"first second bills a minute", a100, launch.Add(time.Second), 33167}, // 1.99/60 = 0.0331666… rounded up
		{"one hour", a100, launch.Add(time.Hour), jobs.USD(1.99)},
		{"hour and a second", a100, launch.Add(time.Hour + time.Second), jobs.USD(1.99) + 33167},
		{"ten hours two minutes", a100, launch.Add(10*time.Hour + 2*time.Minute), 19966334}, // 602 × 1.99/60 = 19.966333…
		{"free", 0, launch.Add(time.Hour), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := jobs.Cost(tt.price, launch, tt.end); got != tt.want {
				t.Errorf("Cost = %d (%v), want %d (%v)", got, got, tt.want, tt.want)
			}
		})
	}
}

func TestForecast(t *testing.T) {
	launch := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	now := launch.Add(20 * time.Minute)
	a100 := jobs.PriceFromCents(199)
	soFar := jobs.Cost(a100, launch, now)
	tests := []struct {
		name  string
		p     jobs.Progress
		want  jobs.Money
		known bool
	}{
		{"no epoch yet", jobs.Progress{Epochs: 150}, soFar, false},
		{"unknown total", jobs.Progress{Epoch: 2, EpochSeconds: 250}, soFar, false},
		// 147 epochs × 250 s = 10h12m30s more: billed 20 + 613 minutes
		{"measured", jobs.Progress{Epoch: 3, Epochs: 150, EpochSeconds: 250}, jobs.Cost(a100, launch, launch.Add(633*time.Minute)), true},
		{"last epoch left", jobs.Progress{Epoch: 149, Epochs: 150, EpochSeconds: 60}, jobs.Cost(a100, launch, launch.Add(21*time.Minute)), true},
		{"done", jobs.Progress{Epoch: 150, Epochs: 150}, soFar, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, known := jobs.Forecast(a100, launch, now, tt.p)
			if got != tt.want || known != tt.known {
				t.Errorf("Forecast = %v (%d), %v; want %v (%d), %v", got, got, known, tt.want, tt.want, tt.known)
			}
		})
	}
	if got, _ := jobs.Forecast(a100, launch, now, jobs.Progress{Epoch: 3, Epochs: 150, EpochSeconds: 250}); got.String() != "$20.99" {
		t.Errorf("forecast shown as %s, want $20.99", got) // 633 × 1.99 / 60 = 20.9945
	}
}
