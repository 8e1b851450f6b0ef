package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// replicaStore is a MemoryStore whose plain reads a replica behind the log answers, as
// eventlog.Store's direct gets may be on a replicated stream: Load returns a client's
// record as it was when the replica stopped (held in behind), and Applied knows none of
// the ids in unseen. LoadLatest and AppliedLatest read the log as it is, as the stream
// leader answers them.
type replicaStore struct {
	*eventstore.MemoryStore
	behind map[domain.ClientID]eventstore.Record
	unseen map[string]bool
}

func newReplicaStore() *replicaStore {
	return &replicaStore{MemoryStore: eventstore.NewMemoryStore(),
		behind: map[domain.ClientID]eventstore.Record{}, unseen: map[string]bool{}}
}

func (s *replicaStore) Load(ctx context.Context, client domain.ClientID) (eventstore.Record, error) {
	if r, ok := s.behind[client]; ok {
		return r, nil
	}
	return s.MemoryStore.Load(ctx, client)
}

func (s *replicaStore) LoadLatest(ctx context.Context, client domain.ClientID) (eventstore.Record, error) {
	return s.MemoryStore.Load(ctx, client)
}

func (s *replicaStore) Applied(ctx context.Context, client domain.ClientID, commandID string) (uint64, bool, error) {
	if s.unseen[commandID] {
		return 0, false, nil
	}
	return s.MemoryStore.Applied(ctx, client, commandID)
}

func (s *replicaStore) AppliedLatest(ctx context.Context, client domain.ClientID, commandID string) (uint64, bool, error) {
	return s.MemoryStore.Applied(ctx, client, commandID)
}

// handleEach applies cmd with a new handler's Handle, then again with another new
// handler's HandleBatch (the intake's way), and returns each one's error.
func handleEach(t *testing.T, store *replicaStore, cmd domain.Command) map[string]error {
	t.Helper()
	ctx := context.Background()
	_, errHandle := app.NewHandler(store, app.Config{}).Handle(ctx, cmd, app.Source{})
	batch := app.NewHandler(store, app.Config{}).HandleBatch(ctx, []app.Request{{Cmd: cmd}})
	return map[string]error{"Handle": errHandle, "HandleBatch (after Handle)": batch[0].Err}
}

// TestReplicaBehindNeverRefusesAValidCommand: a handler with a cold cache loads a
// client from a replica that has not seen the commit enrolling it. The unenroll that
// follows is valid on the log as written; refused on the replica's record, it would be
// refused for good (TestClusterFaults could meet this after a node came back).
func TestReplicaBehindNeverRefusesAValidCommand(t *testing.T) {
	t.Parallel()
	store := newReplicaStore()
	ctx := context.Background()
	writer := app.NewHandler(store, app.Config{})
	warm := domain.Command{Type: domain.CommandOptOut, CommandID: "warm", ClientID: "c1", At: t0, StudiesEnabled: true}
	before, err := writer.Handle(ctx, warm, app.Source{})
	if err != nil {
		t.Fatal(err)
	}
	store.behind["c1"] = before.Record // the replica stops here
	if _, err := writer.Handle(ctx, run("c1", "enroll", t0.Add(time.Minute)), app.Source{}); err != nil {
		t.Fatal(err)
	}
	unenroll := domain.Command{Type: domain.CommandUnenroll, CommandID: "end", ClientID: "c1", At: t0.Add(2 * time.Minute),
		Study: &domain.StudyRef{Object: domain.PreferenceStudy, Key: "pref-flip"}}
	for way, err := range handleEach(t, store, unenroll) {
		if err != nil {
			t.Errorf("%s(unenroll) on a replica's stale record: %v, want it applied (or a duplicate)", way, err)
		}
	}
	last, err := store.LoadLatest(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got := last.Commit.State.StateOf(*unenroll.Study); got != domain.StateUnenrolled || last.Commit.CommandID != "end" {
		t.Errorf("latest commit is %s with the study %s, want the unenroll's with %s", last.Commit.CommandID, got, domain.StateUnenrolled)
	}
}

// TestReplicaBehindNeverRefusesARedeliveredCommand: a command applied long enough ago
// that its id has left the client's latest commit is redelivered, and the replica
// answering the index has not seen the id. Decided anew it is a stale run; the leader's
// index knows it, so it is answered as the duplicate it is.
func TestReplicaBehindNeverRefusesARedeliveredCommand(t *testing.T) {
	t.Parallel()
	store := newReplicaStore()
	ctx := context.Background()
	writer := app.NewHandler(store, app.Config{})
	first := run("c1", "run-0", t0)
	for i := range eventstore.RecentCommands + 2 {
		cmd := run("c1", fmt.Sprintf("run-%d", i), t0.Add(time.Duration(i)*time.Hour))
		if _, err := writer.Handle(ctx, cmd, app.Source{}); err != nil {
			t.Fatal(err)
		}
	}
	store.unseen[first.CommandID] = true
	for way, err := range handleEach(t, store, first) {
		if err != nil {
			t.Errorf("%s(redelivered %s) with the replica's index behind: %v, want a duplicate", way, first.CommandID, err)
		}
	}
	res, err := app.NewHandler(store, app.Config{}).Handle(ctx, first, app.Source{})
	if err != nil || !res.Duplicate {
		t.Errorf("Handle(redelivered %s) = duplicate %t, %v; want a duplicate", first.CommandID, res.Duplicate, err)
	}
}
