package fsm

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/studyd/studyd/domain"
)

// Transition is one edge of the enrollment state machine: firing Event (a telemetry
// method) in state From leads to state To.
type Transition struct {
	Event domain.Method
	From  domain.State
	To    domain.State
}

// table is the enrollment state machine, in the order the diagram draws it.
//
//   - enroll: a study starts from nothing, or from a failed install.
//   - enrollFailed: an add-on study's install failed. Firefox 2018 deleted the study's
//     record when the install failed, so the next run may try again: a failed study can
//     fail again or enroll.
//   - unenroll: an enrolled study ends. unenrolled is terminal: a study never
//     re-enrolls, whatever later runs report.
var table = []Transition{
	{Event: domain.MethodEnroll, From: domain.StateNone, To: domain.StateEnrolled},
	{Event: domain.MethodEnroll, From: domain.StateEnrollFailed, To: domain.StateEnrolled},
	{Event: domain.MethodEnrollFailed, From: domain.StateNone, To: domain.StateEnrollFailed},
	{Event: domain.MethodEnrollFailed, From: domain.StateEnrollFailed, To: domain.StateEnrollFailed},
	{Event: domain.MethodUnenroll, From: domain.StateEnrolled, To: domain.StateUnenrolled},
}

// Table returns a copy of the transition table.
func Table() []Transition { return append([]Transition(nil), table...) }

// version is computed once: the table is fixed at build time.
var version = func() string {
	var b strings.Builder
	for _, t := range table {
		b.WriteString(string(t.Event) + " " + string(t.From) + " " + string(t.To) + "\n")
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}()

// Version identifies the transition table: the first 16 hex digits of sha256 over one
// "event from to" line per transition. Commits record it so an audit can tell which
// machine decided them; it changes exactly when the table does.
func Version() string { return version }
