package eventlog_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// LoadMany returns what Load returns, client by client: the latest commit, nothing for
// a client without one, the last authentic commit of a client whose subject ends in a
// forged message, and the same record for a client named twice.
func TestLoadManyLoadsWhatLoadLoads(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := t.Context()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	k := testCommitKey(t)
	store := eventlog.NewStore(js, eventlog.WithCommitKey(k))
	h := app.NewHandler(store, app.Config{CacheSize: -1})
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for i, c := range []domain.ClientID{"a", "b", "a", "vic"} {
		cmd := domain.Command{Type: domain.CommandOptOut, CommandID: "c" + string(rune('0'+i)), ClientID: c, At: at.Add(time.Duration(i) * time.Minute)}
		if _, err := h.Handle(ctx, cmd, app.Source{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: eventlog.EventSubject("vic"), Data: []byte("forged"),
		Header: nats.Header{audit.HeaderMAC: []string{"v1 " + k.ID() + " AAAA"}}}); err != nil {
		t.Fatal(err)
	}
	clients := []domain.ClientID{"a", "nobody", "vic", "b", "a"}
	got, err := store.LoadMany(ctx, clients)
	if err != nil {
		t.Fatal(err)
	}
	var want []eventstore.Record
	for _, c := range clients {
		r, err := store.Load(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadMany differs from Load (-Load +LoadMany):\n%s", diff)
	}
	if got[2].Position == 0 || got[1].Position != 0 {
		t.Errorf("vic at %d, nobody at %d; want vic's authentic commit and nothing", got[2].Position, got[1].Position)
	}
	if _, err := store.LoadMany(ctx, make([]domain.ClientID, eventlog.MaxLoadMany+1)); err == nil {
		t.Errorf("LoadMany of %d clients: no error, want one naming the limit", eventlog.MaxLoadMany+1)
	}
}

// AppendBatch checks each commit as Append does, in either mode: the new ones are
// stored where their records say, one decided on a stale position is a conflict, one
// already stored is a duplicate, and none of them disturbs the others (an atomic batch
// refused as a whole is appended commit by commit).
func TestAppendBatchChecksEachCommit(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		opts []eventlog.StoreOption
	}{{"async", nil}, {"atomic", []eventlog.StoreOption{eventlog.WithAtomicBatches()}}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			testAppendBatch(t, len(tt.opts) > 0, tt.opts...)
		})
	}
}

func testAppendBatch(t *testing.T, atomic bool, opts ...eventlog.StoreOption) {
	_, _, js := natstest.Start(t)
	ctx := t.Context()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	store := eventlog.NewStore(js, opts...)
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	commit := func(c domain.ClientID, id string) eventstore.Commit {
		return eventstore.Commit{Schema: eventstore.SchemaVersion, CommitID: id, CommandID: id, CommandType: domain.CommandOptOut,
			Client: c, At: at, State: domain.ClientState{Client: c, StudiesDisabled: true}}
	}
	// A clean batch: every commit where its record says.
	clean := store.AppendBatch(ctx, []eventstore.Pending{{Commit: commit("a", "a1")}, {Commit: commit("b", "b1")}, {Commit: commit("c", "c1")}})
	for _, a := range clean {
		if a.Err != nil {
			t.Fatalf("clean batch: %v", a.Err)
		}
		got, err := store.Get(ctx, a.Record.Position)
		if err != nil || got.Commit.CommandID != a.Record.Commit.CommandID || got.Hash != a.Record.Hash {
			t.Errorf("Get(%d) = %s %s, %v; want %s %s", a.Record.Position, got.Commit.CommandID, got.Hash, err, a.Record.Commit.CommandID, a.Record.Hash)
		}
	}
	stream, err := js.Stream(ctx, eventlog.EventsStream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetMsg(ctx, clean[0].Record.Position)
	if err != nil {
		t.Fatal(err)
	}
	if got := raw.Header.Get("Nats-Batch-Id") != ""; got != atomic {
		t.Errorf("clean batch stored as an atomic batch: %t, want %t", got, atomic)
	}
	old, err := store.Append(ctx, commit("moved", "m1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	done, err := store.Append(ctx, commit("done", "d1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := store.AppendBatch(ctx, []eventstore.Pending{
		{Commit: commit("new1", "n1")},
		{Commit: commit("moved", "m2"), Expected: 0}, // decided before m1 was stored
		{Commit: commit("done", "d1"), Expected: 0},  // stored already
		{Commit: commit("new2", "n2")},
	})
	for _, i := range []int{0, 3} {
		if out[i].Err != nil || out[i].Record.Position == 0 {
			t.Errorf("new commit %d: %+v, want stored", i, out[i])
		}
	}
	if !errors.Is(out[1].Err, eventstore.ErrConflict) {
		t.Errorf("stale commit: %v, want ErrConflict (the client is at %d)", out[1].Err, old.Position)
	}
	var dup *eventstore.DuplicateError
	if !errors.As(out[2].Err, &dup) || dup.Original.Position != done.Position {
		t.Errorf("stored commit again: %v, want a duplicate of %d", out[2].Err, done.Position)
	}
}
