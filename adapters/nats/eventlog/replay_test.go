package eventlog_test

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

func TestReplaySelections(t *testing.T) {
	t.Parallel()
	l := newAuditLog(t, 20, 3)
	n := uint64(len(l.entries))
	for i, e := range l.entries {
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d, want %d", i, e.Seq, i+1)
		}
	}
	client, commits := l.busiest(t)
	tests := []struct {
		name string
		opts eventlog.ReplayOptions
		want func(audit.Entry) bool
	}{
		{name: "everything", want: func(audit.Entry) bool { return true }},
		{name: "one client's commits", opts: eventlog.ReplayOptions{Subjects: []string{eventlog.EventSubject(client)}},
			want: func(e audit.Entry) bool { return e.Subject == eventlog.EventSubject(client) }},
		{name: "rejections", opts: eventlog.ReplayOptions{Subjects: []string{eventlog.RejectionSubjects}},
			want: func(e audit.Entry) bool { return e.Kind() == audit.KindRejection }},
		{name: "sequence range", opts: eventlog.ReplayOptions{From: 5, To: n - 5},
			want: func(e audit.Entry) bool { return e.Seq >= 5 && e.Seq <= n-5 }},
		{name: "stored since", opts: eventlog.ReplayOptions{Since: l.mid},
			want: func(e audit.Entry) bool { return e.Seq > l.midSeq }},
		{name: "stored until", opts: eventlog.ReplayOptions{Until: l.mid},
			want: func(e audit.Entry) bool { return e.Seq <= l.midSeq }},
		{name: "client and range", opts: eventlog.ReplayOptions{Subjects: []string{eventlog.EventSubject(client)},
			From: commits[1].Seq, To: commits[2].Seq},
			want: func(e audit.Entry) bool {
				return e.Subject == eventlog.EventSubject(client) && e.Seq >= commits[1].Seq && e.Seq <= commits[2].Seq
			}},
		{name: "a client with nothing", opts: eventlog.ReplayOptions{Subjects: []string{eventlog.EventSubject("nobody")}},
			want: func(audit.Entry) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := replayAll(t, l.js, tt.opts)
			var want []uint64
			for _, e := range l.entries {
				if tt.want(e) {
					want = append(want, e.Seq)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("got %d entries, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].Seq != want[i] || string(got[i].Data) != string(l.entries[want[i]-1].Data) {
					t.Fatalf("entry %d: got seq %d, want %d with the same bytes", i, got[i].Seq, want[i])
				}
			}
		})
	}
}

func TestReplayCommitsStopsOnError(t *testing.T) {
	t.Parallel()
	l := newAuditLog(t, 5, 2)
	stop := errors.New("enough")
	n := 0
	err := eventlog.ReplayCommits(context.Background(), l.js, eventlog.ReplayOptions{}, func(r eventstore.Record) error {
		n++
		if r.Hash != eventstore.Hash(l.entries[r.Position-1].Data) {
			t.Errorf("record %d: hash differs from the stored bytes' hash", r.Position)
		}
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("got %v after %d records, want the callback's error after 3", err, n)
	}
}

func TestClientAsOf(t *testing.T) {
	t.Parallel()
	l := newAuditLog(t, 10, 3)
	client, commits := l.busiest(t)
	ctx := context.Background()
	// The same answers from direct get and from a scan of a stream without direct get.
	_, _, plain := natstest.Start(t)
	copyStream(t, plain, "COPY", l.entries)
	for _, stream := range []struct {
		name string
		js   jetstream.JetStream
	}{{eventlog.EventsStream, l.js}, {"COPY", plain}} {
		t.Run(stream.name, func(t *testing.T) {
			for i, c := range commits {
				// By sequence: at the commit, and just before the next one.
				for _, upTo := range []uint64{c.Seq, nextSeq(commits, i) - 1} {
					r, _, err := eventlog.ClientAsOf(ctx, stream.js, stream.name, client, upTo, time.Time{})
					if err != nil {
						t.Fatal(err)
					}
					if r.Position != c.Seq {
						t.Errorf("as of seq %d: got commit %d, want %d", upTo, r.Position, c.Seq)
					}
				}
				// By stored time: the instant it was stored.
				r, stored, err := eventlog.ClientAsOf(ctx, stream.js, stream.name, client, 0, c.Stored)
				if err != nil {
					t.Fatal(err)
				}
				if stream.name == eventlog.EventsStream && (r.Position != c.Seq || !stored.Equal(c.Stored)) {
					t.Errorf("as of %s: got commit %d stored %s, want %d", c.Stored, r.Position, stored, c.Seq)
				}
			}
			if commits[0].Seq > 1 { // up to 0 would mean the latest
				r, _, err := eventlog.ClientAsOf(ctx, stream.js, stream.name, client, commits[0].Seq-1, time.Time{})
				if err != nil || r.Position != 0 {
					t.Errorf("before the first commit: got %d, %v; want no commit", r.Position, err)
				}
			}
			r, _, err := eventlog.ClientAsOf(ctx, stream.js, stream.name, client, 0, commits[0].Stored.Add(-time.Nanosecond))
			if err != nil || r.Position != 0 {
				t.Errorf("stored before the first commit: got %d, %v; want no commit", r.Position, err)
			}
			last, _, err := eventlog.ClientAsOf(ctx, stream.js, stream.name, client, 0, time.Time{})
			if err != nil || last.Position != commits[len(commits)-1].Seq {
				t.Errorf("latest: got %d, %v; want %d", last.Position, err, commits[len(commits)-1].Seq)
			}
		})
	}
}

func nextSeq(commits []audit.Entry, i int) uint64 {
	if i+1 < len(commits) {
		return commits[i+1].Seq
	}
	return commits[i].Seq + 1
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
