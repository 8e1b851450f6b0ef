// Package eventlogtest builds real studyd logs for tests of the packages that read
// them (eventlog's replay, checkpoint's verification): a simulated fleet's commands
// applied by the app handler to the JetStream store on an embedded server.
package eventlogtest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/simulate"
)

// Log is a real studyd log on an embedded server: a simulated fleet's commands
// applied by the app handler to the JetStream store, refusals recorded as rejections.
type Log struct {
	JS      jetstream.JetStream
	Store   *eventlog.Store
	Entries []audit.Entry // every message, as replay reads it
	Mid     time.Time     // between the first and second half of the commands
	MidSeq  uint64        // the last sequence before Mid
}

// New applies clients × days of a simulated fleet (seed 11) on a fresh server.
func New(t *testing.T, clients, days int) *Log {
	t.Helper()
	_, _, js := natstest.Start(t)
	ctx := context.Background()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	l := &Log{JS: js, Store: eventlog.NewStore(js)}
	h := app.NewHandler(l.Store, app.Config{})
	fleet, err := simulate.New(simulate.Config{Clients: clients, Days: days, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	var cmds []domain.Command
	if err := fleet.Each(func(c domain.Command) error { cmds = append(cmds, c); return nil }); err != nil {
		t.Fatal(err)
	}
	apply := func(cmds []domain.Command) {
		for _, cmd := range cmds {
			_, err := h.Handle(ctx, cmd, app.Source{})
			if err == nil {
				continue
			}
			if !errors.Is(err, domain.ErrInvalid) && !errors.Is(err, domain.ErrIllegalTransition) && !errors.Is(err, domain.ErrStaleRun) {
				t.Fatalf("handle %s: %v", cmd.CommandID, err)
			}
			if _, err := l.Store.Reject(ctx, eventstore.Rejection{CommandID: cmd.CommandID, Client: cmd.ClientID,
				Code: domain.ClassifyRejection(err), Error: err.Error(), At: cmd.At}); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply(cmds[:len(cmds)/2])
	l.MidSeq = l.LastSeq(t)
	time.Sleep(5 * time.Millisecond) // stored times on either side of Mid differ
	l.Mid = time.Now()
	time.Sleep(5 * time.Millisecond)
	apply(cmds[len(cmds)/2:])
	l.Entries = ReplayAll(t, js, eventlog.ReplayOptions{})
	return l
}

// LastSeq is the log's last sequence.
func (l *Log) LastSeq(t *testing.T) uint64 {
	t.Helper()
	_, last, _, err := eventlog.ReplayBounds(context.Background(), l.JS, eventlog.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return last
}

// ReplayAll returns every entry o selects.
func ReplayAll(t *testing.T, js jetstream.JetStream, o eventlog.ReplayOptions) []audit.Entry {
	t.Helper()
	var out []audit.Entry
	if err := eventlog.Replay(context.Background(), js, o, func(e audit.Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("replay %+v: %v", o, err)
	}
	return out
}

// Busiest returns the client with the most commits and their entries.
func (l *Log) Busiest(t *testing.T) (domain.ClientID, []audit.Entry) {
	t.Helper()
	by := map[domain.ClientID][]audit.Entry{}
	var best domain.ClientID
	for _, e := range l.Entries {
		if e.Kind() != audit.KindCommit {
			continue
		}
		c := e.SubjectClient()
		by[c] = append(by[c], e)
		if len(by[c]) > len(by[best]) {
			best = c
		}
	}
	if len(by[best]) < 4 {
		t.Fatalf("no client with 4 commits")
	}
	return best, by[best]
}

// CopyStream creates a stream named name WITHOUT the deny flags on js and fills it
// with entries, as a forger with admin rights could. The copy's sequences are its own.
func CopyStream(t *testing.T, js jetstream.JetStream, name string, entries []audit.Entry) jetstream.Stream {
	t.Helper()
	ctx := context.Background()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name,
		Subjects: []string{eventlog.EventSubjects, eventlog.RejectionSubjects}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: e.Subject, Data: e.Data}, jetstream.WithExpectStream(name)); err != nil {
			t.Fatal(err)
		}
	}
	return st
}
