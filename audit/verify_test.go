package audit_test

import (
	"crypto/ed25519"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/audit/audittest"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/recipe"
	"github.com/studyd/studyd/simulate"
)

var (
	fleetOnce sync.Once
	fleetLog  *audittest.Log
	fleetErr  error
)

// fleet is a shared simulated log; tests copy its entries before tampering.
func fleet(t testing.TB) *audittest.Log {
	t.Helper()
	fleetOnce.Do(func() { fleetLog, fleetErr = audittest.Fleet(40, 6, 7) })
	if fleetErr != nil {
		t.Fatalf("build fleet log: %v", fleetErr)
	}
	return fleetLog
}

// verify runs entries through a verifier with opts, decoded whole (Verifier.Add), and
// again decoded lean (audit.DecodeLean) as audit.Verify reads a log: both must give the
// same report, faults and their wording included. A view check keeps state, so with
// opts.Views the entries are verified once, lean.
func verify(t testing.TB, entries []audit.Entry, opts audit.VerifyOptions) audit.Report {
	t.Helper()
	lean := audit.NewVerifier(opts)
	for _, e := range entries {
		lean.AddDecoded(audit.DecodeLean(e))
	}
	if opts.Views != nil {
		return lean.Finish()
	}
	v := audit.NewVerifier(opts)
	for _, e := range entries {
		v.Add(e)
	}
	r, lr := v.Finish(), lean.Finish()
	if !reflect.DeepEqual(r, lr) {
		t.Fatalf("the lean decode's report differs from the full decode's:\n%s", cmp.Diff(r, lr))
	}
	return r
}

// chainOf returns the indexes (into entries) of the commits of the client with the
// most commits.
func chainOf(t *testing.T, entries []audit.Entry) (domain.ClientID, []int) {
	t.Helper()
	by := map[domain.ClientID][]int{}
	for i, e := range entries {
		if e.Kind() == audit.KindCommit {
			by[e.SubjectClient()] = append(by[e.SubjectClient()], i)
		}
	}
	var best domain.ClientID
	for c, idx := range by {
		if len(idx) > len(by[best]) || len(idx) == len(by[best]) && c < best {
			best = c
		}
	}
	if len(by[best]) < 4 {
		t.Fatalf("no client with 4 commits in the fleet log")
	}
	return best, by[best]
}

func decode(t *testing.T, e audit.Entry) eventstore.Commit {
	t.Helper()
	r, err := e.Record()
	if err != nil {
		t.Fatal(err)
	}
	return r.Commit
}

