package audit_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/audit/audittest"
)

func commitKey(t *testing.T) *audit.CommitKey {
	t.Helper()
	b, err := audit.GenerateCommitKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := audit.ParseCommitKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signed returns a copy of entries each carrying k's code, as studyd appends them.
func signed(k *audit.CommitKey, entries []audit.Entry) []audit.Entry {
	out := slices.Clone(entries)
	for i := range out {
		out[i].MAC = k.Sign(out[i].Subject, out[i].Data)
	}
	return out
}

func TestCommitKey(t *testing.T) {
	t.Parallel()
	k, other := commitKey(t), commitKey(t)
	data := []byte("a commit")
	mac := k.Sign("studyd.evt.c1", data)
	if err := k.Verify("studyd.evt.c1", data, mac); err != nil {
		t.Fatalf("Verify(own signature): %v", err)
	}
	tests := []struct {
		name    string
		subject string
		data    []byte
		mac     string
		detail  string
	}{
		{name: "no header", subject: "studyd.evt.c1", data: data, detail: "no Studyd-Mac header"},
		{name: "another key", subject: "studyd.evt.c1", data: data, mac: other.Sign("studyd.evt.c1", data), detail: "not by this key"},
		{name: "edited body", subject: "studyd.evt.c1", data: []byte("a commiT"), mac: mac, detail: "does not match"},
		{name: "moved to another subject", subject: "studyd.evt.c2", data: data, mac: mac, detail: "does not match"},
		{name: "garbage", subject: "studyd.evt.c1", data: data, mac: "hello", detail: "is not"},
		{name: "right key id, forged code", subject: "studyd.evt.c1", data: data, mac: "v1 " + k.ID() + " AAAA", detail: "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := k.Verify(tt.subject, tt.data, tt.mac)
			if !errors.Is(err, audit.ErrAuthorship) || !strings.Contains(err.Error(), tt.detail) {
				t.Errorf("got %v, want ErrAuthorship saying %q", err, tt.detail)
			}
		})
	}
}

func TestParseCommitKey(t *testing.T) {
	t.Parallel()
	b, err := audit.GenerateCommitKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, _, err := audit.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		b    []byte
	}{
		{name: "a PEM key", b: pemKey},
		{name: "empty", b: nil},
		{name: "short", b: []byte("studyd-commit-key-v1 abcd\n")},
		{name: "not hex", b: bytes.Replace(b, []byte("studyd-commit-key-v1 "), []byte("studyd-commit-key-v1 zz"), 1)},
	} {
		if _, err := audit.ParseCommitKey(tt.b); !errors.Is(err, audit.ErrCommitKey) {
			t.Errorf("%s: got %v, want ErrCommitKey", tt.name, err)
		}
	}
}

// TestVerifyDetectsForgedCommit: a forged commit that names the client's latest commit
// as its predecessor passes the chain, the transition and the decode checks — the
// attack that verify used to call OK — and fails authorship once the key is given.
func TestVerifyDetectsForgedCommit(t *testing.T) {
	t.Parallel()
	k := commitKey(t)
	l := fleet(t)
	client, _ := chainOf(t, l.Entries)
	log := audittest.New(l.Entries[len(l.Entries)-1].Stored)
	log.Entries = signed(k, l.Entries)
	for _, e := range l.Entries {
		if e.Kind() == audit.KindCommit {
			if err := log.Track(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	last := log.Last(client)
	forged := last.Commit
	forged.CommandID, forged.PrevHash, forged.Events = "forged", last.Hash, nil
	if err := log.AppendCommit(forged); err != nil {
		t.Fatal(err)
	}
	forgedSeq := uint64(len(log.Entries))

	without := verify(t, log.Entries, audit.VerifyOptions{Anchored: true})
	if err := without.Err(); err != nil {
		t.Fatalf("without a key: got fault %v, want none (the forgery is well chained)", err)
	}
	if got := without.Verdict(); !strings.Contains(got, "chain OK") || !strings.Contains(got, "authorship NOT CHECKED") {
		t.Errorf("without a key: verdict %q, want chain OK and authorship NOT CHECKED", got)
	}
	if without.Complete() {
		t.Errorf("without a key: Complete() = true, want false")
	}

	r := verify(t, log.Entries, audit.VerifyOptions{Anchored: true, CommitKey: k})
	var f *audit.Fault
	if !errors.As(r.Err(), &f) || f.Kind != audit.FaultAuthorship || f.Seq != forgedSeq || f.Client != client {
		t.Fatalf("with the key: got %v, want %s at seq %d for %s", r.Err(), audit.FaultAuthorship, forgedSeq, client)
	}
	if r.FaultCount != 1 || r.Forged != 1 || r.Authenticated != uint64(len(l.Entries)) {
		t.Errorf("got %d faults, %d forged, %d authenticated; want 1, 1, %d", r.FaultCount, r.Forged, r.Authenticated, len(l.Entries))
	}
	if got := r.Verdict(); !strings.Contains(got, "authorship FAILED") || !strings.Contains(got, "chain OK") {
		t.Errorf("verdict %q, want authorship FAILED and chain OK", got)
	}

	// studyd decides the client's next command on its last authentic commit, so its
	// next commit names that one, not the forgery: the chain stays whole.
	next := last.Commit
	next.CommandID, next.PrevHash, next.Events = "after-the-forgery", last.Hash, nil
	if err := log.AppendCommit(next); err != nil {
		t.Fatal(err)
	}
	n := len(log.Entries) - 1
	log.Entries[n].MAC = k.Sign(log.Entries[n].Subject, log.Entries[n].Data)
	r = verify(t, log.Entries, audit.VerifyOptions{Anchored: true, CommitKey: k})
	if r.FaultCount != 1 || r.Faults[0].Kind != audit.FaultAuthorship {
		t.Errorf("after a genuine commit past the forgery: faults %v, want only the forgery's", r.Faults)
	}
}

// TestVerifyChecksNamed: every check is named with a status; nothing given, nothing
// claimed.
func TestVerifyChecksNamed(t *testing.T) {
	t.Parallel()
	l := fleet(t)
	r := verify(t, l.Entries, audit.VerifyOptions{Complete: true})
	want := map[string]audit.CheckStatus{
		audit.CheckDecode: audit.CheckOK, audit.CheckTransitions: audit.CheckOK, audit.CheckChain: audit.CheckOK,
		audit.CheckAuthorship: audit.CheckNotChecked, audit.CheckCheckpoints: audit.CheckNotChecked,
		audit.CheckSignatures: audit.CheckNotChecked, audit.CheckViews: audit.CheckNotChecked,
	}
	if len(r.Checks) != len(want) {
		t.Fatalf("got %d checks %v, want %d", len(r.Checks), r.Checks, len(want))
	}
	for _, c := range r.Checks {
		if c.Status != want[c.Name] {
			t.Errorf("check %s: got %s, want %s", c.Name, c.Status, want[c.Name])
		}
		if c.Detail == "" {
			t.Errorf("check %s: no detail", c.Name)
		}
	}
	if v := r.Verdict(); v == "OK" || !strings.Contains(v, "authorship NOT CHECKED") {
		t.Errorf("verdict %q, want every check named", v)
	}
}
