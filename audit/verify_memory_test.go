package audit_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/audit/audittest"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// TestVerifierKeepsOnlyWhatItsChecksNeed: per client the verifier keeps its last
// position and hash and each study's state, not the decoded state, so the memory a
// replay carries does not grow with what the states hold. Each client here carries 8 KB
// of branch values in its state; the verifier must keep far less than that of it. Not
// parallel: the heap is measured, and no other test of the package runs meanwhile.
func TestVerifierKeepsOnlyWhatItsChecksNeed(t *testing.T) {
	const clients, enrollments = 1000, 8
	l := audittest.New(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	value := domain.JSONText(`"` + strings.Repeat("x", 1022) + `"`)
	for i := range clients {
		c := domain.ClientID(fmt.Sprintf("client-%04d", i))
		st := domain.ClientState{Client: c}
		for j := range enrollments {
			st.Enrollments = append(st.Enrollments, domain.Enrollment{Object: domain.PreferenceStudy, Key: fmt.Sprintf("study-%d", j),
				Slug: fmt.Sprintf("study-%d", j), State: domain.StateEnrolled, Branch: "control", BranchValue: value})
		}
		commit := eventstore.Commit{Schema: eventstore.SchemaVersion, CommitID: fmt.Sprint("commit-", i), CommandID: "cmd-1",
			CommandType: domain.CommandRecipeRun, Client: c, At: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), State: st}
		if err := l.AppendCommit(commit); err != nil {
			t.Fatal(err)
		}
	}
	kept := keptPerClient(t, l, clients)
	if limit := int64(len(value)) * enrollments / 4; kept > limit {
		t.Errorf("the verifier keeps %d bytes per client, want at most %d (the states hold %d of branch values)", kept, limit, int64(len(value))*enrollments)
	}
	t.Logf("the verifier keeps %d bytes per client", kept)
}

// TestVerifierKeepsEachStudyNameOnce: the verifier numbers the studies it has seen, so
// a client's kept enrollments are numbers, not the names its last commit decoded. A
// thousand clients in eight studies with 512-byte keys must not each keep the names.
// Not parallel: the heap is measured.
func TestVerifierKeepsEachStudyNameOnce(t *testing.T) {
	const clients, enrollments, keyLen = 1000, 8, 512
	l := audittest.New(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	for i := range clients {
		c := domain.ClientID(fmt.Sprintf("client-%04d", i))
		st := domain.ClientState{Client: c}
		for j := range enrollments {
			key := fmt.Sprintf("study-%d-", j)
			key += strings.Repeat("k", keyLen-len(key))
			st.Enrollments = append(st.Enrollments, domain.Enrollment{Object: domain.PreferenceStudy, Key: key,
				Slug: fmt.Sprintf("study-%d", j), State: domain.StateEnrolled, Branch: "control"})
		}
		commit := eventstore.Commit{Schema: eventstore.SchemaVersion, CommitID: fmt.Sprint("commit-", i), CommandID: "cmd-1",
			CommandType: domain.CommandRecipeRun, Client: c, At: time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC), State: st}
		if err := l.AppendCommit(commit); err != nil {
			t.Fatal(err)
		}
	}
	kept := keptPerClient(t, l, clients)
	if limit := int64(keyLen) * enrollments / 4; kept > limit {
		t.Errorf("the verifier keeps %d bytes per client, want at most %d (its enrollments name %d bytes of study keys)", kept, limit, keyLen*enrollments)
	}
	t.Logf("the verifier keeps %d bytes per client", kept)
}

// keptPerClient verifies l, whose commits are each a client's first, and returns the
// heap the verifier holds per client once it has seen them all.
func keptPerClient(t *testing.T, l *audittest.Log, clients int) int64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := audit.NewVerifier(audit.VerifyOptions{Anchored: true})
	for _, e := range l.Entries {
		v.Add(e)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if rep := v.Finish(); rep.FaultCount != 0 || rep.Commits != uint64(clients) {
		t.Fatalf("report: %d faults (%v), %d commits; want none and %d", rep.FaultCount, rep.Err(), rep.Commits, clients)
	}
	runtime.KeepAlive(l)
	return (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(clients)
}

// TestVerifierChainNeedsTheExactHash: the verifier compares hashes as bytes now; a
// prev_hash naming the predecessor in upper case (or cut short) is still not its hash.
func TestVerifierChainNeedsTheExactHash(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		edit func(string) string
	}{
		{name: "upper case", edit: strings.ToUpper},
		{name: "cut short", edit: func(h string) string { return h[:63] }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := audittest.New(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
			at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
			c := eventstore.Commit{Schema: eventstore.SchemaVersion, CommitID: "a", CommandID: "cmd-1", CommandType: domain.CommandRecipeRun,
				Client: "c1", At: at, State: domain.ClientState{Client: "c1"}}
			if err := l.AppendCommit(c); err != nil {
				t.Fatal(err)
			}
			c.CommitID, c.CommandID, c.PrevHash = "b", "cmd-2", tt.edit(l.Last("c1").Hash)
			if err := l.AppendCommit(c); err != nil {
				t.Fatal(err)
			}
			v := audit.NewVerifier(audit.VerifyOptions{Anchored: true})
			for _, e := range l.Entries {
				v.Add(e)
			}
			rep := v.Finish()
			if rep.FaultCount != 1 || rep.Faults[0].Kind != audit.FaultChain || rep.Faults[0].Seq != 2 {
				t.Fatalf("faults = %+v, want one chain fault at seq 2", rep.Faults)
			}
		})
	}
}
