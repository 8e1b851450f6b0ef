package projections

import (
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// ClientView is one client's enrollments as of its latest commit.
//
// There is no client fold and no studyd_clients copy kept by the projector: every
// commit already carries the client's whole resulting state, so the newest view of a
// client is one direct get of the last message on its subject (eventstore.Store.Load).
// A materialised copy would cost a KV write per command for data the log already
// indexes by subject, and could only lag behind it.
type ClientView struct {
	Client          domain.ClientID     `json:"client_id"`
	Seq             uint64              `json:"seq"` // position of the commit it was read from
	At              time.Time           `json:"at,omitzero"`
	StudiesDisabled bool                `json:"studies_disabled,omitempty"`
	LastRunAt       time.Time           `json:"last_run_at,omitzero"`
	Enrollments     []domain.Enrollment `json:"enrollments"`
}

// ClientViewOf returns the view of the client whose latest commit is r. A zero Record
// (a client with no commits) gives an empty view of client.
func ClientViewOf(client domain.ClientID, r eventstore.Record) ClientView {
	v := ClientView{Client: client, Seq: r.Position, Enrollments: []domain.Enrollment{}}
	if r.Position == 0 {
		return v
	}
	st := r.Commit.State
	v.At = r.Commit.At
	v.StudiesDisabled = st.StudiesDisabled
	v.LastRunAt = st.LastRunAt
	if st.Enrollments != nil {
		v.Enrollments = st.Enrollments
	}
	return v
}
