package eventlog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// TestLatestReadsNeverAskAReplica: LoadLatest and AppliedLatest read what Load and
// Applied read — the client's last authentic commit past a forged one, an id applied
// long ago, nothing for a deleted key — and never with a direct get, which any replica
// of a replicated stream may answer from behind the leader: on a connection that may
// not send direct gets, they still answer and Load does not.
func TestLatestReadsNeverAskAReplica(t *testing.T) {
	s := natstest.StartServer(t, natstest.Config{Users: []*server.User{
		{Username: "all", Password: "all"},
		{Username: "nodirect", Password: "nodirect", Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{">"}, Deny: []string{"$JS.API.DIRECT.GET.>"}},
			Subscribe: &server.SubjectPermission{Allow: []string{">"}},
		}},
	}})
	connect := func(user string) jetstream.JetStream {
		_, js := natstest.Connect(t, s, nats.UserInfo(user, user))
		return js
	}
	ctx := t.Context()
	js := connect("all")
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	k := testCommitKey(t)
	store := eventlog.NewStore(js, eventlog.WithCommitKey(k))
	h := app.NewHandler(store, app.Config{})
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	var first, last eventstore.Record
	for i := range eventstore.RecentCommands + 2 {
		res, err := h.Handle(ctx, optOut("c1", fmt.Sprintf("cmd-%d", i), t0.Add(time.Duration(i)*time.Minute), i%2 == 0), app.Source{})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = res.Record
		}
		last = res.Record
	}
	forged := last.Commit
	forged.CommandID, forged.PrevHash = "forged", last.Hash
	publishForged(t, js, k, forged)

	latest := eventlog.NewStore(connect("nodirect"), eventlog.WithCommitKey(k))
	if r, err := latest.LoadLatest(ctx, "c1"); err != nil || r.Position != last.Position || r.Hash != last.Hash {
		t.Errorf("LoadLatest(c1) = position %d, %v; want the last authentic commit at %d", r.Position, err, last.Position)
	}
	if r, err := latest.LoadLatest(ctx, "nobody"); err != nil || r.Position != 0 {
		t.Errorf("LoadLatest(nobody) = position %d, %v; want none", r.Position, err)
	}
	if _, err := latest.LoadLatest(ctx, "bad.client"); err == nil {
		t.Errorf("LoadLatest(bad.client): got no error for an id that is not a subject token")
	}
	if pos, ok, err := latest.AppliedLatest(ctx, "c1", "cmd-0"); err != nil || !ok || pos != first.Position {
		t.Errorf("AppliedLatest(c1, cmd-0) = %d, %t, %v; want %d", pos, ok, err, first.Position)
	}
	if _, ok, err := latest.AppliedLatest(ctx, "c1", "never"); err != nil || ok {
		t.Errorf("AppliedLatest(c1, never) = %t, %v; want not applied", ok, err)
	}
	kv, err := js.KeyValue(ctx, eventlog.AppliedBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, eventlog.AppliedKey("c1", "cmd-0")); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := latest.AppliedLatest(ctx, "c1", "cmd-0"); err != nil || ok {
		t.Errorf("AppliedLatest(c1, cmd-0) after its key was deleted = %t, %v; want not applied", ok, err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond) // a refused request is never answered
	defer cancel()
	if _, err := latest.Load(short, "c1"); err == nil {
		t.Errorf("Load(c1) without the right to direct gets: got no error; is Load no longer a direct get?")
	}
}

// laggingIndex is the store's applied-id index as a replica that has not seen the ids
// in unseen answers it; AppliedLatest reads the leader, which has.
type laggingIndex struct {
	*eventlog.Store
	unseen map[string]bool
}

func (ix laggingIndex) Applied(ctx context.Context, client domain.ClientID, commandID string) (uint64, bool, error) {
	if ix.unseen[commandID] {
		return 0, false, nil
	}
	return ix.Store.Applied(ctx, client, commandID)
}

// TestRedeliveryIsNeverAppliedTwice: a command applied long ago (its id has left the
// client's last commit, and the stream's dedup window has passed) is delivered again,
// and the replica answering the index has not seen its id. An opt-out the client's
// state accepts again would be appended a second time: nothing in the append can tell.
// A redelivery (app.Source.Redelivered) is looked up on the leader, and is a duplicate.
func TestRedeliveryIsNeverAppliedTwice(t *testing.T) {
	t.Parallel()
	store := shortWindowStore(t)
	ctx := t.Context()
	writer := app.NewHandler(store, app.Config{})
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for i := range eventstore.RecentCommands + 2 {
		if _, err := writer.Handle(ctx, optOut("c1", fmt.Sprintf("opt-%d", i), t0.Add(time.Duration(i)*time.Minute), i%2 == 1), app.Source{Seq: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // past the stream's dedup window
	first := optOut("c1", "opt-0", t0, false)
	index := laggingIndex{Store: store, unseen: map[string]bool{first.CommandID: true}}
	again := app.Source{Seq: 1, Redelivered: true}
	res, err := app.NewHandler(store, app.Config{Index: index}).Handle(ctx, first, again)
	if err != nil || !res.Duplicate {
		t.Errorf("Handle(redelivered %s) = duplicate %t, %v; want a duplicate", first.CommandID, res.Duplicate, err)
	}
	batch := app.NewHandler(store, app.Config{Index: index}).HandleBatch(ctx, []app.Request{{Cmd: first, Src: again}})
	if batch[0].Err != nil || !batch[0].Result.Duplicate {
		t.Errorf("HandleBatch(redelivered %s) = duplicate %t, %v; want a duplicate", first.CommandID, batch[0].Result.Duplicate, batch[0].Err)
	}
	if n, _ := commitsOf(t, store, "c1", first.CommandID); n != 1 {
		t.Errorf("%s is applied by %d commits, want 1", first.CommandID, n)
	}
}
