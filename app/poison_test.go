package app_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/recipe"
)

// Issue 12, case 3: an `at` outside the accepted range is rejected, never applied (a
// year-9999 run would make every later run of the client stale, and RFC 3339 cannot
// write a year beyond 9999 at all).
func TestHandleRejectsAtOutsideTheRange(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		at   time.Time
		cfg  domain.AtRange
	}{
		{"year 9999", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), domain.AtRange{}},
		{"year 20983", time.Date(20983, 1, 1, 0, 0, 0, 0, time.UTC), domain.AtRange{}},
		{"two days ahead", now.Add(48 * time.Hour), domain.AtRange{}},
		{"before Normandy", time.Date(2015, 6, 1, 0, 0, 0, 0, time.UTC), domain.AtRange{}},
		{"ahead of a tighter range", now.Add(2 * time.Hour), domain.AtRange{MaxAhead: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := eventstore.NewMemoryStore()
			h := app.NewHandler(store, app.Config{AtRange: tc.cfg, Now: func() time.Time { return now }})
			_, err := h.Handle(t.Context(), run("c1", "cmd-1", tc.at), app.Source{})
			if !errors.Is(err, domain.ErrInvalid) || !domain.IsRejection(err) {
				t.Fatalf("got %v, want a rejection wrapping domain.ErrInvalid", err)
			}
			if rec, _ := store.Load(t.Context(), "c1"); rec.Position != 0 {
				t.Fatalf("got a commit at %d, want none", rec.Position)
			}
		})
	}
	h := app.NewHandler(eventstore.NewMemoryStore(), app.Config{Now: func() time.Time { return now }})
	if _, err := h.Handle(t.Context(), run("c1", "cmd-ok", now.Add(23*time.Hour)), app.Source{}); err != nil {
		t.Fatalf("a run 23 h ahead of the clock: got %v, want it applied", err)
	}
}

