package eventstore_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/studyd/studyd/domain"

	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/recipe"
)

var update = flag.Bool("update", false, "rewrite the golden files and fixtures under testdata/")

var (
	t0 = time.Date(2018, 9, 27, 14, 30, 5, 123456789, time.UTC)
	t1 = t0.Add(-72 * time.Hour)
)

// everyEvent is one canonical commit that holds every event type the log knows, so the
// golden file pins the wire form of all of them.
func everyEvent() eventstore.Commit {
	const client = domain.ClientID("c0ffee-1")
	pref := domain.StudyRef{Object: domain.PreferenceStudy, Key: "pref-flip-1"}
	addon := domain.StudyRef{Object: domain.AddonStudy, Key: "456"}
	failed := domain.StudyRef{Object: domain.AddonStudy, Key: "789"}
	old := domain.StudyRef{Object: domain.PreferenceStudy, Key: "old-pref"}
	prefID := domain.EnrollmentID(client, pref, "cmd-2")
	addonID := domain.EnrollmentID(client, addon, "cmd-2")
	oldID := domain.EnrollmentID(client, old, "cmd-1")
	return eventstore.Commit{
		Schema:        eventstore.SchemaVersion,
		CommitID:      "commit-2",
		CommandID:     "cmd-2",
		CommandType:   domain.CommandRecipeRun,
		CommandSeq:    42,
		CorrelationID: "corr-2",
		Client:        client,
		At:            t0,
		Events: []domain.Event{
			{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: domain.RunnerSuccess},
			{Type: domain.EventUptakeReported, Source: domain.ActionSource("preference-experiment"), Status: domain.ActionSuccess},
			{Type: domain.EventUptakeReported, Source: domain.RecipeSource(123), Status: domain.RecipeSuccess},
			{Type: domain.EventEnrolled, Object: pref.Object, Key: pref.Key, Slug: pref.Key, EnrollmentID: prefID,
				From: domain.StateNone, To: domain.StateEnrolled, Branch: "control",
				ExperimentType: domain.ExperimentTypeExp, Preference: "browser.pref-flip"},
			{Type: domain.EventEnrolled, Object: addon.Object, Key: addon.Key, Slug: "addon-study-1", EnrollmentID: addonID,
				From: domain.StateNone, To: domain.StateEnrolled, Branch: "treatment",
				AddonID: "study@example.com", AddonVersion: "1.2.3"},
			{Type: domain.EventEnrollFailed, Object: failed.Object, Key: failed.Key, Slug: "addon-study-2",
				From: domain.StateNone, To: domain.StateEnrollFailed, Reason: "download-failure"},
			{Type: domain.EventUnenrolled, Object: old.Object, Key: old.Key, Slug: old.Key, EnrollmentID: oldID,
				From: domain.StateEnrolled, To: domain.StateUnenrolled, Branch: "control",
				Reason: string(domain.ReasonRecipeNotSeen), ResetValue: true},
			{Type: domain.EventStudiesOptOutChanged, StudiesEnabled: true},
		},
		State: domain.ClientState{
			Client:    client,
			LastRunAt: t0,
			Enrollments: []domain.Enrollment{
				{Object: domain.AddonStudy, Key: "456", Slug: "addon-study-1", Action: "branched-addon-study",
					EnrollmentID: addonID, State: domain.StateEnrolled, Branch: "treatment",
					AddonID: "study@example.com", AddonVersion: "1.2.3", EnrolledAt: t0, LastSeen: t0},
				{Object: domain.AddonStudy, Key: "789", Slug: "addon-study-2", Action: "branched-addon-study",
					State: domain.StateEnrollFailed, EndedAt: t0, Reason: "download-failure", Failures: 1},
				{Object: domain.PreferenceStudy, Key: "old-pref", Slug: "old-pref", Action: "preference-experiment",
					EnrollmentID: oldID, State: domain.StateUnenrolled, Branch: "control",
					ExperimentType: domain.ExperimentTypeExpHighpop, Preference: "browser.old",
					EnrolledAt: t1, LastSeen: t1, EndedAt: t0, Reason: string(domain.ReasonRecipeNotSeen)},
				{Object: domain.PreferenceStudy, Key: "pref-flip-1", Slug: "pref-flip-1", Action: "preference-experiment",
					EnrollmentID: prefID, State: domain.StateEnrolled, Branch: "control",
					ExperimentType: domain.ExperimentTypeExp, Preference: "browser.pref-flip", EnrolledAt: t0, LastSeen: t0},
			},
		},
		Recent: []eventstore.Applied{
			{CommandID: "cmd-1", CommandSeq: 7, Position: 3},
			{CommandID: "cmd-2", CommandSeq: 42},
		},
		FSMVersion: "fsm-3b1f",
		PrevHash:   "5e1f0c2a9d7b3e8f6a4c1d0b9e8f7a6c5d4b3a2918f7e6d5c4b3a29180f7e6d5",
	}
}