func encode(t *testing.T, c eventstore.Commit) []byte {
	t.Helper()
	b, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyCleanLog(t *testing.T) {
	t.Parallel()
	l := fleet(t)
	r := verify(t, l.Entries, audit.VerifyOptions{Anchored: true})
	if err := r.Err(); err != nil {
		t.Fatalf("clean log: got fault %v (of %d), want none", err, r.FaultCount)
	}
	if r.Commits == 0 || r.Transitions == 0 || r.Clients == 0 {
		t.Fatalf("report %+v: want commits, transitions and clients", r)
	}
	if r.Messages != uint64(len(l.Entries)) || r.LastSeq != uint64(len(l.Entries)) {
		t.Errorf("messages %d, last seq %d; want %d", r.Messages, r.LastSeq, len(l.Entries))
	}
}

// TestVerifyMixedVersionLog: a log of a fleet mixing 2018 and later clients (rollouts
// on their own machine, later events, unenrollFailed that moves nothing) verifies
// clean, and a later event whose transition belongs to the other machine is caught.
func TestVerifyMixedVersionLog(t *testing.T) {
	t.Parallel()
	l, err := audittest.FleetOf(simulate.Config{Clients: 60, Days: 9, Seed: 5, Versions: simulate.MixedFleet})
	if err != nil {
		t.Fatal(err)
	}
	r := verify(t, l.Entries, audit.VerifyOptions{Anchored: true})
	if err := r.Err(); err != nil {
		t.Fatalf("clean mixed-version log: got fault %v (of %d), want none", err, r.FaultCount)
	}
	if r.Transitions == 0 {
		t.Fatalf("report %+v: want transitions", r)
	}

	// enrollFailed none→none is an edge of the rollout machine only: a study event with
	// it is illegal, even after the verifier has seen (and remembered) the rollout's.
	l = audittest.New(time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	at := time.Date(2020, 6, 1, 0, 0, 0, 0, time.UTC)
	rollout := func(id domain.RecipeID, slug string) domain.RecipeReport {
		return domain.RecipeReport{ID: id, Action: "preference-rollout", Status: domain.RecipeSuccess, Arguments: recipe.Must(
			map[string]any{"slug": slug, "preferences": []any{map[string]any{"preferenceName": "p.a", "value": true}}})}
	}
	run := domain.Command{Type: domain.CommandRecipeRun, CommandID: "r1", ClientID: "c1", At: at, FirefoxVersion: "80.0",
		RunnerStatus: domain.RunnerSuccess, Recipes: []domain.RecipeReport{rollout(1, "ro"), rollout(2, "ro2")}}
	if err := l.Apply(run); err != nil {
		t.Fatal(err)
	}
	run.ClientID, run.CommandID = "c2", "r2"
	if err := l.Apply(run); err != nil {
		t.Fatal(err)
	}
	if r := verify(t, l.Entries, audit.VerifyOptions{Anchored: true}); r.Err() != nil {
		t.Fatalf("two clients' rollouts: got fault %v, want none", r.Err())
	}
	c := decode(t, l.Entries[1])
	var tampered bool
	for j, ev := range c.Events {
		if ev.Type == domain.EventEnrollFailed && ev.Object == domain.PreferenceRollout {
			c.Events[j].Object = domain.PreferenceStudy
			tampered = true
		}
	}
	if !tampered {
		t.Fatalf("no failed rollout enrollment in %v", c.Events)
	}
	entries := slices.Clone(l.Entries)
	entries[1].Data = encode(t, c)
	r = verify(t, entries, audit.VerifyOptions{})
	if !slices.ContainsFunc(r.Faults, func(f audit.Fault) bool { return f.Kind == audit.FaultIllegalTransition }) {
		t.Errorf("a study event with the rollout machine's enrollFailed none→none: got faults %v, want an illegal transition", r.Faults)
	}
}

// TestVerifyDetectsTampering proves each detection on a tampered copy of the log.
func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	l := fleet(t)
	client, idx := chainOf(t, l.Entries)
	b, c := idx[1], idx[2] // two consecutive commits of one client, in mid-chain
	tests := []struct {
		name   string
		tamper func(t *testing.T, es []audit.Entry) []audit.Entry
		kind   audit.FaultKind
		at     func(es []audit.Entry) uint64 // where the first fault must be
		detail string
	}{
		{
			name: "edited body",
			tamper: func(t *testing.T, es []audit.Entry) []audit.Entry {
				cm := decode(t, es[b])
				cm.CorrelationID = "rewritten-by-an-admin"
				es[b].Data = encode(t, cm)
				return es
			},
			kind: audit.FaultChain, at: func([]audit.Entry) uint64 { return uint64(c + 1) }, detail: "was edited",
		},
		{
			name: "removed commit",
			tamper: func(t *testing.T, es []audit.Entry) []audit.Entry {
				return audittest.Renumber(slices.Delete(es, b, b+1))
			},
			kind: audit.FaultChain, at: func([]audit.Entry) uint64 { return uint64(c) }, detail: "removed",
		},
		{
			name: "swapped commits",
			tamper: func(t *testing.T, es []audit.Entry) []audit.Entry {
				es[b].Data, es[c].Data = es[c].Data, es[b].Data
				return es
			},
			kind: audit.FaultChain, at: func([]audit.Entry) uint64 { return uint64(b + 1) },
		},
		{
			name: "inserted forged commit",
			tamper: func(t *testing.T, es []audit.Entry) []audit.Entry {
				prev, err := es[b].Record()
				if err != nil {
					t.Fatal(err)
				}
				forged := prev.Commit
				forged.CommandID, forged.PrevHash, forged.Events = "forged", prev.Hash, nil
				e := audit.Entry{Subject: es[b].Subject, Data: encode(t, forged)}
				return audittest.Renumber(slices.Insert(es, b+1, e))
			},
			kind: audit.FaultChain, at: func([]audit.Entry) uint64 { return uint64(c + 2) }, detail: "was inserted",
		},
		{
			name: "commit moved to another client's subject",
			tamper: func(t *testing.T, es []audit.Entry) []audit.Entry {
				es[b].Subject = audit.CommitPrefix + "someone-else"
				return es
			},
			kind: audit.FaultSubject, at: func([]audit.Entry) uint64 { return uint64(b + 1) },
		},
		{
			name: "undecodable commit",
			tamper: func(t *testing.T, es []audit.Entry) []audit.Entry {
				es[b].Data = es[b].Data[:len(es[b].Data)/2]
				return es
			},
			kind: audit.FaultUndecodable, at: func([]audit.Entry) uint64 { return uint64(b + 1) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			es := tt.tamper(t, slices.Clone(l.Entries))
			r := verify(t, es, audit.VerifyOptions{Anchored: true})
			err := r.Err()
			var f *audit.Fault
			if !errors.As(err, &f) || !errors.Is(err, audit.ErrFault) {
				t.Fatalf("got %v, want a *Fault", err)
			}
			if f.Kind != tt.kind || f.Seq != tt.at(es) {
				t.Errorf("first fault %v: got kind %s at seq %d, want %s at seq %d", f, f.Kind, f.Seq, tt.kind, tt.at(es))
			}
			if tt.kind != audit.FaultSubject && f.Client != client {
				t.Errorf("first fault names client %q, want %q", f.Client, client)
			}
			if !strings.Contains(f.Detail, tt.detail) {
				t.Errorf("fault detail %q does not say %q", f.Detail, tt.detail)
			}
		})
	}
}

// TestVerifyReorderNamed: a swap is reported as a reorder at the later position too.
func TestVerifyReorderNamed(t *testing.T) {
	t.Parallel()
	l := fleet(t)
	_, idx := chainOf(t, l.Entries)
	b, c := idx[1], idx[2]
	es := slices.Clone(l.Entries)
	es[b].Data, es[c].Data = es[c].Data, es[b].Data
	r := verify(t, es, audit.VerifyOptions{Anchored: true})
	found := false
	for _, f := range r.Faults {
		if f.Kind == audit.FaultChain && f.Seq == uint64(c+1) && strings.Contains(f.Detail, "reordered") {
			found = true
		}
	}
	if !found {
		t.Errorf("faults %v: want a reorder named at seq %d", r.Faults, c+1)
	}
}

// TestVerifyTransitions: a forger who keeps the hash chain intact still cannot record
// an illegal transition or a transition from a state the client was not in.
func TestVerifyTransitions(t *testing.T) {
	t.Parallel()
	l := fleet(t)
	// A client with an enrolled study at the end of the log.
	var client domain.ClientID
	var study domain.Enrollment
	for _, e := range l.Entries {
		if e.Kind() != audit.KindCommit {
			continue
		}
		last := l.Last(e.SubjectClient())
		if act := last.Commit.State.Active(); len(act) > 0 {
			client, study = e.SubjectClient(), act[0]
			break
		}
	}
	if client == "" {
		t.Fatal("no client with an active enrollment")
	}
	ev := func(typ domain.EventType, from, to domain.State, reason string) domain.Event {
		return domain.Event{Type: typ, Object: study.Object, Key: study.Key, Slug: study.Slug, Branch: study.Branch,
			From: from, To: to, Reason: reason}
	}
	tests := []struct {
		name  string
		event domain.Event
		state domain.State
		kind  audit.FaultKind
	}{
		{name: "enrolled to enrolled by enroll", event: ev(domain.EventEnrolled, domain.StateEnrolled, domain.StateEnrolled, ""),
			state: domain.StateEnrolled, kind: audit.FaultIllegalTransition},
		{name: "unenroll from a state the client was not in",
			event: ev(domain.EventEnrolled, domain.StateNone, domain.StateEnrolled, ""),
			state: domain.StateEnrolled, kind: audit.FaultState},
		{name: "state disagrees with the events",
			event: ev(domain.EventUnenrolled, domain.StateEnrolled, domain.StateUnenrolled, string(domain.ReasonUnknown)),
			state: domain.StateEnrolled, kind: audit.FaultState},
		{name: "invalid reason", event: ev(domain.EventUnenrolled, domain.StateEnrolled, domain.StateUnenrolled, "because"),
			state: domain.StateUnenrolled, kind: audit.FaultInvalidEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			forged := audittest.New(l.Entries[len(l.Entries)-1].Stored)
			forged.Entries = slices.Clone(l.Entries)
			last := l.Last(client)
			c := last.Commit
			en := study
			en.State = tt.state
			c.CommandID, c.PrevHash, c.Events, c.State = "forged", last.Hash, []domain.Event{tt.event}, c.State.With(en)
			if err := forged.AppendCommit(c); err != nil {
				t.Fatal(err)
			}
			r := verify(t, forged.Entries, audit.VerifyOptions{Anchored: true})
			var f *audit.Fault
			if !errors.As(r.Err(), &f) {
				t.Fatalf("got %v, want a fault", r.Err())
			}
			if f.Kind != tt.kind || f.Seq != uint64(len(forged.Entries)) || f.Client != client {
				t.Errorf("got %v, want %s at seq %d for %s", f, tt.kind, len(forged.Entries), client)
			}
		})
	}
}

