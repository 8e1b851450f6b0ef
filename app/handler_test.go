package app_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/recipe"
)

var t0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

// run returns a recipe_run enrolling client in one preference study.
func run(client domain.ClientID, id string, at time.Time) domain.Command {
	return domain.Command{
		Type: domain.CommandRecipeRun, CommandID: id, ClientID: client, At: at,
		RunnerStatus: domain.RunnerSuccess,
		Actions:      []domain.ActionReport{{Name: "preference-experiment", Status: domain.ActionSuccess}},
		Recipes: []domain.RecipeReport{{
			ID: 7, Action: "preference-experiment", Status: domain.RecipeSuccess,
			Arguments: recipe.Must(recipe.Study{Slug: "pref-flip", PreferenceName: "browser.x",
				Branches: []recipe.Branch{{Slug: "control", Ratio: 1}, {Slug: "treatment", Ratio: 1}}}),
		}},
	}
}

func TestHandleAppliesAndChains(t *testing.T) {
	t.Parallel()
	store := eventstore.NewMemoryStore()
	h := app.NewHandler(store, app.Config{})
	ctx := context.Background()

	first, err := h.Handle(ctx, run("c1", "cmd-1", t0), app.Source{Seq: 1})
	if err != nil {
		t.Fatalf("Handle cmd-1: %v", err)
	}
	if first.Duplicate || first.Record.Commit.PrevHash != "" {
		t.Fatalf("first commit: duplicate=%t prev=%q, want false and empty", first.Duplicate, first.Record.Commit.PrevHash)
	}
	if got := first.Record.Commit.State.StateOf(domain.StudyRef{Object: domain.PreferenceStudy, Key: "pref-flip"}); got != domain.StateEnrolled {
		t.Fatalf("state after enrolling run = %s, want %s", got, domain.StateEnrolled)
	}
	second, err := h.Handle(ctx, run("c1", "cmd-2", t0.Add(time.Hour)), app.Source{Seq: 2})
	if err != nil {
		t.Fatalf("Handle cmd-2: %v", err)
	}
	if second.Record.Commit.PrevHash != first.Record.Hash {
		t.Errorf("second commit's prev hash = %q, want the first's hash %q", second.Record.Commit.PrevHash, first.Record.Hash)
	}
	if n := len(second.Record.Commit.Recent); n != 2 || second.Record.Commit.Recent[0].Position != first.Record.Position {
		t.Errorf("recent = %+v, want 2 entries, the first at position %d", second.Record.Commit.Recent, first.Record.Position)
	}
}

func TestHandleRecognisesDuplicates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		again domain.Command
		src   app.Source
	}{
		{name: "same command id", again: run("c1", "cmd-1", t0), src: app.Source{}},
		{name: "redelivered stream sequence", again: run("c1", "cmd-1", t0), src: app.Source{Seq: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			store := eventstore.NewMemoryStore()
			ctx := context.Background()
			orig, err := app.NewHandler(store, app.Config{}).Handle(ctx, run("c1", "cmd-1", t0), app.Source{Seq: 1})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := app.NewHandler(store, app.Config{}).Handle(ctx, run("c1", "cmd-2", t0.Add(time.Hour)), app.Source{Seq: 2}); err != nil {
				t.Fatal(err)
			}
			// A fresh handler (a restarted instance) has an empty cache.
			got, err := app.NewHandler(store, app.Config{}).Handle(ctx, tt.again, tt.src)
			if err != nil {
				t.Fatalf("Handle again: %v", err)
			}
			if !got.Duplicate || got.Record.Position != orig.Record.Position {
				t.Errorf("got duplicate=%t at %d, want duplicate of position %d", got.Duplicate, got.Record.Position, orig.Record.Position)
			}
			n := 0
			_ = store.Read(ctx, eventstore.Query{}, func(eventstore.Record) error { n++; return nil })
			if n != 2 {
				t.Errorf("log holds %d commits, want 2", n)
			}
		})
	}
}

