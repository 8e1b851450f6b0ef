package app_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/simulate"
)

// waves splits cmds into batches of distinct clients, keeping each client's commands
// in order: the shape the intake hands HandleBatch.
func waves(cmds []domain.Command, size int) [][]app.Request {
	var out [][]app.Request
	var wave []app.Request
	in := map[domain.ClientID]bool{}
	for _, c := range cmds {
		if in[c.ClientID] || len(wave) == size {
			out = append(out, wave)
			wave, in = nil, map[domain.ClientID]bool{}
		}
		wave = append(wave, app.Request{Cmd: c})
		in[c.ClientID] = true
	}
	return append(out, wave)
}

// clientLogs is every client's commits in log order, without what depends on where
// other clients' commits fell (positions and the hashes that cover them).
func clientLogs(t *testing.T, store eventstore.Store) map[domain.ClientID][]eventstore.Commit {
	t.Helper()
	out := map[domain.ClientID][]eventstore.Commit{}
	err := store.Read(context.Background(), eventstore.Query{}, func(r eventstore.Record) error {
		c := r.Commit
		c.PrevHash = ""
		c.Recent = nil
		out[c.Client] = append(out[c.Client], c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// HandleBatch decides every command exactly as Handle does: a simulated fleet handled
// in batches of distinct clients leaves the same commits, client by client, as the
// same fleet handled one command at a time.
func TestHandleBatchDecidesAsHandleDoes(t *testing.T) {
	t.Parallel()
	fleet, err := simulate.New(simulate.Config{Clients: 120, Days: 6, Seed: 21})
	if err != nil {
		t.Fatal(err)
	}
	var cmds []domain.Command
	if err := fleet.Each(func(c domain.Command) error { cmds = append(cmds, c); return nil }); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	one, batched := eventstore.NewMemoryStore(), eventstore.NewMemoryStore()
	h1, hb := app.NewHandler(one, app.Config{}), app.NewHandler(batched, app.Config{})
	for _, c := range cmds {
		if _, err := h1.Handle(ctx, c, app.Source{}); err != nil {
			t.Fatalf("Handle %s: %v", c.CommandID, err)
		}
	}
	for _, w := range waves(cmds, 32) {
		for i, r := range hb.HandleBatch(ctx, w) {
			if r.Err != nil || r.Result.Duplicate || r.Result.Record.Position == 0 {
				t.Fatalf("HandleBatch %s = %+v, %v; want applied", w[i].Cmd.CommandID, r.Result, r.Err)
			}
		}
	}
	if diff := cmp.Diff(clientLogs(t, one), clientLogs(t, batched)); diff != "" {
		t.Errorf("commits per client differ (-one by one +batched):\n%s", diff)
	}
	// A batch sent again is answered as duplicates of the same commits.
	w := waves(cmds, 32)[0]
	for i, r := range hb.HandleBatch(ctx, w) {
		if r.Err != nil || !r.Result.Duplicate {
			t.Errorf("HandleBatch again %s = %+v, %v; want a duplicate", w[i].Cmd.CommandID, r.Result, r.Err)
		}
	}
}

// movedFirst is a store on which another writer appends to one client just before a
// batch's commits are appended.
type movedFirst struct {
	*eventstore.MemoryStore
	other  *app.Handler
	client domain.ClientID
	done   bool
}

func (s *movedFirst) AppendBatch(ctx context.Context, batch []eventstore.Pending) []eventstore.Appended {
	if !s.done {
		s.done = true
		if _, err := s.other.Handle(ctx, run(s.client, "other-writer", t0), app.Source{}); err != nil {
			panic(err)
		}
	}
	out := make([]eventstore.Appended, len(batch))
	for i, p := range batch {
		out[i].Record, out[i].Err = s.Append(ctx, p.Commit, p.Expected)
	}
	return out
}

// A commit of a batch that loses its client to another writer is decided again on
// top of that writer's commit; the rest of the batch is not disturbed.
func TestHandleBatchDecidesAgainAfterAConflict(t *testing.T) {
	t.Parallel()
	mem := eventstore.NewMemoryStore()
	store := &movedFirst{MemoryStore: mem, other: app.NewHandler(mem, app.Config{}), client: "c2"}
	h := app.NewHandler(store, app.Config{})
	ctx := context.Background()
	reqs := []app.Request{{Cmd: run("c1", "a", t0)}, {Cmd: run("c2", "b", t0)}, {Cmd: run("c3", "c", t0)}}
	for i, r := range h.HandleBatch(ctx, reqs) {
		if r.Err != nil || r.Result.Duplicate {
			t.Fatalf("HandleBatch %s = %+v, %v; want applied", reqs[i].Cmd.CommandID, r.Result, r.Err)
		}
	}
	var got []eventstore.Record
	_ = mem.Read(ctx, eventstore.Query{Client: "c2"}, func(r eventstore.Record) error { got = append(got, r); return nil })
	if len(got) != 2 || got[0].Commit.CommandID != "other-writer" || got[1].Commit.CommandID != "b" {
		t.Fatalf("c2's commits = %+v, want other-writer then b", got)
	}
	if got[1].Commit.PrevHash != got[0].Hash {
		t.Errorf("b's prev hash = %q, want the other writer's commit's hash %q", got[1].Commit.PrevHash, got[0].Hash)
	}
}
