package audit

import (
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// Step is one transition in an enrollment's history, with what caused it.
type Step struct {
	Seq         uint64             `json:"seq"`
	At          time.Time          `json:"at"`
	CommandID   string             `json:"command_id"`
	CommandType domain.CommandType `json:"command_type"`
	Event       domain.EventType   `json:"event"`
	From        domain.State       `json:"from"`
	To          domain.State       `json:"to"`
	Branch      string             `json:"branch,omitempty"`
	Reason      string             `json:"reason,omitempty"`
}

// Steps returns the transitions of study in r, in the order the commit records them.
func Steps(r eventstore.Record, study domain.StudyRef) []Step {
	var out []Step
	for _, e := range r.Commit.Events {
		if e.Type.Method() == "" || e.Study() != study {
			continue
		}
		out = append(out, Step{Seq: r.Position, At: r.Commit.At, CommandID: r.Commit.CommandID, CommandType: r.Commit.CommandType,
			Event: e.Type, From: e.From, To: e.To, Branch: e.Branch, Reason: e.Reason})
	}
	return out
}

// AsOf is a client's state as a commit left it.
type AsOf struct {
	Client domain.ClientID `json:"client_id"`
	Found  bool            `json:"found"`         // false: the client had no commit yet
	Seq    uint64          `json:"seq,omitempty"` // the commit it was read from
	At     time.Time       `json:"at,omitzero"`   // that commit's time
	Stored time.Time       `json:"stored,omitzero"`
	State  domain.ClientState
	// Enrollment is the one study asked about, if any.
	Enrollment *domain.Enrollment `json:"enrollment,omitempty"`
}

// AsOfRecord is the AsOf view of r (a zero r: the client had no commit), narrowed to
// study if it is set.
func AsOfRecord(client domain.ClientID, r eventstore.Record, stored time.Time, study domain.StudyRef) AsOf {
	a := AsOf{Client: client, State: domain.ClientState{Client: client, Enrollments: []domain.Enrollment{}}}
	if r.Position != 0 {
		a.Found, a.Seq, a.At, a.Stored, a.State = true, r.Position, r.Commit.At, stored, r.Commit.State
		if a.State.Enrollments == nil {
			a.State.Enrollments = []domain.Enrollment{}
		}
	}
	if study.Object != "" {
		en, ok := a.State.Find(study)
		if !ok {
			en = domain.Enrollment{Object: study.Object, Key: study.Key, State: domain.StateNone}
		}
		a.Enrollment = &en
	}
	return a
}
