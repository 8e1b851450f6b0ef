package app

import (
	"context"
	"encoding/hex"
	"fmt"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/recipe"
	"github.com/studyd/studyd/simulate"
)

// A few values of each low-cardinality field, so that interning is exercised, and any
// string besides, so that the inline fallback is.
func lowCard(pool ...string) *rapid.Generator[string] {
	return rapid.OneOf(rapid.SampledFrom(append([]string{""}, pool...)), rapid.String())
}

func drawTime(t *rapid.T, label string) time.Time {
	if rapid.Bool().Draw(t, label+"_zero") {
		return time.Time{}
	}
	// Normalised as a reader decodes it: UTC, no monotonic reading.
	sec := rapid.Int64Range(-1<<40, 1<<40).Draw(t, label+"_sec")
	nsec := rapid.Int64Range(0, 999_999_999).Draw(t, label+"_nsec")
	return time.Unix(sec, nsec).UTC()
}

func drawID(t *rapid.T, label string, client domain.ClientID) string {
	switch rapid.IntRange(0, 3).Draw(t, label+"_form") {
	case 0:
		var u [16]byte
		copy(u[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, label+"_uuid"))
		return formatUUID(u)
	case 1:
		return string(client) + rapid.String().Draw(t, label+"_suffix")
	case 2: // an upper-case UUID is not the canonical form: it must come back as it was
		var u [16]byte
		copy(u[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, label+"_uuid"))
		s := formatUUID(u)
		b := []byte(s)
		for i, c := range b {
			if c >= 'a' && c <= 'f' {
				b[i] = c - 'a' + 'A'
			}
		}
		return string(b)
	default:
		return rapid.String().Draw(t, label+"_any")
	}
}

func drawEnrollment(t *rapid.T, client domain.ClientID) domain.Enrollment {
	en := domain.Enrollment{
		Object:               domain.Object(lowCard(knownObjects...).Draw(t, "object")),
		Key:                  lowCard("pref-flip", "12345").Draw(t, "key"),
		Slug:                 lowCard("pref-flip", "addon-study").Draw(t, "slug"),
		Action:               lowCard("preference-experiment", "opt-out-study").Draw(t, "action"),
		EnrollmentID:         drawID(t, "enrollment_id", client),
		State:                domain.State(lowCard(knownStates...).Draw(t, "state")),
		Branch:               lowCard("control", "treatment").Draw(t, "branch"),
		ExperimentType:       domain.ExperimentType(lowCard(knownTypes...).Draw(t, "experiment_type")),
		Preference:           lowCard("browser.x").Draw(t, "preference"),
		AddonID:              lowCard("addon@example.com").Draw(t, "addon_id"),
		AddonVersion:         lowCard("1.0").Draw(t, "addon_version"),
		EnrolledAt:           drawTime(t, "enrolled_at"),
		LastSeen:             drawTime(t, "last_seen"),
		EndedAt:              drawTime(t, "ended_at"),
		Reason:               lowCard("recipe-not-seen", "general-opt-out").Draw(t, "reason"),
		Failures:             rapid.Int().Draw(t, "failures"),
		PreferenceType:       lowCard("boolean", "string").Draw(t, "preference_type"),
		PreferenceBranchType: lowCard("user", "default").Draw(t, "preference_branch_type"),
		BranchValue:          domain.JSONText(lowCard("true", `"x"`).Draw(t, "branch_value")),
	}
	for i := range rapid.IntRange(0, 3).Draw(t, "ratios") {
		en.Ratios = append(en.Ratios, recipe.Ratio{
			Slug:  lowCard("control", "treatment").Draw(t, fmt.Sprint("ratio_slug_", i)),
			Ratio: rapid.Uint64().Draw(t, fmt.Sprint("ratio_", i)),
		})
	}
	return en
}

func drawRecord(t *rapid.T) eventstore.Record {
	client := domain.ClientID(rapid.StringMatching(`[a-z0-9-]{1,40}`).Draw(t, "client"))
	r := eventstore.Record{Position: rapid.Uint64().Draw(t, "position")}
	if rapid.Bool().Draw(t, "hex_hash") {
		r.Hash = hex.EncodeToString(rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "hash"))
	} else {
		r.Hash = rapid.String().Draw(t, "hash_any")
	}
	r.Commit.Client = client
	r.Commit.State.Client = client
	if rapid.IntRange(0, 9).Draw(t, "other_state_client") == 0 {
		r.Commit.State.Client = domain.ClientID(rapid.String().Draw(t, "state_client"))
	}
	r.Commit.State.StudiesDisabled = rapid.Bool().Draw(t, "studies_disabled")
	r.Commit.State.LastRunAt = drawTime(t, "last_run_at")
	for range rapid.IntRange(0, 6).Draw(t, "enrollments") {
		r.Commit.State.Enrollments = append(r.Commit.State.Enrollments, drawEnrollment(t, client))
	}
	for i := range rapid.IntRange(0, eventstore.RecentCommands).Draw(t, "recent") {
		r.Commit.Recent = append(r.Commit.Recent, eventstore.Applied{
			CommandID:  drawID(t, fmt.Sprint("command_id_", i), client),
			CommandSeq: rapid.Uint64().Draw(t, fmt.Sprint("command_seq_", i)),
			Position:   rapid.Uint64().Draw(t, fmt.Sprint("recent_position_", i)),
		})
	}
	// Fields the cache does not keep, so that leaving them out is checked too.
	r.Commit.CommandID = rapid.String().Draw(t, "command_id")
	r.Commit.Events = []domain.Event{{Type: domain.EventType("x")}}
	return r
}

// TestCompactRecordRoundTrips: every field of what the cache keeps comes back exactly
// as a reader decodes it from the log, interned or inline, whatever the interner's room.
func TestCompactRecordRoundTrips(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := &interner{ids: map[string]uint32{}, maxBytes: rapid.SampledFrom([]int{0, 200, 1 << 20}).Draw(t, "intern_bytes")}
		records := rapid.SliceOfN(rapid.Custom(drawRecord), 1, 4).Draw(t, "records")
		encoded := make([][]byte, len(records))
		for i, r := range records { // all encoded first: later ones add interned strings
			encoded[i] = encodeCompact(nil, r, in)
		}
		for i, r := range records {
			got, err := decodeCompact(r.Commit.Client, encoded[i], in.strs)
			if err != nil {
				t.Fatalf("decode record %d: %v", i, err)
			}
			if want := cachedView(r); !reflect.DeepEqual(got, want) {
				t.Fatalf("record %d round trip:\ngot  %#v\nwant %#v", i, got, want)
			}
		}
		if in.bytes > in.maxBytes {
			t.Fatalf("interner holds %d bytes, bound %d", in.bytes, in.maxBytes)
		}
	})
}

// TestCompactRecordRejectsTruncation: a cut entry is an error, never a wrong record.
func TestCompactRecordRejectsTruncation(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := &interner{ids: map[string]uint32{}, maxBytes: 1 << 20}
		r := drawRecord(t)
		b := encodeCompact(nil, r, in)
		cut := rapid.IntRange(0, len(b)-1).Draw(t, "cut")
		if _, err := decodeCompact(r.Commit.Client, b[:cut], in.strs); err == nil {
			t.Fatalf("decoding %d of %d bytes succeeded, want an error", cut, len(b))
		}
	})
}