func TestHandleRejects(t *testing.T) {
	t.Parallel()
	store := eventstore.NewMemoryStore()
	h := app.NewHandler(store, app.Config{})
	ctx := context.Background()
	if _, err := h.Handle(ctx, run("c1", "cmd-1", t0), app.Source{}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cmd  domain.Command
		want error
	}{
		{name: "invalid", cmd: domain.Command{Type: domain.CommandRecipeRun, CommandID: "x", ClientID: "c1"}, want: domain.ErrInvalid},
		{name: "unknown type", cmd: domain.Command{Type: "launch", CommandID: "x", ClientID: "c1", At: t0}, want: domain.ErrUnknownCommandType},
		{name: "stale run", cmd: run("c1", "old", t0.Add(-time.Hour)), want: domain.ErrStaleRun},
		{name: "illegal", cmd: domain.Command{Type: domain.CommandUnenroll, CommandID: "u", ClientID: "c1", At: t0,
			Study: &domain.StudyRef{Object: domain.PreferenceStudy, Key: "never-enrolled"}}, want: domain.ErrIllegalTransition},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := h.Handle(ctx, tt.cmd, app.Source{}); !errors.Is(err, tt.want) {
				t.Errorf("Handle error = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestConcurrentHandlersApplyEachCommandOnce runs several handlers (instances with their
// own caches) on the same clients at once: conflicts are retried, nothing is lost, and
// each command is applied exactly once.
func TestConcurrentHandlersApplyEachCommandOnce(t *testing.T) {
	t.Parallel()
	store := eventstore.NewMemoryStore()
	ctx := context.Background()
	const handlers, clients, perClient = 4, 3, 30
	var wg sync.WaitGroup
	for w := range handlers {
		h := app.NewHandler(store, app.Config{MaxConflicts: 1000})
		wg.Go(func() {
			for i := range perClient {
				for c := range clients {
					// Every handler submits every command: exactly one must apply it.
					cmd := domain.Command{Type: domain.CommandOptOut, ClientID: domain.ClientID(fmt.Sprintf("c%d", c)),
						CommandID: fmt.Sprintf("c%d-%d", c, i), At: t0.Add(time.Duration(i) * time.Minute), StudiesEnabled: i%2 == 1}
					if _, err := h.Handle(ctx, cmd, app.Source{}); err != nil {
						t.Errorf("handler %d: %v", w, err)
					}
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	_ = store.Read(ctx, eventstore.Query{}, func(r eventstore.Record) error { seen[r.Commit.CommandID]++; return nil })
	if len(seen) != clients*perClient {
		t.Errorf("%d distinct commands applied, want %d", len(seen), clients*perClient)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("command %s applied %d times, want 1", id, n)
		}
	}
}

// TestStaleCacheNeverRejectsAValidCommand: another instance enrolls the client, so this
// handler's cached state is behind; an unenroll that is legal in the real state must be
// applied, not rejected.
func TestStaleCacheNeverRejectsAValidCommand(t *testing.T) {
	t.Parallel()
	store := eventstore.NewMemoryStore()
	ctx := context.Background()
	mine, other := app.NewHandler(store, app.Config{}), app.NewHandler(store, app.Config{})
	warm := domain.Command{Type: domain.CommandOptOut, CommandID: "warm", ClientID: "c1", At: t0, StudiesEnabled: true}
	if _, err := mine.Handle(ctx, warm, app.Source{}); err != nil { // caches c1 with no enrollment
		t.Fatal(err)
	}
	if _, err := other.Handle(ctx, run("c1", "enroll", t0.Add(time.Minute)), app.Source{}); err != nil {
		t.Fatal(err)
	}
	unenroll := domain.Command{Type: domain.CommandUnenroll, CommandID: "end", ClientID: "c1", At: t0.Add(2 * time.Minute),
		Study: &domain.StudyRef{Object: domain.PreferenceStudy, Key: "pref-flip"}}
	res, err := mine.Handle(ctx, unenroll, app.Source{})
	if err != nil {
		t.Fatalf("Handle(unenroll) from a stale cache: %v, want it applied", err)
	}
	if got := res.Record.Commit.State.StateOf(*unenroll.Study); got != domain.StateUnenrolled {
		t.Errorf("state after unenroll = %s, want %s", got, domain.StateUnenrolled)
	}
}

// TestDuplicateFromWarmCacheCarriesTheOriginalEvents: the cache keeps no events, so a
// duplicate answered from it must read the original commit back.
func TestDuplicateFromWarmCacheCarriesTheOriginalEvents(t *testing.T) {
	t.Parallel()
	h := app.NewHandler(eventstore.NewMemoryStore(), app.Config{})
	ctx := context.Background()
	first, err := h.Handle(ctx, run("c1", "cmd-1", t0), app.Source{Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.Handle(ctx, run("c1", "cmd-1", t0), app.Source{Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || len(again.Record.Commit.Events) != len(first.Record.Commit.Events) || len(first.Record.Commit.Events) == 0 {
		t.Errorf("duplicate = %t with %d events, want true with the original's %d", again.Duplicate,
			len(again.Record.Commit.Events), len(first.Record.Commit.Events))
	}
}

// TestCacheBytesBoundsTheHandlersCache: a handler with a small byte bound keeps its
// cache within it over many clients, and still decides every client from the log once
// its record is evicted.
func TestCacheBytesBoundsTheHandlersCache(t *testing.T) {
	t.Parallel()
	const bound = 64 << 10
	store := eventstore.NewMemoryStore()
	h := app.NewHandler(store, app.Config{CacheBytes: bound})
	ctx := context.Background()
	for i := range 2000 {
		c := domain.ClientID(fmt.Sprintf("c%d", i))
		if _, err := h.Handle(ctx, run(c, "cmd-1", t0), app.Source{}); err != nil {
			t.Fatalf("Handle %s: %v", c, err)
		}
		if got := h.CachedBytes(); got > bound {
			t.Fatalf("after %d clients the cache counts %d bytes, bound %d", i+1, got, bound)
		}
	}
	if n := h.CachedClients(); n == 0 || n >= 2000 {
		t.Fatalf("cached clients = %d, want some but not all 2000", n)
	}
	// Every client's second command chains onto its first, cached or not.
	for i := range 2000 {
		c := domain.ClientID(fmt.Sprintf("c%d", i))
		res, err := h.Handle(ctx, run(c, "cmd-2", t0.Add(time.Hour)), app.Source{})
		if err != nil {
			t.Fatalf("Handle %s cmd-2: %v", c, err)
		}
		if len(res.Record.Commit.Recent) != 2 || res.Record.Commit.PrevHash == "" {
			t.Fatalf("%s cmd-2: recent %d, prev hash %q, want 2 and the first commit's", c, len(res.Record.Commit.Recent), res.Record.Commit.PrevHash)
		}
	}
}
