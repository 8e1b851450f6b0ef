package audit_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/audit/audittest"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/simulate"
)

func export(t *testing.T, f audit.Format, sel audit.Selection) (string, *audit.Exporter, int) {
	t.Helper()
	recs, err := fleet(t).Records()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	x, err := audit.NewExporter(&buf, f, sel, false)
	if err != nil {
		t.Fatal(err)
	}
	events := 0
	for _, r := range recs {
		if err := x.Commit(r); err != nil {
			t.Fatal(err)
		}
		if sel.Match(&r.Commit) {
			_ = sel.Events(&r.Commit, func(int, *domain.Event) error { events++; return nil })
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String(), x, events
}

// anyStudy is a study that some commit of the fleet enrolls into.
func anyStudy(t *testing.T) domain.StudyRef {
	t.Helper()
	recs, _ := fleet(t).Records()
	for _, r := range recs {
		for _, e := range r.Commit.Events {
			if e.Type == domain.EventEnrolled {
				return e.Study()
			}
		}
	}
	t.Fatal("no enrollment in the fleet log")
	return domain.StudyRef{}
}

func TestExportTelemetry(t *testing.T) {
	t.Parallel()
	out, x, _ := export(t, audit.FormatTelemetry, audit.Selection{})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if x.Lines == 0 || len(lines) != int(x.Lines) {
		t.Fatalf("got %d lines, exporter counted %d; want some and equal", len(lines), x.Lines)
	}
	want := []string{"category", "client_id", "extra", "method", "object", "timestamp", "value"}
	for _, l := range lines {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, want) {
			t.Fatalf("line %s: keys %v, want exactly %v", l, keys, want)
		}
		var te domain.TelemetryEvent
		if err := json.Unmarshal([]byte(l), &te); err != nil {
			t.Fatal(err)
		}
		if te.Category != "normandy" || te.Timestamp < 1e12 || len(te.Extra) == 0 {
			t.Fatalf("line %s: want category normandy, a millisecond timestamp and extras", l)
		}
		if _, err := domain.ParseMethod(string(te.Method)); err != nil {
			t.Fatalf("line %s: %v", l, err)
		}
	}
}

func TestExportCSVOneRowPerEvent(t *testing.T) {
	t.Parallel()
	study := anyStudy(t)
	for _, sel := range []audit.Selection{{}, {Study: study}} {
		out, x, events := export(t, audit.FormatCSV, sel)
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows)-1 != events || events == 0 || uint64(events) != x.Lines {
			t.Errorf("study %q: got %d rows, want %d events", sel.Study, len(rows)-1, events)
		}
		if !slices.Equal(rows[0], audit.CSVHeader) {
			t.Errorf("header %v, want %v", rows[0], audit.CSVHeader)
		}
		if sel.Study.Object != "" {
			for _, r := range rows[1:] {
				if r[10] != string(study.Object) || r[11] != study.Key {
					t.Fatalf("row %v is not about %s", r, study)
				}
			}
		}
	}
}

func TestExportJSONLEnvelopes(t *testing.T) {
	t.Parallel()
	out, x, _ := export(t, audit.FormatJSONL, audit.Selection{})
	recs, _ := fleet(t).Records()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(recs) || x.Commits != uint64(len(recs)) {
		t.Fatalf("got %d envelopes, want %d", len(lines), len(recs))
	}
	var env audit.Envelope
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &env); err != nil {
		t.Fatal(err)
	}
	last := recs[len(recs)-1]
	if env.Seq != last.Position || env.Hash != last.Hash || env.PrevHash != last.Commit.PrevHash || env.CommandID != last.Commit.CommandID {
		t.Errorf("envelope %+v does not match record at %d", env, last.Position)
	}
}

