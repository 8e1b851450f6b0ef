package projections

import (
	"errors"
	"fmt"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// Period is the time span an uptake tally covers.
type Period uint8

// Tally periods. Buckets are UTC hours and days of the commit's At.
const (
	PeriodTotal Period = iota // the whole log
	PeriodHour                // one UTC hour
	PeriodDay                 // one UTC day
)

// String is the period's name in KV keys and JSON: total, hour or day.
func (p Period) String() string {
	switch p {
	case PeriodHour:
		return "hour"
	case PeriodDay:
		return "day"
	}
	return "total"
}

// ParsePeriod accepts total, hour or day.
func ParsePeriod(v string) (Period, error) {
	switch v {
	case "total", "":
		return PeriodTotal, nil
	case "hour":
		return PeriodHour, nil
	case "day":
		return PeriodDay, nil
	}
	return 0, fmt.Errorf("%w: unknown period %q (allowed: total, hour, day)", domain.ErrInvalid, v)
}

const (
	secondsPerHour = 3600
	secondsPerDay  = 24 * secondsPerHour
)

// UptakeKey identifies one tally: a source key (normandy/runner, normandy/action/<name>,
// normandy/recipe/<id>), one of its statuses, and a period with the Unix second its
// bucket starts at (0 for PeriodTotal). It is comparable and holds no pointers of its
// own, so it serves directly as a map key.
type UptakeKey struct {
	Source string
	Status domain.UptakeStatus
	Period Period
	Start  int64
}

// BucketStart is when the key's bucket starts, or the zero time for a total.
func (k UptakeKey) BucketStart() time.Time {
	if k.Period == PeriodTotal {
		return time.Time{}
	}
	return time.Unix(k.Start, 0).UTC()
}

// Health classifies the key's status.
func (k UptakeKey) Health() Health { return HealthOf(k.Status) }

// floorDiv is integer division rounding toward negative infinity, so times before 1970
// still land in the bucket that contains them.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// EachUptake calls fn with the three keys (total, hour, day) every uptake report in c
// adds one to. It is the fold's only knowledge of commits, shared by Uptake and by the
// projector, which applies each key under its own checkpoint.
//
// A commit whose time RFC 3339 cannot write (CheckTime) adds to the totals only: its
// hour and day buckets would be views nobody can render, and one such commit must not
// wedge the readers that write or serve them.
func EachUptake(c *eventstore.Commit, fn func(UptakeKey)) {
	var hour, day int64
	timed, buckets := false, true
	for i := range c.Events {
		e := &c.Events[i]
		if e.Type != domain.EventUptakeReported {
			continue
		}
		if !timed {
			sec := c.At.Unix()
			hour = floorDiv(sec, secondsPerHour) * secondsPerHour
			day = floorDiv(sec, secondsPerDay) * secondsPerDay
			timed, buckets = true, CheckTime(c) == nil
		}
		fn(UptakeKey{Source: e.Source, Status: e.Status})
		if buckets {
			fn(UptakeKey{Source: e.Source, Status: e.Status, Period: PeriodHour, Start: hour})
			fn(UptakeKey{Source: e.Source, Status: e.Status, Period: PeriodDay, Start: day})
		}
	}
}

// Uptake is the uptake tallies: how many times each source reported each status, in
// total and per UTC hour and day. The zero value is not usable; call NewUptake.
type Uptake struct {
	// Seq is the position of the last commit folded; commits at or below it are ignored.
	Seq    uint64
	Counts map[UptakeKey]uint64
}

// NewUptake returns empty tallies.
func NewUptake() *Uptake { return &Uptake{Counts: make(map[UptakeKey]uint64)} }

// Apply folds the commit at position pos, unless the tallies already reflect it. It
// reports whether it counted the commit.
func (u *Uptake) Apply(pos uint64, c *eventstore.Commit) bool {
	if pos <= u.Seq {
		return false
	}
	u.Seq = pos
	EachUptake(c, u.inc)
	return true
}

func (u *Uptake) inc(k UptakeKey) { u.Counts[k]++ }

// Merge adds o's counts to u, as if u had also folded o's commits; tallies are sums, so
// folds of disjoint ranges merge to the fold of their union. Seq becomes the larger.
func (u *Uptake) Merge(o *Uptake) {
	for k, n := range o.Counts {
		u.Counts[k] += n
	}
	u.Seq = max(u.Seq, o.Seq)
}

// ErrUnrenderableTime: a commit's time is outside what RFC 3339 can write (years 0001
// to 9999), so views bucketed by it cannot be written or served.
var ErrUnrenderableTime = errors.New("projections: time outside RFC 3339's range")

// CheckTime returns ErrUnrenderableTime for a commit whose time no view can render.
// Readers fold such a commit as far as they can (totals, study counts) and report it;
// studyd no longer accepts such commands (domain.AtRange), but older logs may hold them.
func CheckTime(c *eventstore.Commit) error {
	if c.At.Year() < 1 || c.At.After(domain.LatestRepresentable) {
		return fmt.Errorf("%w: commit at %s", ErrUnrenderableTime, c.At.Format(time.RFC3339))
	}
	return nil
}
