// Package storetest is the conformance suite every eventstore.Store must pass: the
// memory store and the JetStream store run the same tests, so the application can be
// tested on one and run on the other.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// Run runs the conformance suite. newStore must return an empty Store, private to the
// subtest that asks for it.
func Run(t *testing.T, newStore func(t *testing.T) eventstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s eventstore.Store)
	}{
		{"EmptyLog", testEmptyLog},
		{"AppendLoadGet", testAppendLoadGet},
		{"Chain", testChain},
		{"Conflict", testConflict},
		{"ConflictIsPerClient", testConflictPerClient},
		{"DuplicateCommand", testDuplicate},
		{"GetNotFound", testGetNotFound},
		{"ReadRanges", testReadRanges},
		{"ReadStopsAtCallTime", testReadStopsAtCallTime},
		{"ReadStopsOnCallbackError", testReadCallbackError},
		{"Rejections", testRejections},
		{"ConcurrentWriters", testConcurrentWriters},
		{"TooLarge", testTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

// base is the time of the first command in every test.
var base = time.Date(2019, 3, 1, 12, 0, 0, 0, time.UTC)

// next builds the commit a decider would produce for command cmdID on top of prev (a
// zero Record for a new client): chained by PrevHash, with the command in Recent and
// LastRunAt as a counter of applied commands (base + n seconds after n commits).
func next(client domain.ClientID, prev eventstore.Record, cmdID string, at time.Time) eventstore.Commit {
	state := prev.Commit.State
	if prev.Position == 0 {
		state = domain.ClientState{Client: client, LastRunAt: base}
	}
	state.LastRunAt = state.LastRunAt.Add(time.Second)
	recent := append([]eventstore.Applied(nil), prev.Commit.Recent...)
	if n := len(recent); n > 0 {
		recent[n-1].Position = prev.Position
	}
	recent = append(recent, eventstore.Applied{CommandID: cmdID})
	if len(recent) > eventstore.RecentCommands {
		recent = recent[len(recent)-eventstore.RecentCommands:]
	}
	return eventstore.Commit{
		Schema:      eventstore.SchemaVersion,
		CommitID:    "commit-" + cmdID,
		CommandID:   cmdID,
		CommandType: domain.CommandRecipeRun,
		Client:      client,
		At:          at,
		Events:      []domain.Event{{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: domain.RunnerSuccess}},
		State:       state,
		Recent:      recent,
		FSMVersion:  "storetest",
		PrevHash:    prev.Hash,
	}
}

func appendOK(t *testing.T, s eventstore.Store, c eventstore.Commit, expected uint64) eventstore.Record {
	t.Helper()
	r, err := s.Append(t.Context(), c, expected)
	if err != nil {
		t.Fatalf("Append(%s, expected %d): %v", c.CommandID, expected, err)
	}
	return r
}

// write appends the command cmdID to client on top of its latest commit.
func write(t *testing.T, s eventstore.Store, client domain.ClientID, cmdID string, at time.Time) eventstore.Record {
	t.Helper()
	prev, err := s.Load(t.Context(), client)
	if err != nil {
		t.Fatalf("Load(%s): %v", client, err)
	}
	return appendOK(t, s, next(client, prev, cmdID, at), prev.Position)
}

func wantRecord(t *testing.T, what string, got, want eventstore.Record) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func readAll(t *testing.T, s eventstore.Store, q eventstore.Query) []eventstore.Record {
	t.Helper()
	var out []eventstore.Record
	if err := s.Read(t.Context(), q, func(r eventstore.Record) error {
		out = append(out, r)
		return nil
	}); err != nil {
		t.Fatalf("Read(%+v): %v", q, err)
	}
	return out
}

func commandIDs(rs []eventstore.Record) []string {
	ids := make([]string, len(rs))
	for i, r := range rs {
		ids[i] = r.Commit.CommandID
	}
	return ids
}

func testEmptyLog(t *testing.T, s eventstore.Store) {
	r, err := s.Load(t.Context(), "nobody")
	if err != nil {
		t.Fatalf("Load on an empty log: %v", err)
	}
	wantRecord(t, "Load on an empty log", r, eventstore.Record{})
	if got := readAll(t, s, eventstore.Query{}); len(got) != 0 {
		t.Errorf("got %d records from an empty log, want 0", len(got))
	}
	n := 0
	if err := s.Rejections(t.Context(), eventstore.Query{}, func(uint64, eventstore.Rejection) error { n++; return nil }); err != nil {
		t.Fatalf("Rejections on an empty log: %v", err)
	}
	if n != 0 {
		t.Errorf("got %d rejections from an empty log, want 0", n)
	}
	if _, err := s.Get(t.Context(), 1); !errors.Is(err, eventstore.ErrNotFound) {
		t.Errorf("got %v from Get(1) on an empty log, want ErrNotFound", err)
	}
}

func testAppendLoadGet(t *testing.T, s eventstore.Store) {
	c := next("client-a", eventstore.Record{}, "cmd-1", base)
	c.CorrelationID = "corr-1"
	c.CommandSeq = 17
	got := appendOK(t, s, c, 0)
	if got.Position == 0 {
		t.Fatalf("got position 0 for an appended commit, want > 0")
	}
	raw, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	want := eventstore.Record{Position: got.Position, Commit: c, Hash: eventstore.Hash(raw)}
	wantRecord(t, "Append", got, want)

	loaded, err := s.Load(t.Context(), "client-a")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	wantRecord(t, "Load", loaded, want)
	byPos, err := s.Get(t.Context(), got.Position)
	if err != nil {
		t.Fatalf("Get(%d): %v", got.Position, err)
	}
	wantRecord(t, "Get", byPos, want)

	other, err := s.Load(t.Context(), "client-b")
	if err != nil {
		t.Fatalf("Load(client-b): %v", err)
	}
	wantRecord(t, "Load of another client", other, eventstore.Record{})
}

func testChain(t *testing.T, s eventstore.Store) {
	var prev eventstore.Record
	for i := range 5 {
		r := write(t, s, "client-a", fmt.Sprintf("cmd-%d", i), base.Add(time.Duration(i)*time.Minute))
		if r.Position <= prev.Position {
			t.Errorf("commit %d: got position %d after %d, want increasing", i, r.Position, prev.Position)
		}
		if r.Commit.PrevHash != prev.Hash {
			t.Errorf("commit %d: got prev hash %q, want %q", i, r.Commit.PrevHash, prev.Hash)
		}
		prev = r
	}
	loaded, err := s.Load(t.Context(), "client-a")
	if err != nil {
		t.Fatal(err)
	}
	wantRecord(t, "Load after 5 commits", loaded, prev)
	if got, want := loaded.Commit.State.LastRunAt, base.Add(5*time.Second); !got.Equal(want) {
		t.Errorf("got counter %v, want %v", got, want)
	}
}

func testConflict(t *testing.T, s eventstore.Store) {
	ctx := t.Context()
	first := appendOK(t, s, next("client-a", eventstore.Record{}, "cmd-1", base), 0)

	// A second writer that also loaded the empty client loses.
	_, err := s.Append(ctx, next("client-a", eventstore.Record{}, "cmd-2", base), 0)
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("got %v appending with expected 0 to a client with a commit, want ErrConflict", err)
	}
	second := appendOK(t, s, next("client-a", first, "cmd-2", base), first.Position)
	_, err = s.Append(ctx, next("client-a", first, "cmd-3", base), first.Position)
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("got %v appending with a stale expected position, want ErrConflict", err)
	}
	if errors.Is(err, eventstore.ErrDuplicate) {
		t.Fatalf("got %v: a new command is not a duplicate", err)
	}
	// A new client is at 0, whatever other clients' positions are.
	_, err = s.Append(ctx, next("client-new", eventstore.Record{}, "cmd-4", base), second.Position)
	if !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("got %v appending to a new client with expected %d, want ErrConflict", err, second.Position)
	}
	loaded, err := s.Load(ctx, "client-a")
	if err != nil {
		t.Fatal(err)
	}
	wantRecord(t, "Load after conflicts", loaded, second)
	if got := readAll(t, s, eventstore.Query{}); len(got) != 2 {
		t.Errorf("got %d commits, want 2: a conflicting append must write nothing (%v)", len(got), commandIDs(got))
	}
}

