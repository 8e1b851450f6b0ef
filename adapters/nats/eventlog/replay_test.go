package eventlog_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/eventlog/eventlogtest"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/eventstore"
)

func TestReplaySelections(t *testing.T) {
	t.Parallel()
	l := eventlogtest.New(t, 20, 3)
	n := uint64(len(l.Entries))
	for i, e := range l.Entries {
		if e.Seq != uint64(i+1) {
			t.Fatalf("entry %d has seq %d, want %d", i, e.Seq, i+1)
		}
	}
	client, commits := l.Busiest(t)
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
		{name: "stored since", opts: eventlog.ReplayOptions{Since: l.Mid},
			want: func(e audit.Entry) bool { return e.Seq > l.MidSeq }},
		{name: "stored until", opts: eventlog.ReplayOptions{Until: l.Mid},
			want: func(e audit.Entry) bool { return e.Seq <= l.MidSeq }},
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
			got := eventlogtest.ReplayAll(t, l.JS, tt.opts)
			var want []uint64
			for _, e := range l.Entries {
				if tt.want(e) {
					want = append(want, e.Seq)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("got %d entries, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].Seq != want[i] || string(got[i].Data) != string(l.Entries[want[i]-1].Data) {
					t.Fatalf("entry %d: got seq %d, want %d with the same bytes", i, got[i].Seq, want[i])
				}
			}
		})
	}
}

func TestReplayCommitsStopsOnError(t *testing.T) {
	t.Parallel()
	l := eventlogtest.New(t, 5, 2)
	stop := errors.New("enough")
	n := 0
	err := eventlog.ReplayCommits(context.Background(), l.JS, eventlog.ReplayOptions{}, func(r eventstore.Record) error {
		n++
		if r.Hash != eventstore.Hash(l.Entries[r.Position-1].Data) {
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
	l := eventlogtest.New(t, 10, 3)
	client, commits := l.Busiest(t)
	ctx := context.Background()
	// The same answers from direct get and from a scan of a stream without direct get.
	_, _, plain := natstest.Start(t)
	eventlogtest.CopyStream(t, plain, "COPY", l.Entries)
	for _, stream := range []struct {
		name string
		js   jetstream.JetStream
	}{{eventlog.EventsStream, l.JS}, {"COPY", plain}} {
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
