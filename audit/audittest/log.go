// Package audittest builds logs for audit tests: real commits, decided by the fsm from
// a simulated fleet's commands, encoded and hash-chained exactly as studyd appends
// them, as the entries a replay of the events stream would deliver.
package audittest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/fsm"
	"github.com/studyd/studyd/simulate"
)

// Log is an events stream under construction. Entries are numbered from 1.
type Log struct {
	Entries []audit.Entry
	last    map[domain.ClientID]eventstore.Record
	stored  time.Time
}

// New returns an empty log whose messages are stored a millisecond apart from start.
func New(start time.Time) *Log {
	return &Log{last: make(map[domain.ClientID]eventstore.Record), stored: start}
}

// Fleet is a log of a simulated fleet: clients over days, every command decided in
// order, refused commands recorded as rejections.
func Fleet(clients, days int, seed uint64) (*Log, error) {
	return FleetOf(simulate.Config{Clients: clients, Days: days, Seed: seed})
}

// FleetOf is Fleet of any simulated fleet (e.g. one mixing Firefox versions).
func FleetOf(cfg simulate.Config) (*Log, error) {
	f, err := simulate.New(cfg)
	if err != nil {
		return nil, err
	}
	l := New(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	if err := f.Each(l.Apply); err != nil {
		return nil, err
	}
	return l, nil
}

// Apply decides cmd against its client's last commit and appends the commit, or the
// rejection if the decider refuses it.
func (l *Log) Apply(cmd domain.Command) error {
	last := l.last[cmd.ClientID]
	d, err := fsm.Decide(context.Background(), last.Commit.State, cmd)
	if err != nil {
		if errors.Is(err, domain.ErrInvalid) || errors.Is(err, domain.ErrIllegalTransition) || errors.Is(err, domain.ErrStaleRun) {
			return l.Reject(eventstore.Rejection{CommandID: cmd.CommandID, Client: cmd.ClientID,
				Subject: "studyd.cmd." + string(cmd.ClientID), Code: domain.ClassifyRejection(err), Error: err.Error(), At: cmd.At})
		}
		return fmt.Errorf("decide %s: %w", cmd.CommandID, err)
	}
	recent := append([]eventstore.Applied(nil), last.Commit.Recent...)
	if n := len(recent); n > 0 {
		recent[n-1].Position = last.Position
	}
	recent = append(recent, eventstore.Applied{CommandID: cmd.CommandID})
	if over := len(recent) - eventstore.RecentCommands; over > 0 {
		recent = recent[over:]
	}
	id := sha256.Sum256([]byte(string(cmd.ClientID) + "\x00" + cmd.CommandID))
	c := eventstore.Commit{Schema: eventstore.SchemaVersion, CommitID: hex.EncodeToString(id[:16]), CommandID: cmd.CommandID,
		CommandType: cmd.Type, Client: cmd.ClientID, At: cmd.At.UTC(), Events: d.Events, State: d.State, Recent: recent,
		FSMVersion: fsm.Version(), PrevHash: last.Hash}
	return l.AppendCommit(c)
}

// AppendCommit encodes c and appends it as its client's next commit, as given.
func (l *Log) AppendCommit(c eventstore.Commit) error {
	b, err := eventstore.EncodeCommit(c)
	if err != nil {
		return err
	}
	e := l.append(audit.CommitPrefix+string(c.Client), b)
	rec, err := e.Record()
	if err != nil {
		return err
	}
	l.last[c.Client] = rec
	return nil
}

// Reject appends a rejection.
func (l *Log) Reject(r eventstore.Rejection) error {
	b, err := eventstore.EncodeRejection(r)
	if err != nil {
		return err
	}
	client := string(r.Client)
	if client == "" {
		client = "_"
	}
	l.append(audit.RejectionPrefix+client, b)
	return nil
}

func (l *Log) append(subject string, data []byte) audit.Entry {
	l.stored = l.stored.Add(time.Millisecond)
	e := audit.Entry{Seq: uint64(len(l.Entries) + 1), Subject: subject, Stored: l.stored, Data: data}
	l.Entries = append(l.Entries, e)
	return e
}

// Track makes e, a commit already among Entries, its client's latest, so that
// AppendCommit can continue a log built elsewhere.
func (l *Log) Track(e audit.Entry) error {
	rec, err := e.Record()
	if err != nil {
		return err
	}
	l.last[rec.Commit.Client] = rec
	return nil
}

// Last returns a client's latest commit.
func (l *Log) Last(client domain.ClientID) eventstore.Record { return l.last[client] }

// Records decodes every commit of the log, in order.
func (l *Log) Records() ([]eventstore.Record, error) {
	var out []eventstore.Record
	for _, e := range l.Entries {
		if e.Kind() != audit.KindCommit {
			continue
		}
		r, err := e.Record()
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Renumber returns entries with sequences 1..n in their current order, as a copy
// of them published to a fresh stream would be numbered.
func Renumber(entries []audit.Entry) []audit.Entry {
	out := make([]audit.Entry, len(entries))
	for i, e := range entries {
		e.Seq = uint64(i + 1)
		out[i] = e
	}
	return out
}