func TestExportRejections(t *testing.T) {
	t.Parallel()
	if _, err := audit.NewExporter(&bytes.Buffer{}, audit.FormatTelemetry, audit.Selection{}, true); !errors.Is(err, audit.ErrFormat) {
		t.Errorf("telemetry rejections: got %v, want ErrFormat", err)
	}
	if _, err := audit.ParseFormat("xml"); !errors.Is(err, audit.ErrFormat) {
		t.Errorf("ParseFormat(xml): got %v, want ErrFormat", err)
	}
	var buf bytes.Buffer
	x, err := audit.NewExporter(&buf, audit.FormatJSONL, audit.Selection{}, true)
	if err != nil {
		t.Fatal(err)
	}
	rej := eventstore.Rejection{CommandID: "c1", Client: "x", Code: domain.RejectStale, Error: "stale run", Payload: []byte("{}")}
	if err := x.Rejection(9, rej); err != nil {
		t.Fatal(err)
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	var got audit.RejectionLine
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Seq != 9 || got.Code != domain.RejectStale || got.Payload != "{}" {
		t.Errorf("got %+v, want seq 9, code stale, payload {}", got)
	}
}

func TestParseStudy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want domain.StudyRef
		ok   bool
	}{
		{in: "preference_study/pref-1", want: domain.StudyRef{Object: domain.PreferenceStudy, Key: "pref-1"}, ok: true},
		{in: "addon_study/42", want: domain.StudyRef{Object: domain.AddonStudy, Key: "42"}, ok: true},
		{in: "addon_study/slug"},
		{in: "pref-1"},
		{in: "experiment/x"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := audit.ParseStudy(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseStudy(%q) = %v, %v; want %v, ok %t", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

// TestExportJSONLShowsWhatTheClientRan: a recipe's uptake event carries the recipe's
// action and its whole arguments, and the JSONL audit shows the arguments as the JSON
// object the client received, not as an escaped string.
func TestExportJSONLShowsWhatTheClientRan(t *testing.T) {
	t.Parallel()
	out, _, _ := export(t, audit.FormatJSONL, audit.Selection{})
	var seen int
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var env struct {
			Events []struct {
				Source    string          `json:"source"`
				Action    string          `json:"action"`
				Arguments json.RawMessage `json:"arguments"`
			} `json:"events"`
		}
		if err := json.Unmarshal([]byte(line), &env); err != nil {
			t.Fatal(err)
		}
		for _, e := range env.Events {
			if !strings.HasPrefix(e.Source, "normandy/recipe/") {
				continue
			}
			if e.Action == "" || len(e.Arguments) == 0 || e.Arguments[0] != '{' {
				t.Fatalf("recipe event %s: action %q, arguments %s; want the action and a JSON object", e.Source, e.Action, e.Arguments)
			}
			seen++
		}
	}
	if seen == 0 {
		t.Fatal("no recipe uptake events in the export")
	}
}

// TestExportVersionedTelemetry: a mixed-version fleet's events are exported in the
// Telemetry shape of the Firefox that decided them (enrollmentId exactly for Firefox
// 72–95), and the CSV names that version.
func TestExportVersionedTelemetry(t *testing.T) {
	t.Parallel()
	l, err := audittest.FleetOf(simulate.Config{Clients: 60, Days: 6, Seed: 9, Versions: simulate.MixedFleet})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := l.Records()
	if err != nil {
		t.Fatal(err)
	}
	withID := map[bool]int{}
	for _, r := range recs {
		for _, e := range r.Commit.Events {
			te, ok := e.Telemetry(r.Commit.Client, r.Commit.At)
			if !ok || e.EnrollmentID == "" || te.Method == domain.MethodEnrollFailed || te.Method == domain.MethodExpPrefChanged {
				continue
			}
			_, has := te.Extra["enrollmentId"]
			want := e.FirefoxVersion >= 72 && e.FirefoxVersion <= 95
			if has != want {
				t.Fatalf("Firefox %s %s %s: enrollmentId present %t, want %t", e.FirefoxVersion, te.Method, te.Object, has, want)
			}
			withID[has]++
		}
	}
	if withID[true] == 0 || withID[false] == 0 {
		t.Fatalf("events with and without enrollmentId: %v, want both", withID)
	}
	var buf bytes.Buffer
	x, err := audit.NewExporter(&buf, audit.FormatCSV, audit.Selection{}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := x.Commit(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := slices.Index(rows[0], "firefox_version")
	versions := map[string]bool{}
	for _, row := range rows[1:] {
		versions[row[col]] = true
	}
	for _, v := range []string{"", "60", "70", "80", "100"} {
		if !versions[v] {
			t.Errorf("no CSV row decided by Firefox %q, want some (got %v)", v, versions)
		}
	}
}

// TestExportNamesAndCells: JSONL uses the JSON names throughout (recent commands
// included), and a CSV row fills reset_value and studies_enabled only for the events
// that carry them.
func TestExportNamesAndCells(t *testing.T) {
	t.Parallel()
	out, _, _ := export(t, audit.FormatJSONL, audit.Selection{})
	for _, goName := range []string{`"CommandID"`, `"CommandSeq"`, `"Position"`} {
		if strings.Contains(out, goName) {
			t.Errorf("jsonl export has the Go field name %s", goName)
		}
	}
	if !strings.Contains(out, `"recent":[{"command_id":`) {
		t.Errorf("jsonl export lacks recent commands with JSON names")
	}
	out, _, _ = export(t, audit.FormatCSV, audit.Selection{})
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := func(name string) int { return slices.Index(audit.CSVHeader, name) }
	typ, obj, reset, enabled := col("type"), col("object"), col("reset_value"), col("studies_enabled")
	seen := map[string]bool{}
	for _, r := range rows[1:] {
		wantReset := r[typ] == string(domain.EventUnenrolled) && r[obj] == string(domain.PreferenceStudy)
		if (r[reset] != "") != wantReset {
			t.Fatalf("row %v: reset_value %q, want it set only on a preference study's unenroll", r, r[reset])
		}
		wantEnabled := r[typ] == string(domain.EventStudiesOptOutChanged)
		if (r[enabled] != "") != wantEnabled {
			t.Fatalf("row %v: studies_enabled %q, want it set only on an opt-out change", r, r[enabled])
		}
		seen[r[typ]] = true
	}
	if !seen[string(domain.EventUptakeReported)] || !seen[string(domain.EventUnenrolled)] {
		t.Errorf("the fleet's export lacks uptake or unenroll rows: %v", seen)
	}
}
