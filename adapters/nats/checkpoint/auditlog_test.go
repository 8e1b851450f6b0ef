package checkpoint_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/checkpoint"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/simulate"
)

// auditLog is a real studyd log on an embedded server: a simulated fleet's commands
// applied by the app handler to the JetStream store, refusals recorded as rejections.
type auditLog struct {
	js      jetstream.JetStream
	store   *eventlog.Store
	entries []audit.Entry // every message, as replay reads it
	mid     time.Time     // between the first and second half of the commands
	midSeq  uint64        // the last sequence before mid
}

func newAuditLog(t *testing.T, clients, days int) *auditLog {
	t.Helper()
	_, _, js := natstest.Start(t)
	ctx := context.Background()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	l := &auditLog{js: js, store: eventlog.NewStore(js)}
	h := app.NewHandler(l.store, app.Config{})
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
			if _, err := l.store.Reject(ctx, eventstore.Rejection{CommandID: cmd.CommandID, Client: cmd.ClientID,
				Code: domain.ClassifyRejection(err), Error: err.Error(), At: cmd.At}); err != nil {
				t.Fatal(err)
			}
		}
	}
	apply(cmds[:len(cmds)/2])
	l.midSeq = l.lastSeq(t)
	time.Sleep(5 * time.Millisecond) // stored times on either side of mid differ
	l.mid = time.Now()
	time.Sleep(5 * time.Millisecond)
	apply(cmds[len(cmds)/2:])
	l.entries = replayAll(t, js, eventlog.ReplayOptions{})
	return l
}

func (l *auditLog) lastSeq(t *testing.T) uint64 {
	t.Helper()
	_, last, _, err := eventlog.ReplayBounds(context.Background(), l.js, eventlog.ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return last
}

func replayAll(t *testing.T, js jetstream.JetStream, o eventlog.ReplayOptions) []audit.Entry {
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

// busiest returns the client with the most commits and their entries.
func (l *auditLog) busiest(t *testing.T) (domain.ClientID, []audit.Entry) {
	t.Helper()
	by := map[domain.ClientID][]audit.Entry{}
	var best domain.ClientID
	for _, e := range l.entries {
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

// copyStream creates a stream named name WITHOUT the deny flags on js and fills it
// with entries (as tamper returns them), as a forger with admin rights could. The
// copy's sequences are its own.
func copyStream(t *testing.T, js jetstream.JetStream, name string, entries []audit.Entry) jetstream.Stream {
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

// copyCheckpoints copies the checkpoints of the original log, signatures intact.
func copyCheckpoints(t *testing.T, from, to jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	if _, err := checkpoint.EnsureStream(ctx, to, 1); err != nil {
		t.Fatal(err)
	}
	for _, e := range replayAll(t, from, eventlog.ReplayOptions{Stream: checkpoint.Stream}) {
		if _, err := to.Publish(ctx, e.Subject, e.Data); err != nil {
			t.Fatal(err)
		}
	}
}

func mustKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, key
}