// withRecipeFields is everyEvent with the fields added for real recipes set: the
// recipe's action, arguments and skip note on its uptake event, and what Firefox kept of
// a branch (preference type, branch type, value) and the study's ratios on enrollment
// events and enrollments. The older golden file proves commits without them encode as
// before; this one pins their wire form.
func withRecipeFields() eventstore.Commit {
	c := everyEvent()
	ratios := []recipe.Ratio{{Slug: "control", Ratio: 50}, {Slug: "treatment", Ratio: 25}, {Slug: "treatment-2", Ratio: 25}}
	c.Events[2].Action = "preference-experiment"
	c.Events[2].Arguments = `{"branches":[{"ratio":1,"slug":"control","value":true}],"experimentDocumentUrl":"https://example.org/d","slug":"pref-flip-1"}`
	c.Events[2].Skipped = "isEnrollmentPaused: no new enrollment"
	c.Events[3].PreferenceType, c.Events[3].PreferenceBranchType, c.Events[3].BranchValue = "boolean", "default", "true"
	c.Events[3].Ratios = ratios
	c.Events[4].Ratios = ratios
	c.Events[6].PreferenceType, c.Events[6].PreferenceBranchType, c.Events[6].BranchValue = "string", "user", `"on"`
	c.State.Enrollments[0].Ratios = ratios
	c.State.Enrollments[3].PreferenceType, c.State.Enrollments[3].PreferenceBranchType = "boolean", "default"
	c.State.Enrollments[3].BranchValue, c.State.Enrollments[3].Ratios = "true", ratios
	return c
}

// withVersionFields is withRecipeFields with the events and fields of later Firefox
// (issue 18): each later event type, the deciding Firefox version, originalReason, a
// rollout, and an enrollment's temporary-error deadline, preferences and overrides.
func withVersionFields() eventstore.Commit {
	c := withRecipeFields()
	t0 := c.At
	pref := c.State.Enrollments[3]
	for i := range c.Events {
		c.Events[i].FirefoxVersion = 80
	}
	c.Events = append(c.Events,
		domain.Event{Type: domain.EventUnenrollFailed, Object: domain.PreferenceStudy, Key: "old-pref", Slug: "old-pref",
			From: domain.StateUnenrolled, To: domain.StateUnenrolled, Reason: "already-unenrolled",
			OriginalReason: string(domain.ReasonIndividualOptOut), FirefoxVersion: 80},
		domain.Event{Type: domain.EventExpPrefChanged, Object: domain.PreferenceStudy, Key: "pref-flip-1", Slug: "pref-flip-1",
			From: domain.StateEnrolled, To: domain.StateEnrolled, Preference: "browser.pref-flip", Reason: "observer", FirefoxVersion: 100},
		domain.Event{Type: domain.EventUpdated, Object: domain.AddonStudy, Key: "456", Slug: "addon-study-1",
			From: domain.StateEnrolled, To: domain.StateEnrolled, Branch: "treatment", AddonID: "study@example.com", AddonVersion: "1.3.0", FirefoxVersion: 80},
		domain.Event{Type: domain.EventUpdateFailed, Object: domain.AddonStudy, Key: "456", Slug: "addon-study-1",
			From: domain.StateEnrolled, To: domain.StateEnrolled, Branch: "treatment", Reason: "no-downgrade", FirefoxVersion: 80},
		domain.Event{Type: domain.EventGraduated, Object: domain.PreferenceRollout, Key: "rollout-1", Slug: "rollout-1",
			From: domain.StateActive, To: domain.StateGraduated, Reason: string(domain.ReasonGraduateAllPrefsMatch), FirefoxVersion: 80},
	)
	pref.TemporaryErrorDeadline = t0.Add(7 * 24 * time.Hour)
	pref.Preferences = []string{"browser.pref-flip", "browser.pref-flip-2"}
	pref.Overridden = []string{"browser.pref-flip-2"}
	c.State.Enrollments[3] = pref
	return c
}

