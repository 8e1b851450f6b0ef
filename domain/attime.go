package domain

import (
	"fmt"
	"time"
)

// NormandyEpoch is the default earliest accepted command time: Normandy's recipe
// runner shipped in Firefox during 2016, so no real client observed anything before.
var NormandyEpoch = time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)

// LatestRepresentable is the latest time a command may carry at all: RFC 3339 (JSON
// views, exports, queries) cannot write a year beyond 9999.
var LatestRepresentable = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// AtRange is the accepted range of a command's `at`, relative to the clock of the
// studyd that decides it. The zero value means DefaultAtRange.
type AtRange struct {
	NotBefore time.Time     // earliest accepted `at`; zero = NormandyEpoch
	MaxAhead  time.Duration // how far past the deciding clock `at` may be; 0 = 24h
}

// DefaultAtRange accepts commands from NormandyEpoch to one day past the clock, which
// leaves room for a client's skewed clock and for time zones done wrong.
var DefaultAtRange = AtRange{NotBefore: NormandyEpoch, MaxAhead: 24 * time.Hour}

// withDefaults fills the zero fields.
func (r AtRange) withDefaults() AtRange {
	if r.NotBefore.IsZero() {
		r.NotBefore = DefaultAtRange.NotBefore
	}
	if r.MaxAhead == 0 {
		r.MaxAhead = DefaultAtRange.MaxAhead
	}
	return r
}

// Check returns an ErrInvalid naming the accepted range if at is outside it, given
// the deciding clock's now. The domain reads no clock: the caller passes it.
func (r AtRange) Check(at, now time.Time) error {
	r = r.withDefaults()
	latest := now.Add(r.MaxAhead)
	if latest.After(LatestRepresentable) {
		latest = LatestRepresentable
	}
	if at.Before(r.NotBefore) || at.After(latest) {
		return fmt.Errorf("%w: at %s is outside the accepted range %s .. %s (not before %s, at most %s past the server clock)",
			ErrInvalid, at.UTC().Format(time.RFC3339Nano), r.NotBefore.UTC().Format(time.RFC3339),
			latest.UTC().Format(time.RFC3339), r.NotBefore.UTC().Format(time.DateOnly), r.MaxAhead)
	}
	return nil
}
