package audit

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// Entry is one message of the events stream as a replay delivers it.
type Entry struct {
	Seq     uint64    // stream sequence: the commit's Position
	Subject string    // studyd.evt.<client>, studyd.rej.<client>, or anything else found
	Stored  time.Time // when the stream stored it
	Data    []byte
	// MAC is the message's HeaderMAC value ("" if it had none): studyd's proof that it
	// wrote the message, checked when a verification is given the commit key.
	MAC string
}

// Kind is what an entry holds, judged by its subject.
type Kind uint8

// Entry kinds.
const (
	KindOther Kind = iota
	KindCommit
	KindRejection
)

// Kind classifies e by its subject.
func (e Entry) Kind() Kind {
	switch {
	case strings.HasPrefix(e.Subject, CommitPrefix):
		return KindCommit
	case strings.HasPrefix(e.Subject, RejectionPrefix):
		return KindRejection
	}
	return KindOther
}

// SubjectClient is the client token of a commit or rejection subject.
func (e Entry) SubjectClient() domain.ClientID {
	return domain.ClientID(e.Subject[strings.LastIndexByte(e.Subject, '.')+1:])
}

// Record decodes e as a commit: Position is its sequence and Hash the sha256 of its
// bytes as stored, which the client's next commit names as PrevHash.
func (e Entry) Record() (eventstore.Record, error) { return e.recordWith(eventstore.DecodeRecord) }

// recordWith is Record through decode (DecodeRecord or DecodeRecordLean).
func (e Entry) recordWith(decode func(pos uint64, data []byte) (eventstore.Record, error)) (eventstore.Record, error) {
	r, err := decode(e.Seq, e.Data)
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("commit at seq %d (%s): %w", e.Seq, e.Subject, err)
	}
	return r, nil
}

// Rejection decodes e as a recorded rejection.
func (e Entry) Rejection() (eventstore.Rejection, error) {
	r, err := eventstore.DecodeRejection(e.Data)
	if err != nil {
		return eventstore.Rejection{}, fmt.Errorf("rejection at seq %d (%s): %w", e.Seq, e.Subject, err)
	}
	return r, nil
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }
