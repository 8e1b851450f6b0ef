package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/simulate"
	"github.com/studyd/studyd/srm"
)

// auditServer is a server with a small simulated fleet's log, applied by the real
// handler and store.
type auditServer struct {
	url      string
	events   map[domain.EventType]int
	rejected int
	client   domain.ClientID // a client with an enrollment
	study    domain.StudyRef // that enrollment's study
}

func startAuditServer(t *testing.T) auditServer {
	t.Helper()
	var s *server.Server
	s, _, js := natstest.StartWith(t, natstest.Config{Listen: true})
	ctx := context.Background()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	store := eventlog.NewStore(js)
	h := app.NewHandler(store, app.Config{})
	fleet, err := simulate.New(simulate.Config{Clients: 12, Days: 3, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	as := auditServer{url: s.ClientURL(), events: map[domain.EventType]int{}}
	err = fleet.Each(func(cmd domain.Command) error {
		res, err := h.Handle(ctx, cmd, app.Source{})
		if err != nil {
			as.rejected++
			_, err = store.Reject(ctx, eventstore.Rejection{CommandID: cmd.CommandID, Client: cmd.ClientID,
				Code: domain.ClassifyRejection(err), Error: err.Error(), At: cmd.At})
			return err
		}
		for _, e := range res.Record.Commit.Events {
			as.events[e.Type]++
			if e.Type == domain.EventEnrolled && as.client == "" {
				as.client, as.study = cmd.ClientID, e.Study()
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if as.client == "" {
		t.Fatal("the fleet enrolled nobody")
	}
	return as
}

func TestAuditExports(t *testing.T) {
	t.Parallel()
	as := startAuditServer(t)
	t.Run("telemetry", func(t *testing.T) {
		out, _, err := runCLI(t, "", "audit", "--server", as.url, "--format", "telemetry")
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		want := as.events[domain.EventEnrolled] + as.events[domain.EventEnrollFailed] + as.events[domain.EventUnenrolled]
		if len(lines) != want {
			t.Fatalf("got %d telemetry lines, want %d enrollment events", len(lines), want)
		}
		var te domain.TelemetryEvent
		if err := json.Unmarshal([]byte(lines[0]), &te); err != nil || te.Category != domain.TelemetryCategory {
			t.Errorf("first line %s: %v; want a normandy telemetry event", lines[0], err)
		}
	})
	t.Run("csv of one study", func(t *testing.T) {
		out, _, err := runCLI(t, "", "audit", "--server", as.url, "--format", "csv", "--study", as.study.String())
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil || len(rows) < 2 {
			t.Fatalf("got %d rows, %v; want a header and rows", len(rows), err)
		}
		for _, r := range rows[1:] {
			if r[10] != string(as.study.Object) || r[11] != as.study.Key {
				t.Fatalf("row %v is not about %s", r, as.study)
			}
		}
	})
	t.Run("rejections with a summary", func(t *testing.T) {
		out, errOut, err := runCLI(t, "", "audit", "--server", as.url, "--rejections", "--json")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out, "\n"); n != as.rejected {
			t.Errorf("got %d rejection lines, want %d", n, as.rejected)
		}
		var sum auditSummary
		if err := json.Unmarshal([]byte(errOut), &sum); err != nil || sum.Lines != uint64(as.rejected) {
			t.Errorf("summary %q: %v; want %d lines", errOut, err, as.rejected)
		}
	})
	t.Run("envelopes of one client", func(t *testing.T) {
		out, _, err := runCLI(t, "", "audit", "--server", as.url, "--client", string(as.client))
		if err != nil {
			t.Fatal(err)
		}
		prev := ""
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			var env audit.Envelope
			if err := json.Unmarshal([]byte(l), &env); err != nil {
				t.Fatal(err)
			}
			if env.Client != as.client || env.PrevHash != prev {
				t.Fatalf("envelope %d: client %s prev %s, want %s chained to %s", env.Seq, env.Client, env.PrevHash, as.client, prev)
			}
			prev = env.Hash
		}
	})
	if _, _, err := runCLI(t, "", "audit", "--server", as.url, "--format", "telemetry", "--rejections"); !errors.Is(err, audit.ErrFormat) {
		t.Errorf("telemetry rejections: got %v, want ErrFormat", err)
	}
}

func TestVerifyWithCheckpoint(t *testing.T) {
	t.Parallel()
	as := startAuditServer(t)
	key := filepath.Join(t.TempDir(), "ckpt.key")
	if _, _, err := runCLI(t, "", "keygen", "--out", key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runCLI(t, "", "keygen", "--out", key); err == nil {
		t.Errorf("keygen over an existing key: got nil error, want a refusal")
	}
	out, _, err := runCLI(t, "", "checkpoint", "--server", as.url, "--key", key, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var cp audit.Checkpoint
	if err := json.Unmarshal([]byte(out), &cp); err != nil || cp.Seq == 0 {
		t.Fatalf("checkpoint %s: %v", out, err)
	}
	out, _, err = runCLI(t, "", "verify", "--server", as.url, "--pubkey", key+".pub", "--json")
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	var r audit.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.CheckpointsChecked != 1 || !r.SignaturesChecked || r.FaultCount != 0 || r.LastSeq != cp.Seq {
		t.Errorf("report %+v: want 1 signed checkpoint checked, no fault, to seq %d", r, cp.Seq)
	}
	// Another key does not verify the checkpoint, and verify says so and fails.
	other := filepath.Join(t.TempDir(), "other.key")
	if _, _, err := runCLI(t, "", "keygen", "--out", other); err != nil {
		t.Fatal(err)
	}
	out, _, err = runCLI(t, "", "verify", "--server", as.url, "--pubkey", other+".pub")
	var f *audit.Fault
	if !errors.As(err, &f) || f.Kind != audit.FaultSignature || !strings.Contains(out, "bad_signature") {
		t.Errorf("verify with another key: got %v\n%s\nwant a bad_signature fault", err, out)
	}
}

// TestVerifySaysWhatItChecked: the verdict names every check, never a bare OK, and a
// private key given as --pubkey is refused naming the file.
func TestVerifySaysWhatItChecked(t *testing.T) {
	t.Parallel()
	as := startAuditServer(t)
	out, _, err := runCLI(t, "", "verify", "--server", as.url)
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	for _, want := range []string{"chain OK", "authorship NOT CHECKED", "signatures NOT CHECKED", "checkpoints NOT CHECKED", "views"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "result\tOK") || strings.Contains(out, "result  OK") {
		t.Errorf("verify output has a bare OK:\n%s", out)
	}
	key := filepath.Join(t.TempDir(), "ckpt.key")
	if _, _, err := runCLI(t, "", "keygen", "--out", key); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, "", "verify", "--server", as.url, "--pubkey", key)
	if !errors.Is(err, audit.ErrPrivateKey) || !strings.Contains(err.Error(), key) {
		t.Errorf("verify --pubkey <private key>: got %v, want ErrPrivateKey naming %s", err, key)
	}
}

func TestTimeTravel(t *testing.T) {
	t.Parallel()
	as := startAuditServer(t)
	out, _, err := runCLI(t, "", "explain", "--server", as.url, string(as.client), as.study.String(), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ex struct{ Steps []audit.Step }
	if err := json.Unmarshal([]byte(out), &ex); err != nil || len(ex.Steps) == 0 {
		t.Fatalf("explain %s: %v; want steps", out, err)
	}
	first := ex.Steps[0]
	if first.Event != domain.EventEnrolled && first.Event != domain.EventEnrollFailed || first.From != domain.StateNone {
		t.Errorf("first step %+v: want a start from none", first)
	}
	// As of the first step's commit, the study is in that step's state.
	out, _, err = runCLI(t, "", "asof", "--server", as.url, string(as.client), as.study.String(),
		"--seq", strconv.FormatUint(first.Seq, 10), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var a audit.AsOf
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatal(err)
	}
	if !a.Found || a.Seq != first.Seq || a.Enrollment == nil || a.Enrollment.State != first.To {
		t.Errorf("asof seq %d: %+v; want state %s", first.Seq, a, first.To)
	}
	out, _, err = runCLI(t, "", "health", "--server", as.url, string(as.study.Object), as.study.Key, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var h srm.StudyHealth
	if err := json.Unmarshal([]byte(out), &h); err != nil || h.Enrolled == 0 || len(h.Branches) == 0 {
		t.Fatalf("health %s: %v; want enrollments per branch", out, err)
	}
	var sum uint64
	for _, b := range h.Branches {
		sum += b.Enrolled
	}
	if sum != h.Enrolled || h.PValue < 0 || h.PValue > 1 {
		t.Errorf("health %+v: branches sum to %d of %d, p %v", h, sum, h.Enrolled, h.PValue)
	}
	if _, _, err := runCLI(t, "", "health", "--server", as.url, "preference_study"); err == nil {
		t.Errorf("health without a key: got nil error, want a usage error")
	}
	if _, _, err := runCLI(t, "", "asof", "--server", as.url, "x", "--at", "2018-01-01", "--seq", "3"); err == nil {
		t.Errorf("asof with --at and --seq: got nil error, want a usage error")
	}
}

// TestAsOfTimes: --at is the client's own time, --stored the log's; an empty answer
// is an error that says why.
func TestAsOfTimes(t *testing.T) {
	t.Parallel()
	as := startAuditServer(t)
	out, _, err := runCLI(t, "", "explain", "-s", as.url, string(as.client), as.study.String(), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var ex struct{ Steps []audit.Step }
	if err := json.Unmarshal([]byte(out), &ex); err != nil || len(ex.Steps) == 0 {
		t.Fatalf("explain %s: %v", out, err)
	}
	first := ex.Steps[0]
	// At the client's own time of the enrolling commit, asof finds a commit at or
	// before it, whose time is at or before it.
	out, stderr, err := runCLI(t, "", "asof", "-s", as.url, string(as.client), "--at", first.At.Format(time.RFC3339Nano), "--json")
	if err != nil {
		t.Fatalf("asof --at %s: %v (stderr %q)", first.At, err, stderr)
	}
	var a audit.AsOf
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatal(err)
	}
	if !a.Found || a.At.After(first.At) || a.Seq < first.Seq {
		t.Errorf("asof --at %s = seq %d at %s, want the commit at seq >= %d with a time at or before", first.At, a.Seq, a.At, first.Seq)
	}
	// The commits were stored now, long after their own times in 2018: the same
	// instant as a storage time finds nothing, and says so.
	_, _, err = runCLI(t, "", "asof", "-s", as.url, string(as.client), "--stored", first.At.Format(time.RFC3339Nano))
	if err == nil || !strings.Contains(err.Error(), "had no commit stored at or before") {
		t.Errorf("asof --stored %s: error %v, want one saying no commit was stored by then", first.At, err)
	}
	_, _, err = runCLI(t, "", "asof", "-s", as.url, string(as.client), "--at", "2000-01-01")
	if err == nil || !strings.Contains(err.Error(), "its first came later") {
		t.Errorf("asof --at 2000-01-01: error %v, want one saying its commits came later", err)
	}
	_, _, err = runCLI(t, "", "asof", "-s", as.url, "nobody-at-all")
	if err == nil || !strings.Contains(err.Error(), "has no commits") {
		t.Errorf("asof of an unknown client: error %v, want one saying it has no commits", err)
	}
	out, _, err = runCLI(t, "", "asof", "-s", as.url, string(as.client), "--stored", time.Now().Add(time.Hour).Format(time.RFC3339), "--json")
	if err != nil || json.Unmarshal([]byte(out), &a) != nil || !a.Found {
		t.Errorf("asof --stored in an hour: %v %s, want the latest state", err, out)
	}
}
