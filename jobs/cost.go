package jobs

import (
	"math"
	"strconv"
	"time"
)

// Money is an amount of US dollars in micro-dollars (1e-6 USD). Integer
// arithmetic keeps sums of many small per-minute charges exact.
type Money int64

// Microdollars per dollar and per cent.
const (
	Dollar Money = 1_000_000
	Cent   Money = 10_000
)

// USD converts dollars to Money, rounded to the nearest micro-dollar.
func USD(dollars float64) Money { return Money(math.Round(dollars * float64(Dollar))) }

// PriceFromCents converts Lambda's price in cents per hour to Money per hour.
func PriceFromCents(centsPerHour int) Money { return Money(centsPerHour) * Cent }

// Dollars returns m in dollars.
func (m Money) Dollars() float64 { return float64(m) / float64(Dollar) }

// String formats m in dollars and cents, rounded half away from zero to the
// cent: "$19.98", "$0.41", "-$1.50".
func (m Money) String() string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	cents := (m + Cent/2) / Cent
	c := strconv.FormatInt(int64(cents%100), 10)
	if len(c) < 2 {
		c = "0" + c
	}
	return sign + "$" + strconv.FormatInt(int64(cents/100), 10) + "." + c
}

// BilledMinutes returns the minutes Lambda bills from launch to now: every
// started minute counts, so any positive time is at least one minute. A zero
// launch time (never launched) or a now not after launch bills nothing.
func BilledMinutes(launched, now time.Time) int {
	if launched.IsZero() {
		return 0
	}
	d := now.Sub(launched)
	if d <= 0 {
		return 0
	}
	return int((d + time.Minute - 1) / time.Minute)
}

// Cost is what an instance at pricePerHour costs from launched to end: the
// billed minutes at a sixtieth of the hourly price, rounded up to the
// micro-dollar.
func Cost(pricePerHour Money, launched, end time.Time) Money {
	return ceilDiv(pricePerHour*Money(BilledMinutes(launched, end)), 60)
}

// Forecast is the projected cost of the whole run: the instance billed from
// launched until now plus the remaining epochs at the mean epoch duration.
// known is false, and the cost so far is returned, while no epoch duration is
// known yet; once all epochs are done the forecast is the cost so far.
func Forecast(pricePerHour Money, launched, now time.Time, p Progress) (cost Money, known bool) {
	if p.Done() {
		return Cost(pricePerHour, launched, now), true
	}
	eta := p.ETA()
	if eta <= 0 {
		return Cost(pricePerHour, launched, now), false
	}
	return Cost(pricePerHour, launched, now.Add(eta)), true
}

// ceilDiv divides rounding towards positive infinity.
func ceilDiv(a, b Money) Money {
	q := a / b
	if a%b != 0 && (a < 0) == (b < 0) {
		q++
	}
	return q
}