// Issue 12, case 7: a command id once applied is never applied again, however late it
// comes back, and the same id with another body is refused as a reuse.
func TestHandleRefusesAReusedCommandID(t *testing.T) {
	t.Parallel()
	store := eventstore.NewMemoryStore()
	h := app.NewHandler(store, app.Config{})
	ctx := t.Context()
	first, err := h.Handle(ctx, run("c1", "cmd-0", t0), app.Source{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2*eventstore.RecentCommands; i++ {
		if _, err := h.Handle(ctx, run("c1", fmt.Sprintf("cmd-%d", i), t0.Add(time.Duration(i)*time.Minute)), app.Source{}); err != nil {
			t.Fatal(err)
		}
	}
	again, err := h.Handle(ctx, run("c1", "cmd-0", t0), app.Source{})
	if err != nil || !again.Duplicate || again.Record.Position != first.Record.Position {
		t.Fatalf("the same command 32 commands later: got %+v, %v; want a duplicate of position %d", again, err, first.Record.Position)
	}
	other := run("c1", "cmd-0", t0.Add(time.Hour)) // same id, another body
	_, err = h.Handle(ctx, other, app.Source{})
	if !errors.Is(err, domain.ErrCommandIDReused) || domain.ClassifyRejection(err) != domain.RejectIDReused {
		t.Fatalf("the same id with another body: got %v, want domain.ErrCommandIDReused (%s)", err, domain.RejectIDReused)
	}
	recentOther := run("c1", fmt.Sprintf("cmd-%d", 2*eventstore.RecentCommands), t0) // still in Recent
	if _, err := h.Handle(ctx, recentOther, app.Source{}); !errors.Is(err, domain.ErrCommandIDReused) {
		t.Fatalf("a recent id with another body: got %v, want domain.ErrCommandIDReused", err)
	}
}

// Issue 12, case 7: the ids leaving the RecentCommands a commit carries are written to
// the index before the commit that drops them, and a late command is found there.
func TestHandleRemembersEvictedIDsInTheIndex(t *testing.T) {
	t.Parallel()
	store := eventstore.NewMemoryStore()
	idx := &fakeIndex{ids: map[string]uint64{}}
	h := app.NewHandler(store, app.Config{Index: idx})
	ctx := t.Context()
	var positions []uint64
	for i := range eventstore.RecentCommands + 4 {
		res, err := h.Handle(ctx, run("c1", fmt.Sprintf("cmd-%d", i), t0.Add(time.Duration(i)*time.Minute)), app.Source{})
		if err != nil {
			t.Fatal(err)
		}
		positions = append(positions, res.Record.Position)
	}
	if len(idx.ids) != 4 {
		t.Fatalf("the index holds %v, want the 4 evicted ids", idx.ids)
	}
	for i := range 4 {
		if got := idx.ids[fmt.Sprintf("c1/cmd-%d", i)]; got != positions[i] {
			t.Errorf("index of cmd-%d = %d, want %d", i, got, positions[i])
		}
	}
	idx.failRemember = true
	if _, err := h.Handle(ctx, run("c1", "cmd-next", t0.Add(time.Hour)), app.Source{}); err == nil || domain.IsRejection(err) {
		t.Fatalf("with the index failing: got %v, want a transient error", err)
	}
	if rec, _ := store.Load(ctx, "c1"); rec.Position != positions[len(positions)-1] {
		t.Fatalf("a commit was appended while the index failed (latest %d, want %d)", rec.Position, positions[len(positions)-1])
	}
}

type fakeIndex struct {
	ids          map[string]uint64
	failRemember bool
}

func (f *fakeIndex) Applied(_ context.Context, client domain.ClientID, id string) (uint64, bool, error) {
	pos, ok := f.ids[string(client)+"/"+id]
	return pos, ok, nil
}

func (f *fakeIndex) Remember(_ context.Context, client domain.ClientID, id string, pos uint64) error {
	if f.failRemember {
		return errors.New("index unavailable")
	}
	f.ids[string(client)+"/"+id] = pos
	return nil
}

// Issue 12, case 8: a stream sequence says nothing across instances of STUDYD_CMDS. A
// recreated stream restarts at 1, and its commands must be applied, not answered as
// duplicates of the old stream's.
func TestHandleIgnoresStreamSequencesForDuplicates(t *testing.T) {
	t.Parallel()
	h := app.NewHandler(eventstore.NewMemoryStore(), app.Config{})
	ctx := t.Context()
	if _, err := h.Handle(ctx, run("c1", "cmd-old", t0), app.Source{Seq: 500}); err != nil {
		t.Fatal(err)
	}
	res, err := h.Handle(ctx, run("c1", "cmd-new", t0.Add(time.Hour)), app.Source{Seq: 1})
	if err != nil || res.Duplicate || res.Record.Commit.CommandID != "cmd-new" {
		t.Fatalf("a new command at seq 1 of a recreated stream: got %+v, %v; want it applied", res, err)
	}
}

// addonRun is a run reporting n add-on recipes whose installs failed with a reason of
// reasonLen bytes: each one an enroll_failed enrollment the client keeps.
func addonRun(client domain.ClientID, id string, at time.Time, n, reasonLen int) domain.Command {
	cmd := domain.Command{Type: domain.CommandRecipeRun, CommandID: id, ClientID: client, At: at,
		RunnerStatus: domain.RunnerSuccess,
		Actions:      []domain.ActionReport{{Name: "addon-study", Status: domain.ActionSuccess}}}
	reason := "resource://x.jsm:1:1 NS_ERROR_FAILURE " + strings.Repeat("e", reasonLen)
	reason = reason[:reasonLen]
	for i := range n {
		cmd.Recipes = append(cmd.Recipes, domain.RecipeReport{ID: domain.RecipeID(1000 + i), Action: "addon-study",
			Status: domain.RecipeExecutionError, Arguments: recipe.Must(map[string]any{
				"slug": fmt.Sprintf("addon-%d", i), "installError": reason})})
	}
	return cmd
}

// Issue 12, case 2: the state a client's commits carry is bounded. Nine runs of 700
// failed add-on installs with 1,000-byte reasons grew every commit to 7.7 MB; with
// reasons kept to MaxStateReason bytes in the state the commits stop growing and stay
// under the 1 MiB an external NATS server accepts.
func TestClientStateStaysBounded(t *testing.T) {
	t.Parallel()
	store := eventstore.NewMemoryStore()
	store.MaxCommitBytes = 64 << 20 // measure here; the limit is the next test's
	h := app.NewHandler(store, app.Config{})
	var sizes []int
	for i := range 9 {
		res, err := h.Handle(t.Context(), addonRun("c1", fmt.Sprintf("run-%d", i), t0.Add(time.Duration(i)*time.Hour), 700, 1000), app.Source{})
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		state := res.Record.Commit
		state.Events = nil
		raw, err := eventstore.EncodeCommit(state)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(raw))
	}
	if last, limit := sizes[len(sizes)-1], 700*400; last > limit {
		t.Fatalf("the state after 9 runs encodes to %d bytes (sizes %v), want at most %d", last, sizes, limit)
	}
	if grown := sizes[8] - sizes[1]; grown > eventstore.RecentCommands*64 {
		t.Fatalf("state sizes %v: grew %d bytes over 7 runs, want no more than the recent command ids", sizes, grown)
	}
}

// Issue 12, case 2: a command whose commit would exceed what the log accepts is
// rejected as too_large — permanently, not retried — and so is one that would make the
// client hold more than MaxEnrollmentsPerClient enrollments.
func TestHandleRejectsTooLarge(t *testing.T) {
	t.Parallel()
	store := eventstore.NewMemoryStore()
	h := app.NewHandler(store, app.Config{})
	_, err := h.Handle(t.Context(), addonRun("c1", "big", t0, 1000, 1000), app.Source{})
	if !errors.Is(err, domain.ErrTooLarge) || domain.ClassifyRejection(err) != domain.RejectTooLarge {
		t.Fatalf("a 1000-recipe run of 1000-byte reasons: got %v, want domain.ErrTooLarge (%s)", err, domain.RejectTooLarge)
	}
	if _, err := h.Handle(t.Context(), addonRun("c2", "many-1", t0, 1000, 10), app.Source{}); err != nil {
		t.Fatal(err)
	}
	more := addonRun("c2", "many-2", t0.Add(time.Hour), 30, 10)
	for i := range more.Recipes {
		more.Recipes[i].ID += 10_000
	}
	if _, err := h.Handle(t.Context(), more, app.Source{}); !errors.Is(err, domain.ErrTooLarge) {
		t.Fatalf("a run taking the client to 1030 enrollments: got %v, want domain.ErrTooLarge", err)
	}
}
