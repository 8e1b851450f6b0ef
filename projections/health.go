package projections

import "github.com/studyd/studyd/domain"

// Health is how an uptake status reads on a dashboard, after
// mozilla/remote-settings-uptake-health: good, neutral (not an error for Normandy) or
// bad.
type Health string

// Health classes.
const (
	HealthGood    Health = "good"
	HealthNeutral Health = "neutral"
	HealthBad     Health = "bad"
)

// HealthOf classifies a status by the label Firefox reported for it: success and
// up_to_date are good, backoff and pref_disabled neutral (a filter or capability
// mismatch is not an error), every other *_error bad. The seed's statuses only map to
// success or an error label; the neutral class is kept for labels later eras added.
// An unknown status is bad: it is worth a look.
func HealthOf(s domain.UptakeStatus) Health {
	switch s.Label() {
	case "success", "up_to_date":
		return HealthGood
	case "backoff", "pref_disabled":
		return HealthNeutral
	}
	return HealthBad
}

// HealthCounts sums tallies by health class.
type HealthCounts struct {
	Good    uint64 `json:"good"`
	Neutral uint64 `json:"neutral"`
	Bad     uint64 `json:"bad"`
}

// Add counts n reports of status s.
func (h *HealthCounts) Add(s domain.UptakeStatus, n uint64) {
	switch HealthOf(s) {
	case HealthGood:
		h.Good += n
	case HealthNeutral:
		h.Neutral += n
	default:
		h.Bad += n
	}
}

// BadRatio is bad/(good+bad), the share the uptake-health alert compares with its
// threshold (2% by default); 0 when nothing good or bad was reported.
func (h HealthCounts) BadRatio() float64 {
	if h.Good+h.Bad == 0 {
		return 0
	}
	return float64(h.Bad) / float64(h.Good+h.Bad)
}