func TestEncodeVersionFieldsGolden(t *testing.T) {
	c := withVersionFields()
	got, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatalf("EncodeCommit: %v", err)
	}
	want := readGolden(t, "commit_v2_version_fields.golden", got)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding changed (%d bytes, golden %d): a stored commit would no longer hash the same", len(got), len(want))
	}
	for name, decode := range map[string]func([]byte) (eventstore.Commit, error){
		"fast": eventstore.DecodeCommit, "reflective": eventstore.DecodeCommitReflect} {
		back, err := decode(want)
		if err != nil {
			t.Fatalf("%s DecodeCommit(golden): %v", name, err)
		}
		if diff := cmp.Diff(c, back); diff != "" {
			t.Errorf("%s decoder reads the golden differently (-want +got):\n%s", name, diff)
		}
	}
}

func TestEncodeRecipeFieldsGolden(t *testing.T) {
	c := withRecipeFields()
	got, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatalf("EncodeCommit: %v", err)
	}
	want := readGolden(t, "commit_v2_recipe_fields.golden", got)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding changed (%d bytes, golden %d): a stored commit would no longer hash the same", len(got), len(want))
	}
	back, err := eventstore.DecodeCommit(want)
	if err != nil {
		t.Fatalf("DecodeCommit(golden): %v", err)
	}
	if diff := cmp.Diff(c, back); diff != "" {
		t.Errorf("golden decodes differently (-want +got):\n%s", diff)
	}
	reflected, err := eventstore.DecodeCommitReflect(want)
	if err != nil {
		t.Fatalf("reflective DecodeCommit(golden): %v", err)
	}
	if diff := cmp.Diff(c, reflected); diff != "" {
		t.Errorf("reflective decoder reads the golden differently (-want +got):\n%s", diff)
	}
}

func readGolden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s (run with -update to create it): %v", path, err)
	}
	return want
}

func TestEncodeCommitGolden(t *testing.T) {
	c := everyEvent()
	seen := map[domain.EventType]bool{}
	for _, e := range withVersionFields().Events {
		seen[e.Type] = true
	}
	for _, typ := range domain.EventTypes {
		if !seen[typ] {
			t.Fatalf("the golden commits lack event type %s; add one", typ)
		}
	}

	got, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatalf("EncodeCommit: %v", err)
	}
	want := readGolden(t, "commit_v2.golden", got)
	if !bytes.Equal(got, want) {
		t.Fatalf("encoding changed (%d bytes, golden %d): a stored commit would no longer hash the same;\n"+
			"bump SchemaVersion with an upcaster, or run with -update if the change is intended", len(got), len(want))
	}
	back, err := eventstore.DecodeCommit(want)
	if err != nil {
		t.Fatalf("DecodeCommit(golden): %v", err)
	}
	if diff := cmp.Diff(c, back); diff != "" {
		t.Errorf("golden decodes differently (-want +got):\n%s", diff)
	}
}

