package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/studyd/studyd/domain"
)

// Transition is one edge of a state machine: firing Event (a telemetry method) in
// state From leads to state To.
type Transition struct {
	Event domain.Method
	From  domain.State
	To    domain.State
}

// table is the enrollment state machine of preference and add-on studies, in the
// order the diagram draws it.
//
//   - enroll: a study starts from nothing, or from a failed start.
//   - enrollFailed: a study could not start. Firefox 2018 deleted an add-on study's
//     record when its install failed (and later Firefox never stored a preference study
//     whose start failed), so the next run may try again: a failed study can fail
//     again or enroll.
//   - expPrefChanged, update, updateFailed (later Firefox): an enrolled study stays
//     enrolled with a preference overridden, a new add-on version, or a failed one.
//   - unenroll: an enrolled study ends. unenrolled is terminal: a study never
//     re-enrolls, whatever later runs report.
//
// unenrollFailed (a stop that found no active study) is not an edge: it moves nothing,
// and is recorded with From = To in whatever state the study is.
var table = []Transition{
	{Event: domain.MethodEnroll, From: domain.StateNone, To: domain.StateEnrolled},
	{Event: domain.MethodEnroll, From: domain.StateEnrollFailed, To: domain.StateEnrolled},
	{Event: domain.MethodEnrollFailed, From: domain.StateNone, To: domain.StateEnrollFailed},
	{Event: domain.MethodEnrollFailed, From: domain.StateEnrollFailed, To: domain.StateEnrollFailed},
	{Event: domain.MethodExpPrefChanged, From: domain.StateEnrolled, To: domain.StateEnrolled},
	{Event: domain.MethodUpdate, From: domain.StateEnrolled, To: domain.StateEnrolled},
	{Event: domain.MethodUpdateFailed, From: domain.StateEnrolled, To: domain.StateEnrolled},
	{Event: domain.MethodUnenroll, From: domain.StateEnrolled, To: domain.StateUnenrolled},
}

// rolloutTable is the state machine of a preference rollout (later Firefox's
// PreferenceRollouts), in diagram order. A rollout is never "ended" for good: an update
// of its recipe re-activates it from graduated, and (as Firefox does, while logging an
// "unexpected state") from rolled_back.
//
//   - enroll: the rollout's recipe first applies; enrollFailed: it could not (a
//     conflict with another active rollout, a preference of another type, nothing to
//     change), and nothing is stored.
//   - update: the recipe's values changed.
//   - graduate: Firefox's own defaults now equal the rollout's values, or the slug is in
//     Firefox's graduation set.
//   - unenroll (object preference_rollback): a rollback recipe rolled it back.
//   - unenrollFailed (preference_rollback): a rollback of a graduated rollout.
var rolloutTable = []Transition{
	{Event: domain.MethodEnroll, From: domain.StateNone, To: domain.StateActive},
	{Event: domain.MethodEnrollFailed, From: domain.StateNone, To: domain.StateNone},
	{Event: domain.MethodUpdate, From: domain.StateActive, To: domain.StateActive},
	{Event: domain.MethodUpdate, From: domain.StateGraduated, To: domain.StateActive},
	{Event: domain.MethodUpdate, From: domain.StateRolledBack, To: domain.StateActive},
	{Event: domain.MethodGraduate, From: domain.StateActive, To: domain.StateGraduated},
	{Event: domain.MethodUnenroll, From: domain.StateActive, To: domain.StateRolledBack},
	{Event: domain.MethodUnenrollFailed, From: domain.StateGraduated, To: domain.StateGraduated},
}

// Table returns a copy of the enrollment transition table.
func Table() []Transition { return append([]Transition(nil), table...) }

// RolloutTable returns a copy of the rollout transition table.
func RolloutTable() []Transition { return append([]Transition(nil), rolloutTable...) }

// version is computed once: the tables are fixed at build time.
var version = func() string {
	var b strings.Builder
	for _, t := range table {
		b.WriteString(string(t.Event) + " " + string(t.From) + " " + string(t.To) + "\n")
	}
	b.WriteString("rollout\n")
	for _, t := range rolloutTable {
		b.WriteString(string(t.Event) + " " + string(t.From) + " " + string(t.To) + "\n")
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}()

// Version identifies the transition tables: the first 16 hex digits of sha256 over one
// "event from to" line per transition of the enrollment table, then "rollout" and the
// rollout table's lines. Commits record it so an audit can tell which machines decided
// them; it changes exactly when a table does.
func Version() string { return version }
