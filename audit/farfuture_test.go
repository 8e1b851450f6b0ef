package audit_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// farFuture is a commit of year 20983, which builds before issue 12 accepted from msgpack.
func farFuture(t *testing.T) (eventstore.Record, []byte) {
	t.Helper()
	at := time.Date(20983, 1, 1, 0, 0, 0, 0, time.UTC)
	c := eventstore.Commit{Schema: eventstore.SchemaVersion, CommitID: "x", CommandID: "run-far", CommandType: domain.CommandRecipeRun,
		Client: "c1", At: at, FSMVersion: "v",
		Events: []domain.Event{{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: domain.RunnerSuccess}},
		State:  domain.ClientState{Client: "c1", LastRunAt: at}}
	raw, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	return eventstore.Record{Position: 2, Commit: c}, raw
}

// Issue 12, case 3: `studyctl audit` failed at a commit of year 20983 (JSON cannot hold
// the time). The export skips and reports it, and goes on with the next record.
func TestExportSkipsARecordJSONCannotHold(t *testing.T) {
	rec, _ := farFuture(t)
	next := rec
	next.Position = 3
	next.Commit.At = time.Date(2018, 3, 12, 14, 0, 0, 0, time.UTC)
	next.Commit.State.LastRunAt = next.Commit.At
	for _, f := range []audit.Format{audit.FormatJSONL, audit.FormatCSV} {
		var out bytes.Buffer
		x, err := audit.NewExporter(&out, f, audit.Selection{}, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range []eventstore.Record{rec, next} {
			if err := x.Commit(r); err != nil {
				t.Fatalf("%s: Commit(seq %d): %v, want the export to go on", f, r.Position, err)
			}
		}
		if err := x.Close(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "2018-03-12T14:00:00Z") {
			t.Errorf("%s: the record after the bad one is missing:\n%s", f, out.String())
		}
		if f == audit.FormatJSONL && (len(x.Skipped) != 1 || x.Skipped[0].Seq != 2) {
			t.Errorf("%s: skipped %+v, want seq 2 reported", f, x.Skipped)
		}
	}
}

// Issue 12, case 3: verify reports such a commit instead of passing it silently.
func TestVerifyReportsATimeOutOfRange(t *testing.T) {
	_, raw := farFuture(t)
	v := audit.NewVerifier(audit.VerifyOptions{})
	v.Add(audit.Entry{Seq: 2, Subject: "studyd.evt.c1", Data: raw})
	rep := v.Finish()
	var f *audit.Fault
	if err := rep.Err(); !errors.As(err, &f) || f.Kind != audit.FaultTime || f.Seq != 2 {
		t.Fatalf("got %v (faults %+v), want a %s fault at seq 2", err, rep.Faults, audit.FaultTime)
	}
}