func TestFastEncoderMatchesReflection(t *testing.T) {
	zero := everyEvent()
	zero.At, zero.State.LastRunAt = time.Time{}, time.Time{}
	zero.Events, zero.Recent, zero.State.Enrollments = nil, nil, nil
	long := everyEvent()
	long.CommitID = string(bytes.Repeat([]byte("x"), 300)) // str16
	long.CommandSeq = 1 << 40
	long.State.Enrollments[0].Failures = 70000
	long.At = time.Date(2600, 1, 1, 0, 0, 0, 1, time.UTC) // 12-byte timestamp
	for i := range 20 {                                   // array16
		long.Events = append(long.Events, domain.Event{Type: domain.EventStudiesOptOutChanged, StudiesEnabled: i%2 == 0})
	}
	noCorr := everyEvent()
	noCorr.CorrelationID = ""
	noCorr.State.StudiesDisabled = true
	digest := everyEvent()
	digest.CommandDigest = "0123456789abcdef0123456789abcdef"
	for name, c := range map[string]eventstore.Commit{"every event": everyEvent(), "zero": zero, "long": long, "no correlation": noCorr,
		"digest": digest, "recipe fields": withRecipeFields(), "version fields": withVersionFields()} {
		t.Run(name, func(t *testing.T) {
			c.Schema = eventstore.SchemaVersion
			if c.CommandDigest != "" {
				raw, err := eventstore.EncodeCommit(c)
				if err != nil {
					t.Fatal(err)
				}
				if back, err := eventstore.DecodeCommit(raw); err != nil || back.CommandDigest != c.CommandDigest {
					t.Fatalf("got digest %q (%v) after a round trip, want %q", back.CommandDigest, err, c.CommandDigest)
				}
			}
			got, err := eventstore.EncodeCommit(c)
			if err != nil {
				t.Fatal(err)
			}
			want, err := eventstore.EncodeCommitReflect(c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got\n%x\nwant (reflective msgpack)\n%x", got, want)
			}
		})
	}
}

func TestEncodeCommitIsDeterministic(t *testing.T) {
	c := everyEvent()
	a, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	// The same instant in another zone, and nil vs empty slices, are the same commit.
	c.At = c.At.In(time.FixedZone("CEST", 2*3600))
	c.State.LastRunAt = c.State.LastRunAt.Local()
	b, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Errorf("got different bytes for the same instant in another zone")
	}
	if eventstore.Hash(a) != eventstore.Hash(b) {
		t.Errorf("got different hashes for equal commits")
	}

	empty := everyEvent()
	empty.Events, empty.Recent, empty.State.Enrollments = nil, nil, nil
	withEmpty := empty
	withEmpty.Events, withEmpty.Recent, withEmpty.State.Enrollments = []domain.Event{}, []eventstore.Applied{}, []domain.Enrollment{}
	x, err := eventstore.EncodeCommit(empty)
	if err != nil {
		t.Fatal(err)
	}
	y, err := eventstore.EncodeCommit(withEmpty)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x, y) {
		t.Errorf("got different bytes for nil and empty slices")
	}
}

func TestCanonicalIsWhatDecodeReturns(t *testing.T) {
	c := everyEvent()
	c.Schema = 0
	c.At = c.At.In(time.FixedZone("CEST", 2*3600))
	c.State.Enrollments[0].EnrolledAt = c.State.Enrollments[0].EnrolledAt.Local()
	c.Recent = []eventstore.Applied{}
	raw, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	want, err := eventstore.DecodeCommit(raw)
	if err != nil {
		t.Fatal(err)
	}
	before := c.State.Enrollments[0].EnrolledAt
	got := c.Canonical()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Canonical differs from a decode (-decode +canonical):\n%s", diff)
	}
	if got.Recent != nil || got.At.Location() != time.UTC {
		t.Errorf("got Recent %#v and zone %v, want nil and UTC", got.Recent, got.At.Location())
	}
	if c.State.Enrollments[0].EnrolledAt != before {
		t.Errorf("Canonical changed its receiver's enrollments")
	}
}

func TestHashChainsPrevHash(t *testing.T) {
	c := everyEvent()
	a, _ := eventstore.EncodeCommit(c)
	c.PrevHash = eventstore.Hash([]byte("another predecessor"))
	b, _ := eventstore.EncodeCommit(c)
	if eventstore.Hash(a) == eventstore.Hash(b) {
		t.Errorf("got the same hash for commits with different PrevHash, want different")
	}
	if got := len(eventstore.Hash(a)); got != 64 {
		t.Errorf("got hash of %d hex chars, want 64", got)
	}
}

