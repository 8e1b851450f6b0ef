package eventstore_test

import (
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/eventstore"
)

// sameLean fails unless DecodeCommitLean agrees with DecodeCommit on b: both refuse it
// with the same message and sentinels, or the lean commit is exactly the full one's
// Lean(); unless decoding into a used arena gives the same; and unless the lean read takes b itself exactly when the reflection-free
// decoder does (so that agreement is not merely the fallback agreeing with itself).
func sameLean(tb testing.TB, b []byte) {
	tb.Helper()
	full, fullErr := eventstore.DecodeCommit(b)
	lean, leanErr := eventstore.DecodeCommitLean(b)
	if !sameError(tb, leanErr, fullErr, b) {
		if want := full.Lean(); !reflect.DeepEqual(want, lean) {
			tb.Fatalf("the lean decode is not the full decode's Lean() (-full.Lean() +lean):\n%s\ninput %x", cmp.Diff(want, lean), b)
		}
	}
	// An arena whose memory held another commit's events gives the same commit.
	var a eventstore.Arena
	if _, err := eventstore.DecodeCommitLeanIn(&a, recipeGolden(tb)); err != nil {
		tb.Fatal(err)
	}
	a.Reset()
	if in, err := eventstore.DecodeCommitLeanIn(&a, b); (err == nil) != (leanErr == nil) || !reflect.DeepEqual(in, lean) {
		tb.Fatalf("decoded in an arena: got %v, %v; want %v, %v", in, err, lean, leanErr)
	}
	_, fastOK := eventstore.DecodeCommitFast(b)
	_, leanOK := eventstore.DecodeCommitLeanFast(b)
	if fastOK != leanOK {
		tb.Fatalf("the lean read takes the input: %v, the reflection-free decoder: %v (input %x)", leanOK, fastOK, b)
	}
}

func TestLeanDecodeTakesRealCommits(t *testing.T) {
	inputs := append([][]byte{golden(t), recipeGolden(t), v1Bytes(t)}, fleetCommits(t)...)
	for i, b := range inputs {
		sameLean(t, b)
		if _, ok := eventstore.DecodeCommitLeanFast(b); !ok && i != 2 {
			t.Fatalf("commit %d: the lean read deferred on a canonical commit", i)
		}
	}
}

// TestLeanDecodeSkipsTheState checks that a lean decode is lean: of the golden commit
// with recipe fields (every field set) it keeps the events whole and of the state only
// what the verifier and the folds read.
func TestLeanDecodeSkipsTheState(t *testing.T) {
	b := recipeGolden(t)
	full, err := eventstore.DecodeCommit(b)
	if err != nil {
		t.Fatal(err)
	}
	lean, err := eventstore.DecodeCommitLean(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Recent) == 0 || full.CommitID == "" || len(full.State.Enrollments) == 0 {
		t.Fatal("the golden commit should have recent ids, a commit id and enrollments")
	}
	if lean.Recent != nil || lean.CommitID != "" {
		t.Errorf("lean commit kept recent %v, commit id %q", lean.Recent, lean.CommitID)
	}
	if !reflect.DeepEqual(lean.Events, full.Events) {
		t.Errorf("lean events differ: %s", cmp.Diff(full.Events, lean.Events))
	}
	for i, e := range lean.State.Enrollments {
		f := full.State.Enrollments[i]
		if e.Object != f.Object || e.Key != f.Key || e.State != f.State || e.Action != f.Action {
			t.Errorf("enrollment %d: got %s %s %s %s, want %s %s %s %s", i, e.Object, e.Key, e.State, e.Action, f.Object, f.Key, f.State, f.Action)
		}
		if e.Slug != "" || e.Branch != "" || e.BranchValue != "" || e.Ratios != nil || e.Preferences != nil {
			t.Errorf("enrollment %d kept what a lean decode skips: %+v", i, e)
		}
	}
}

func FuzzDecodeLean(f *testing.F) {
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		sameLean(t, b)
	})
}

// TestArenaStringsBounded: an arena reused across a log's commits keeps at most
// ArenaStringBytes of strings, and what it hands out is what a fresh decode makes.
func TestArenaStringsBounded(t *testing.T) {
	var a eventstore.Arena
	for round := range 3 {
		for i, b := range fleetCommits(t) {
			a.Reset()
			got, err := eventstore.DecodeCommitLeanIn(&a, b)
			if err != nil {
				t.Fatal(err)
			}
			if want, _ := eventstore.DecodeCommitLean(b); !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d, commit %d: decoded in a used arena: %s", round, i, cmp.Diff(want, got))
			}
			if n := a.StringBytes(); n > eventstore.ArenaStringBytes {
				t.Fatalf("the arena keeps %d bytes of strings, more than %d", n, eventstore.ArenaStringBytes)
			}
		}
	}
	if a.StringBytes() == 0 {
		t.Error("the arena kept no strings")
	}
}
