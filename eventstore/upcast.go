package eventstore

import (
	"cmp"
	"slices"
	"time"

	"github.com/studyd/studyd/domain"
)

// commitV1 is the envelope studyd wrote before schema 2. It differed in three ways:
// the events were called "changes"; the state kept its enrollments as a map keyed by
// "<object>/<key>" (which made the encoding depend on map order, hence v2's sorted
// slice); and it recorded neither a correlation id nor the FSM version.
type commitV1 struct {
	Schema      int                `msgpack:"schema"`
	CommitID    string             `msgpack:"commit_id"`
	CommandID   string             `msgpack:"command_id"`
	CommandType domain.CommandType `msgpack:"command_type"`
	CommandSeq  uint64             `msgpack:"command_seq"`
	Client      domain.ClientID    `msgpack:"client"`
	At          time.Time          `msgpack:"at"`
	Changes     []domain.Event     `msgpack:"changes"`
	State       stateV1            `msgpack:"state"`
	Recent      []Applied          `msgpack:"recent"`
	PrevHash    string             `msgpack:"prev_hash"`
}

type stateV1 struct {
	Client          domain.ClientID              `msgpack:"client"`
	StudiesDisabled bool                         `msgpack:"studies_disabled,omitempty"`
	LastRunAt       time.Time                    `msgpack:"last_run_at,omitempty"`
	Enrollments     map[string]domain.Enrollment `msgpack:"enrollments"`
}

// upcast turns a v1 commit into the current Commit. FSMVersion stays empty: v1 did not
// record it, and an audit must not pretend to know which table decided the commit.
func (v commitV1) upcast() Commit {
	enrollments := make([]domain.Enrollment, 0, len(v.State.Enrollments))
	for _, e := range v.State.Enrollments {
		enrollments = append(enrollments, e)
	}
	slices.SortFunc(enrollments, func(a, b domain.Enrollment) int {
		return cmp.Or(cmp.Compare(a.Object, b.Object), cmp.Compare(a.Key, b.Key))
	})
	return Commit{
		Schema:      SchemaVersion,
		CommitID:    v.CommitID,
		CommandID:   v.CommandID,
		CommandType: v.CommandType,
		CommandSeq:  v.CommandSeq,
		Client:      v.Client,
		At:          v.At,
		Events:      v.Changes,
		State: domain.ClientState{
			Client:          v.State.Client,
			StudiesDisabled: v.State.StudiesDisabled,
			LastRunAt:       v.State.LastRunAt,
			Enrollments:     enrollments,
		},
		Recent:   v.Recent,
		PrevHash: v.PrevHash,
	}
}