// v1Fixture is the commit the v1 fixture holds, written with v1's layout.
type v1Fixture struct {
	Schema      int                `msgpack:"schema"`
	CommitID    string             `msgpack:"commit_id"`
	CommandID   string             `msgpack:"command_id"`
	CommandType domain.CommandType `msgpack:"command_type"`
	CommandSeq  uint64             `msgpack:"command_seq"`
	Client      domain.ClientID    `msgpack:"client"`
	At          time.Time          `msgpack:"at"`
	Changes     []domain.Event     `msgpack:"changes"`
	State       struct {
		Client      domain.ClientID              `msgpack:"client"`
		LastRunAt   time.Time                    `msgpack:"last_run_at,omitempty"`
		Enrollments map[string]domain.Enrollment `msgpack:"enrollments"`
	} `msgpack:"state"`
	Recent   []eventstore.Applied `msgpack:"recent"`
	PrevHash string               `msgpack:"prev_hash"`
}

// v1Want is what the v1 fixture upcasts to: everyEvent without what v1 did not record.
func v1Want() eventstore.Commit {
	c := everyEvent()
	c.CorrelationID = ""
	c.FSMVersion = ""
	return c
}

func TestDecodeCommitUpcastsV1(t *testing.T) {
	if *update {
		want := v1Want()
		var v1 v1Fixture
		v1.Schema, v1.CommitID, v1.CommandID, v1.CommandType = 1, want.CommitID, want.CommandID, want.CommandType
		v1.CommandSeq, v1.Client, v1.At, v1.Changes = want.CommandSeq, want.Client, want.At, want.Events
		v1.State.Client, v1.State.LastRunAt = want.State.Client, want.State.LastRunAt
		v1.State.Enrollments = map[string]domain.Enrollment{}
		for _, e := range want.State.Enrollments {
			v1.State.Enrollments[e.Study().String()] = e
		}
		v1.Recent, v1.PrevHash = want.Recent, want.PrevHash
		raw, err := msgpack.Marshal(&v1)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", "commit_v1.msgpack"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "commit_v1.msgpack"))
	if err != nil {
		t.Fatalf("read v1 fixture (run with -update to create it): %v", err)
	}
	got, err := eventstore.DecodeCommit(raw)
	if err != nil {
		t.Fatalf("DecodeCommit(v1): %v", err)
	}
	if diff := cmp.Diff(v1Want(), got); diff != "" {
		t.Errorf("v1 upcast (-want +got):\n%s", diff)
	}
	if got.Schema != eventstore.SchemaVersion {
		t.Errorf("got schema %d after upcast, want %d", got.Schema, eventstore.SchemaVersion)
	}
}

// rawMap encodes fields in the given order as a msgpack map: a way to write envelopes
// the encoder never would.
func rawMap(t *testing.T, kv ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	if err := enc.EncodeMapLen(len(kv) / 2); err != nil {
		t.Fatal(err)
	}
	for _, v := range kv {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestDecodeCommitRejects(t *testing.T) {
	good, err := eventstore.EncodeCommit(everyEvent())
	if err != nil {
		t.Fatal(err)
	}
	withEvent := func(e domain.Event) []byte {
		c := everyEvent()
		c.Events = []domain.Event{e}
		type loose eventstore.Commit // encode without Validate
		b, err := msgpack.Marshal((*loose)(&c))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	withState := func(s domain.State) []byte {
		c := everyEvent()
		c.State.Enrollments[0].State = s
		type loose eventstore.Commit
		b, _ := msgpack.Marshal((*loose)(&c))
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, eventstore.ErrCorrupt},
		{"not a map", []byte{0x93, 1, 2, 3}, eventstore.ErrCorrupt},
		{"truncated", good[:len(good)/2], eventstore.ErrCorrupt},
		{"trailing garbage", append(append([]byte{}, good...), 0xc0), eventstore.ErrCorrupt},
		{"schema not first", rawMap(t, "client", "c1", "schema", 2), eventstore.ErrCorrupt},
		{"schema 3", rawMap(t, "schema", 3), eventstore.ErrUnknownSchema},
		{"schema 0", rawMap(t, "schema", 0), eventstore.ErrUnknownSchema},
		{"array claims 4G elements", append(rawMap(t, "schema", 2, "events", nil)[:len(rawMap(t, "schema", 2, "events", nil))-1],
			0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0), eventstore.ErrCorrupt},
		{"nil time", rawMap(t, "schema", 2, "at", nil), eventstore.ErrCorrupt},
		{"unknown field", rawMap(t, "schema", 2, "surprise", 1), eventstore.ErrCorrupt},
		{"unknown event type", withEvent(domain.Event{Type: "exploded"}), eventstore.ErrCorrupt},
		{"unknown from state", withEvent(domain.Event{Type: domain.EventEnrolled, From: "limbo", To: domain.StateEnrolled}), eventstore.ErrCorrupt},
		{"unknown enrollment state", withState("limbo"), eventstore.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := eventstore.DecodeCommit(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestUnknownSchemaErrorNamesVersions(t *testing.T) {
	_, err := eventstore.DecodeCommit(rawMap(t, "schema", 9))
	if err == nil {
		t.Fatal("got nil error for schema 9")
	}
	for _, want := range []string{"9", "supported: 1, 2"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("got %q, want it to mention %q", err, want)
		}
	}
}

func TestEncodeCommitRejectsInvalid(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*eventstore.Commit)
	}{
		{"no client", func(c *eventstore.Commit) { c.Client = "" }},
		{"no command id", func(c *eventstore.Commit) { c.CommandID = "" }},
		{"state of another client", func(c *eventstore.Commit) { c.State.Client = "someone-else" }},
		{"unknown event type", func(c *eventstore.Commit) { c.Events[0].Type = "exploded" }},
		{"unsorted enrollments", func(c *eventstore.Commit) {
			e := c.State.Enrollments
			e[0], e[1] = e[1], e[0]
		}},
		{"future schema", func(c *eventstore.Commit) { c.Schema = 3 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := everyEvent()
			tt.mutate(&c)
			if _, err := eventstore.EncodeCommit(c); err == nil {
				t.Fatal("got nil error, want one")
			}
		})
	}
}

func sampleRejection() eventstore.Rejection {
	return eventstore.Rejection{
		CommandID: "cmd-9", Client: "c0ffee-1", Subject: "studyd.cmd.c0ffee-1",
		Code: domain.RejectInvalid, Error: "domain: invalid: runner_status is empty", At: t0,
		Payload: []byte(`{"type":"recipe_run"}`),
	}
}

func TestRejectionRoundTrip(t *testing.T) {
	r := sampleRejection()
	raw, err := eventstore.EncodeRejection(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := eventstore.DecodeRejection(raw)
	if err != nil {
		t.Fatal(err)
	}
	r.Schema = eventstore.RejectionSchemaVersion
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}

	big := sampleRejection()
	big.Payload = bytes.Repeat([]byte("x"), eventstore.MaxRejectedPayload+100)
	raw, err = eventstore.EncodeRejection(big)
	if err != nil {
		t.Fatal(err)
	}
	got, err = eventstore.DecodeRejection(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Payload) != eventstore.MaxRejectedPayload {
		t.Errorf("got payload of %d bytes, want %d", len(got.Payload), eventstore.MaxRejectedPayload)
	}

	bad := sampleRejection()
	bad.Code = "grumpy"
	if _, err := eventstore.EncodeRejection(bad); err == nil {
		t.Errorf("got nil error for unknown code, want one")
	}
	if _, err := eventstore.DecodeRejection(rawMap(t, "schema", 2)); !errors.Is(err, eventstore.ErrUnknownSchema) {
		t.Errorf("got %v, want ErrUnknownSchema", err)
	}
	if _, err := eventstore.DecodeRejection(append(raw, 1)); !errors.Is(err, eventstore.ErrCorrupt) {
		t.Errorf("got %v for trailing bytes, want ErrCorrupt", err)
	}
}

func BenchmarkDecodeCommit(b *testing.B) {
	raw, err := eventstore.EncodeCommit(everyEvent())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := eventstore.DecodeCommit(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeCommit(b *testing.B) {
	c := everyEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := eventstore.EncodeCommit(c); err != nil {
			b.Fatal(err)
		}
	}
}