func TestVerifyCheckpoints(t *testing.T) {
	t.Parallel()
	l := fleet(t)
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, _ := ed25519.GenerateKey(nil)
	n := len(l.Entries)
	at := func(es []audit.Entry, upto int, k ed25519.PrivateKey) audit.Checkpoint {
		var d audit.LogDigest
		for _, e := range es[:upto] {
			d.AddEntry(e)
		}
		return audit.Checkpoint{Stream: "STUDYD_EVENTS", Seq: d.Seq, Count: d.Count, Digest: d.Hex()}.Sign(k)
	}
	// The client's latest commit before the second checkpoint: nothing after it in
	// its chain vouches for it, only the checkpoint.
	client, idx := chainOf(t, l.Entries)
	lastOfClient := idx[len(idx)-1]
	cps := []audit.Checkpoint{at(l.Entries, n/3, key), at(l.Entries, lastOfClient+1, key)}

	tests := []struct {
		name   string
		tamper func(es []audit.Entry) []audit.Entry
		cps    []audit.Checkpoint
		kind   audit.FaultKind
		seq    uint64
	}{
		{name: "clean", tamper: func(es []audit.Entry) []audit.Entry { return es }, cps: cps},
		{name: "edited last commit of a client", cps: cps, kind: audit.FaultCheckpoint, seq: cps[1].Seq,
			tamper: func(es []audit.Entry) []audit.Entry {
				c := decode(t, es[lastOfClient])
				c.CorrelationID = "edited"
				es[lastOfClient].Data = encode(t, c)
				return es
			}},
		{name: "truncated log", cps: cps, kind: audit.FaultCheckpoint, seq: cps[1].Seq,
			tamper: func(es []audit.Entry) []audit.Entry { return es[:lastOfClient] }},
		{name: "wrong signer", cps: []audit.Checkpoint{at(l.Entries, n/2, otherKey)}, kind: audit.FaultSignature, seq: uint64(n / 2),
			tamper: func(es []audit.Entry) []audit.Entry { return es }},
		{name: "checkpoint altered after signing", kind: audit.FaultSignature, seq: uint64(n / 2),
			cps: func() []audit.Checkpoint {
				cp := at(l.Entries, n/2, key)
				cp.Count++
				return []audit.Checkpoint{cp}
			}(),
			tamper: func(es []audit.Entry) []audit.Entry { return es }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			es := tt.tamper(slices.Clone(l.Entries))
			r := verify(t, es, audit.VerifyOptions{Complete: true, Checkpoints: tt.cps, PublicKey: pub})
			if r.CheckpointsChecked != len(tt.cps) || !r.SignaturesChecked {
				t.Errorf("checked %d checkpoints (signatures %t), want %d (true)", r.CheckpointsChecked, r.SignaturesChecked, len(tt.cps))
			}
			if tt.kind == "" {
				if err := r.Err(); err != nil {
					t.Fatalf("got %v, want no fault", err)
				}
				return
			}
			found := false
			for _, f := range r.Faults {
				found = found || f.Kind == tt.kind && f.Seq == tt.seq
				if f.Kind == audit.FaultChain {
					t.Errorf("unexpected chain fault %v (client %s)", f, client)
				}
			}
			if !found {
				t.Errorf("faults %v: want %s at seq %d", r.Faults, tt.kind, tt.seq)
			}
		})
	}
}