func testConflictPerClient(t *testing.T, s eventstore.Store) {
	a := write(t, s, "client-a", "a-1", base)
	write(t, s, "client-b", "b-1", base)
	write(t, s, "client-b", "b-2", base)
	// client-a's expected position is still a's latest, though the log moved on.
	appendOK(t, s, next("client-a", a, "a-2", base), a.Position)
}

func wantDuplicate(t *testing.T, err error, original eventstore.Record) {
	t.Helper()
	var dup *eventstore.DuplicateError
	if !errors.As(err, &dup) {
		t.Fatalf("got %v, want *DuplicateError", err)
	}
	if !errors.Is(err, eventstore.ErrDuplicate) {
		t.Errorf("got %v, want errors.Is ErrDuplicate", err)
	}
	if errors.Is(err, eventstore.ErrConflict) {
		t.Errorf("got %v: a duplicate must not also be a conflict", err)
	}
	wantRecord(t, "DuplicateError.Original", dup.Original, original)
}

func testDuplicate(t *testing.T, s eventstore.Store) {
	ctx := t.Context()
	c1 := next("client-a", eventstore.Record{}, "cmd-1", base)
	r1 := appendOK(t, s, c1, 0)

	// A publisher retry: the same commit with the same (now stale) expected position.
	_, err := s.Append(ctx, c1, 0)
	wantDuplicate(t, err, r1)
	// The same command re-decided on the client's current state.
	_, err = s.Append(ctx, next("client-a", r1, "cmd-1", base), r1.Position)
	wantDuplicate(t, err, r1)

	// Once a later command has landed, cmd-1 is still recognised (from the latest
	// commit's Recent list), whichever position the retry expects.
	r2 := appendOK(t, s, next("client-a", r1, "cmd-2", base), r1.Position)
	_, err = s.Append(ctx, c1, 0)
	wantDuplicate(t, err, r1)
	_, err = s.Append(ctx, next("client-a", r1, "cmd-1", base), r1.Position)
	wantDuplicate(t, err, r1)
	_, err = s.Append(ctx, next("client-a", r2, "cmd-1", base), r2.Position)
	wantDuplicate(t, err, r1)

	// The same command id on another client is another command.
	appendOK(t, s, next("client-b", eventstore.Record{}, "cmd-1", base), 0)

	if got, want := commandIDs(readAll(t, s, eventstore.Query{})), []string{"cmd-1", "cmd-2", "cmd-1"}; !cmp.Equal(got, want) {
		t.Errorf("got log %v, want %v: duplicates must write nothing", got, want)
	}
	loaded, err := s.Load(ctx, "client-a")
	if err != nil {
		t.Fatal(err)
	}
	wantRecord(t, "Load after duplicates", loaded, r2)
}

