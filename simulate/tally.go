package simulate

import (
	"maps"

	"github.com/studyd/studyd/domain"
)

// Tally counts what a simulation's commands decided: what studyd records when it
// applies them in order, so tests can compare its projections with exact numbers.
type Tally struct {
	Commands map[domain.CommandType]int `json:"commands"`
	Events   map[domain.EventType]int   `json:"events"`
	// Uptake counts uptake_reported events by status.
	Uptake map[domain.UptakeStatus]int `json:"uptake"`
	// Studies counts enrollment events per study ("<object>/<key>").
	Studies map[string]StudyTally `json:"studies"`
}

// StudyTally counts one study's enrollment events.
type StudyTally struct {
	Enrolled     int                   `json:"enrolled"`
	EnrollFailed int                   `json:"enroll_failed"`
	Unenrolled   map[domain.Reason]int `json:"unenrolled"`
	Branches     map[string]int        `json:"branches"` // enrollments per branch
}

// Reasons sums the unenrollments of every study by reason.
func (t Tally) Reasons() map[domain.Reason]int {
	out := map[domain.Reason]int{}
	for _, s := range t.Studies {
		for r, n := range s.Unenrolled {
			out[r] += n
		}
	}
	return out
}

func newTally() Tally {
	return Tally{Commands: map[domain.CommandType]int{}, Events: map[domain.EventType]int{},
		Uptake: map[domain.UptakeStatus]int{}, Studies: map[string]StudyTally{}}
}

// Add counts one command of type ct and the events it decided. Tests use it to tally
// a log read back, so that it is counted exactly as the fleet counted its decisions.
func (t *Tally) Add(ct domain.CommandType, events []domain.Event) {
	t.Commands[ct]++
	for _, e := range events {
		t.Events[e.Type]++
		switch e.Type {
		case domain.EventUptakeReported:
			t.Uptake[e.Status]++
			continue
		case domain.EventStudiesOptOutChanged:
			continue
		}
		key := e.Study().String()
		s := t.Studies[key]
		if s.Unenrolled == nil {
			s.Unenrolled, s.Branches = map[domain.Reason]int{}, map[string]int{}
		}
		switch e.Type {
		case domain.EventEnrolled:
			s.Enrolled++
			s.Branches[e.Branch]++
		case domain.EventEnrollFailed:
			s.EnrollFailed++
		case domain.EventUnenrolled:
			s.Unenrolled[domain.Reason(e.Reason)]++
		}
		t.Studies[key] = s
	}
}

// clone returns a deep copy, so a caller's Tally does not change as the fleet runs.
func (t Tally) clone() Tally {
	out := Tally{Commands: maps.Clone(t.Commands), Events: maps.Clone(t.Events), Uptake: maps.Clone(t.Uptake),
		Studies: make(map[string]StudyTally, len(t.Studies))}
	for k, s := range t.Studies {
		out.Studies[k] = StudyTally{Enrolled: s.Enrolled, EnrollFailed: s.EnrollFailed,
			Unenrolled: maps.Clone(s.Unenrolled), Branches: maps.Clone(s.Branches)}
	}
	return out
}