func TestResumeDigest(t *testing.T) {
	t.Parallel()
	l := fleet(t)
	var whole, first audit.LogDigest
	for i, e := range l.Entries {
		whole.AddEntry(e)
		if i < 10 {
			first.AddEntry(e)
		}
	}
	resumed, err := audit.ResumeDigest(audit.Checkpoint{Seq: first.Seq, Count: first.Count, Digest: first.Hex()})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range l.Entries[10:] {
		resumed.AddEntry(e)
	}
	if resumed.Hex() != whole.Hex() || resumed.Count != whole.Count {
		t.Errorf("resumed digest %s/%d, want %s/%d", resumed.Hex(), resumed.Count, whole.Hex(), whole.Count)
	}
	if _, err := audit.ResumeDigest(audit.Checkpoint{Digest: "zz"}); err == nil {
		t.Errorf("ResumeDigest(bad hex): got nil error, want one")
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	priv, pub, err := audit.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := audit.ParsePrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := audit.ParsePublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.ParsePublicKey(priv); !errors.Is(err, audit.ErrPrivateKey) {
		t.Errorf("ParsePublicKey(private key): got %v, want ErrPrivateKey", err)
	}
	if !p1.Equal(k.Public()) {
		t.Errorf("public key differs from the private key's public half")
	}
	cp := audit.Checkpoint{Seq: 3, Count: 3, Digest: strings.Repeat("ab", 32)}.Sign(k)
	if err := cp.VerifySignature(p1); err != nil {
		t.Errorf("VerifySignature: %v", err)
	}
	if _, err := audit.ParsePrivateKey(pub); !errors.Is(err, audit.ErrSignature) {
		t.Errorf("ParsePrivateKey(public key): got %v, want ErrSignature", err)
	}
}

// TestVerifyReportsCommandAppliedTwice: a command id applied by two commits of one
// client is a fault naming both; the same id for two clients is not.
func TestVerifyReportsCommandAppliedTwice(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	l := audittest.New(at)
	for i, c := range []struct {
		client domain.ClientID
		id     string
		on     bool
	}{
		{"client-a", "optout-1", false},
		{"client-b", "optout-1", false}, // another client's id: not a duplicate
		{"client-a", "optout-2", true},
		{"client-a", "optout-1", true}, // applied again
	} {
		cmd := domain.Command{Type: domain.CommandOptOut, CommandID: c.id, ClientID: c.client, At: at.Add(time.Duration(i) * time.Minute), StudiesEnabled: c.on}
		if err := l.Apply(cmd); err != nil {
			t.Fatal(err)
		}
	}
	r := verify(t, l.Entries, audit.VerifyOptions{Anchored: true})
	if r.FaultCount != 1 || r.Faults[0].Kind != audit.FaultAppliedTwice {
		t.Fatalf("faults %v: want one %s", r.Faults, audit.FaultAppliedTwice)
	}
	if f := r.Faults[0]; f.Seq != 4 || f.Related != 1 || f.Client != "client-a" || !strings.Contains(f.Detail, "optout-1") {
		t.Errorf("fault %+v: want seq 4, related 1, client-a, naming optout-1", f)
	}
}