func testGetNotFound(t *testing.T, s eventstore.Store) {
	r := write(t, s, "client-a", "cmd-1", base)
	rej, err := s.Reject(t.Context(), eventstore.Rejection{Code: domain.RejectMalformed, Error: "not msgpack", At: base})
	if err != nil {
		t.Fatalf("Reject: %v", err)
	}
	for _, pos := range []uint64{0, rej, rej + 1000} {
		if _, err := s.Get(t.Context(), pos); !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("got %v from Get(%d), want ErrNotFound", err, pos)
		}
	}
	if _, err := s.Get(t.Context(), r.Position); err != nil {
		t.Errorf("Get(%d): %v", r.Position, err)
	}
}

func testReadRanges(t *testing.T, s eventstore.Store) {
	// a1 b1 a2 c1 b2 a3, one minute apart.
	order := []struct {
		client domain.ClientID
		cmd    string
	}{{"client-a", "a1"}, {"client-b", "b1"}, {"client-a", "a2"}, {"client-c", "c1"}, {"client-b", "b2"}, {"client-a", "a3"}}
	recs := map[string]eventstore.Record{}
	for i, o := range order {
		recs[o.cmd] = write(t, s, o.client, o.cmd, base.Add(time.Duration(i)*time.Minute))
		if i == 2 {
			if _, err := s.Reject(t.Context(), eventstore.Rejection{Client: "client-a", Code: domain.RejectInvalid, Error: "x", At: base}); err != nil {
				t.Fatal(err)
			}
		}
	}
	all := readAll(t, s, eventstore.Query{})
	for i := range all {
		wantRecord(t, "Read", all[i], recs[all[i].Commit.CommandID])
	}
	minute := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	tests := []struct {
		name string
		q    eventstore.Query
		want []string
	}{
		{"everything", eventstore.Query{}, []string{"a1", "b1", "a2", "c1", "b2", "a3"}},
		{"one client", eventstore.Query{Client: "client-a"}, []string{"a1", "a2", "a3"}},
		{"unknown client", eventstore.Query{Client: "client-z"}, nil},
		{"from", eventstore.Query{From: recs["a2"].Position}, []string{"a2", "c1", "b2", "a3"}},
		{"to", eventstore.Query{To: recs["a2"].Position}, []string{"a1", "b1", "a2"}},
		{"from to", eventstore.Query{From: recs["b1"].Position, To: recs["b2"].Position}, []string{"b1", "a2", "c1", "b2"}},
		{"from to one client", eventstore.Query{Client: "client-b", From: recs["b1"].Position + 1, To: recs["a3"].Position}, []string{"b2"}},
		{"from past the end", eventstore.Query{From: recs["a3"].Position + 100}, nil},
		{"since inclusive", eventstore.Query{Since: minute(3)}, []string{"c1", "b2", "a3"}},
		{"until exclusive", eventstore.Query{Until: minute(2)}, []string{"a1", "b1"}},
		{"since until", eventstore.Query{Since: minute(1), Until: minute(4)}, []string{"b1", "a2", "c1"}},
		{"since until one client", eventstore.Query{Client: "client-a", Since: minute(1), Until: minute(6)}, []string{"a2", "a3"}},
		{"empty time range", eventstore.Query{Since: minute(10)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := commandIDs(readAll(t, s, tt.q))
			if !cmp.Equal(got, tt.want, cmpopts.EquateEmpty()) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func testReadStopsAtCallTime(t *testing.T, s eventstore.Store) {
	for i := range 3 {
		write(t, s, "client-a", fmt.Sprintf("a%d", i), base)
	}
	write(t, s, "client-b", "b0", base)
	// Appending while reading must not make the read chase the log: it selects what the
	// log held when it was called.
	n := 0
	for _, q := range []eventstore.Query{{}, {Client: "client-a"}} {
		want := len(readAll(t, s, q))
		got := 0
		err := s.Read(t.Context(), q, func(r eventstore.Record) error {
			got++
			n++
			write(t, s, "client-a", fmt.Sprintf("during-%d", n), base)
			return nil
		})
		if err != nil {
			t.Fatalf("Read(%+v): %v", q, err)
		}
		if got != want {
			t.Errorf("Read(%+v) while appending: got %d records, want the %d present at the call", q, got, want)
		}
	}
	if all := readAll(t, s, eventstore.Query{}); len(all) != 4+n {
		t.Errorf("got %d commits, want %d", len(all), 4+n)
	}
}

func testReadCallbackError(t *testing.T, s eventstore.Store) {
	for i := range 4 {
		write(t, s, "client-a", fmt.Sprintf("a%d", i), base)
	}
	stop := errors.New("enough")
	calls := 0
	err := s.Read(t.Context(), eventstore.Query{}, func(eventstore.Record) error {
		calls++
		if calls == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Errorf("got %v, want the callback's error", err)
	}
	if calls != 2 {
		t.Errorf("got %d callback calls, want 2", calls)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Read(ctx, eventstore.Query{}, func(eventstore.Record) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v from Read with a cancelled context, want context.Canceled", err)
	}
}

func testRejections(t *testing.T, s eventstore.Store) {
	ctx := t.Context()
	r1 := write(t, s, "client-a", "a1", base)
	rejA := eventstore.Rejection{CommandID: "bad-1", Client: "client-a", Subject: "studyd.cmd.client-a",
		Code: domain.RejectInvalid, Error: "runner_status is empty", At: base.Add(time.Minute), Payload: []byte("{}")}
	posA, err := s.Reject(ctx, rejA)
	if err != nil {
		t.Fatalf("Reject: %v", err)
	}
	r2 := write(t, s, "client-a", "a2", base)
	rejNone := eventstore.Rejection{Code: domain.RejectMalformed, Error: "not msgpack", At: base.Add(2 * time.Minute)}
	posNone, err := s.Reject(ctx, rejNone)
	if err != nil {
		t.Fatalf("Reject: %v", err)
	}
	if !(r1.Position < posA && posA < r2.Position && r2.Position < posNone) {
		t.Errorf("got positions commit %d, rejection %d, commit %d, rejection %d; want one increasing sequence",
			r1.Position, posA, r2.Position, posNone)
	}
	rejA.Schema, rejNone.Schema = eventstore.RejectionSchemaVersion, eventstore.RejectionSchemaVersion

	type rej struct {
		Pos uint64
		R   eventstore.Rejection
	}
	list := func(q eventstore.Query) []rej {
		var out []rej
		if err := s.Rejections(ctx, q, func(p uint64, r eventstore.Rejection) error {
			out = append(out, rej{p, r})
			return nil
		}); err != nil {
			t.Fatalf("Rejections(%+v): %v", q, err)
		}
		return out
	}
	tests := []struct {
		name string
		q    eventstore.Query
		want []rej
	}{
		{"all", eventstore.Query{}, []rej{{posA, rejA}, {posNone, rejNone}}},
		{"client", eventstore.Query{Client: "client-a"}, []rej{{posA, rejA}}},
		{"from", eventstore.Query{From: posA + 1}, []rej{{posNone, rejNone}}},
		{"to", eventstore.Query{To: posA}, []rej{{posA, rejA}}},
		{"since", eventstore.Query{Since: base.Add(2 * time.Minute)}, []rej{{posNone, rejNone}}},
		{"until", eventstore.Query{Until: base.Add(2 * time.Minute)}, []rej{{posA, rejA}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, list(tt.q)); diff != "" {
				t.Errorf("Rejections (-want +got):\n%s", diff)
			}
		})
	}
	if got := commandIDs(readAll(t, s, eventstore.Query{})); !cmp.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("got commits %v, want [a1 a2]: rejections are not commits", got)
	}
	for _, w := range []rej{{posA, rejA}, {posNone, rejNone}} {
		got, err := s.Rejection(ctx, w.Pos)
		if err != nil {
			t.Errorf("Rejection(%d): %v", w.Pos, err)
		} else if diff := cmp.Diff(w.R, got); diff != "" {
			t.Errorf("Rejection(%d) (-want +got):\n%s", w.Pos, diff)
		}
	}
	for _, pos := range []uint64{0, r1.Position, r2.Position, posNone + 1000} {
		if _, err := s.Rejection(ctx, pos); !errors.Is(err, eventstore.ErrNotFound) {
			t.Errorf("got %v from Rejection(%d), want ErrNotFound (nothing there, or a commit)", err, pos)
		}
	}
	loaded, err := s.Load(ctx, "client-a")
	if err != nil {
		t.Fatal(err)
	}
	wantRecord(t, "Load after rejections", loaded, r2)
}

// testTooLarge appends a commit of 9 MiB, more than any store here accepts (NATS's
// default max_payload is 1 MiB, the embedded server's 8 MiB): ErrTooLarge, which is
// permanent, and the client's log is unchanged.
func testTooLarge(t *testing.T, s eventstore.Store) {
	const client = domain.ClientID("big")
	first := write(t, s, client, "cmd-1", base)
	c := next(client, first, "cmd-2", base.Add(time.Minute))
	reason := strings.Repeat("x", 1000)
	for range 9 << 10 {
		c.Events = append(c.Events, domain.Event{Type: domain.EventEnrollFailed, Slug: "s", Reason: reason})
	}
	_, err := s.Append(t.Context(), c, first.Position)
	if !errors.Is(err, eventstore.ErrTooLarge) {
		t.Fatalf("Append of a 9 MiB commit: got %v, want eventstore.ErrTooLarge", err)
	}
	if errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("Append of a 9 MiB commit: %v is also ErrUnavailable (retryable)", err)
	}
	got, err := s.Load(t.Context(), client)
	if err != nil || got.Position != first.Position {
		t.Fatalf("Load after the refused commit: got position %d (%v), want %d", got.Position, err, first.Position)
	}
}