// TestCacheKeepsSimulatedClients: the records of a simulated fleet, run through the
// handler, come back from the cache as the log holds them.
func TestCacheKeepsSimulatedClients(t *testing.T) {
	t.Parallel()
	f, err := simulate.New(simulate.Config{Clients: 300, Days: 30, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	store := eventstore.NewMemoryStore()
	h := NewHandler(store, Config{})
	ctx := context.Background()
	clients := map[domain.ClientID]bool{}
	for range 3000 {
		cmd, ok := f.Next()
		if !ok {
			break
		}
		if _, err := h.Handle(ctx, cmd, Source{}); err != nil && !domain.IsRejection(err) {
			t.Fatalf("Handle %s: %v", cmd.CommandID, err)
		}
		clients[cmd.ClientID] = true
	}
	enrollments := 0
	for c := range clients {
		want, err := store.Load(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := h.cache.get(c)
		if !ok {
			t.Fatalf("client %s not cached", c)
		}
		if !reflect.DeepEqual(got, cachedView(want)) {
			t.Fatalf("client %s from the cache:\ngot  %#v\nwant %#v", c, got, cachedView(want))
		}
		enrollments += len(want.Commit.State.Enrollments)
	}
	if enrollments == 0 {
		t.Fatal("the fleet enrolled nobody: the test checks nothing")
	}
}

// sizedRecord is a record of client whose compact form is a little over n bytes.
func sizedRecord(client domain.ClientID, n int) eventstore.Record {
	r := eventstore.Record{Position: 1, Commit: eventstore.Commit{Client: client}}
	r.Commit.State.Client = client
	// Command ids are neither interned nor packed: they take their length.
	for i := 0; i < eventstore.RecentCommands && n > 0; i++ {
		id := fmt.Sprintf("%0*d", max(1, min(n, 1000)), i)
		r.Commit.Recent = append(r.Commit.Recent, eventstore.Applied{CommandID: id})
		n -= len(id)
	}
	return r
}

// TestCacheBoundedInBytes: whatever the records' sizes, the cache never counts more
// than its byte bound, its count is what its entries cost, and it keeps serving.
func TestCacheBoundedInBytes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		maxBytes := rapid.IntRange(1<<10, 1<<16).Draw(t, "max_bytes")
		c := newCache(1_000_000, maxBytes)
		for i := range rapid.IntRange(1, 300).Draw(t, "puts") {
			client := domain.ClientID(fmt.Sprint("c", rapid.IntRange(0, 50).Draw(t, fmt.Sprint("client_", i))))
			r := sizedRecord(client, rapid.IntRange(0, 3000).Draw(t, fmt.Sprint("size_", i)))
			c.put(r)
			if got := c.size(); got > maxBytes {
				t.Fatalf("after put %d: cache counts %d bytes, bound %d", i, got, maxBytes)
			}
			sum := 0
			for k, b := range c.records {
				sum += entryCost(k, b)
			}
			if sum != c.bytes {
				t.Fatalf("after put %d: cache counts %d bytes for its entries, they cost %d", i, c.bytes, sum)
			}
			got, ok := c.get(client)
			enc := encodeCompact(nil, r, &c.in)
			if fits := entryCost(client, enc[:len(enc):len(enc)]) <= c.limit(); ok != fits {
				t.Fatalf("after put %d: cached %t, want %t (entry fits: %t)", i, ok, fits, fits)
			}
			if ok && !reflect.DeepEqual(got, cachedView(r)) {
				t.Fatalf("after put %d: got %#v, want %#v", i, got, cachedView(r))
			}
		}
	})
}

// TestCacheTooLargeEntryDropsTheOldOne: a record too large to keep must not leave the
// client's previous (now stale) record behind.
func TestCacheTooLargeEntryDropsTheOldOne(t *testing.T) {
	c := newCache(100, 4096)
	c.put(sizedRecord("c1", 10))
	if _, ok := c.get("c1"); !ok {
		t.Fatal("small record not cached")
	}
	c.put(sizedRecord("c1", 8000))
	if r, ok := c.get("c1"); ok {
		t.Fatalf("got a record of %d recent ids after a record too large to keep, want none", len(r.Commit.Recent))
	}
	if c.bytes != 0 {
		t.Fatalf("cache counts %d bytes with no entry, want 0", c.bytes)
	}
}

// TestCacheBoundedInEntries: the entry bound still holds beside the byte bound.
func TestCacheBoundedInEntries(t *testing.T) {
	c := newCache(10, DefaultCacheBytes)
	for i := range 100 {
		c.put(sizedRecord(domain.ClientID(fmt.Sprint("c", i)), 10))
		if n := c.len(); n > 10 {
			t.Fatalf("after %d puts: %d entries, bound 10", i+1, n)
		}
	}
}

// TestInternerBounded: distinct strings past the interner's room are kept inline, so
// clients sending ever new values cannot grow the table past its share of the bound.
func TestInternerBounded(t *testing.T) {
	c := newCache(1_000_000, 1<<16)
	for i := range 5000 {
		r := sizedRecord(domain.ClientID(fmt.Sprint("c", i)), 0)
		r.Commit.State.Enrollments = []domain.Enrollment{{Object: domain.PreferenceStudy, Key: fmt.Sprint("study-", i), State: domain.StateEnrolled}}
		c.put(r)
		got, ok := c.get(r.Commit.Client)
		if ok && got.Commit.State.Enrollments[0].Key != r.Commit.State.Enrollments[0].Key {
			t.Fatalf("client %d: key %q, want %q", i, got.Commit.State.Enrollments[0].Key, r.Commit.State.Enrollments[0].Key)
		}
	}
	if c.in.bytes > c.in.maxBytes || c.in.maxBytes > 1<<16/16 {
		t.Fatalf("interner holds %d bytes, bound %d (a sixteenth of %d)", c.in.bytes, c.in.maxBytes, 1<<16)
	}
	if c.size() > 1<<16 {
		t.Fatalf("cache counts %d bytes, bound %d", c.size(), 1<<16)
	}
}
