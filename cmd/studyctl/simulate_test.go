package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/intake"
	"github.com/studyd/studyd/adapters/nats/natstest"
	querysvc "github.com/studyd/studyd/adapters/nats/query"
	"github.com/studyd/studyd/adapters/nats/views"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
	"github.com/studyd/studyd/simulate"
)

// noEnv is a getenv with nothing set.
func noEnv(string) string { return "" }

// runCLI runs studyctl with args and returns its stdout, stderr and error.
func runCLI(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, noEnv, strings.NewReader(stdin), &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

// commandsStream creates a plain work-queue STUDYD_CMDS (studyd's, minus partitioning).
func commandsStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: client.CommandsStream, Subjects: []string{"studyd.cmd.>"},
		Retention: jetstream.WorkQueuePolicy, Duplicates: time.Minute,
	})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	return s
}

func TestSimulatePublishesEveryCommand(t *testing.T) {
	tests := []struct {
		name   string
		format string
	}{
		{"msgpack", "msgpack"},
		{"json", "json"},
	}
	cfg := simulate.Config{Clients: 30, Days: 2, Seed: 5}
	f, err := simulate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[domain.CommandType]int{}
	total := 0
	if err := f.Each(func(c domain.Command) error { want[c.Type]++; total++; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, js := natstest.StartWith(t, natstest.Config{Listen: true})
			stream := commandsStream(t, js)
			out, _, err := runCLI(t, "", "simulate", "--server", s.ClientURL(), "--clients", "30", "--days", "2",
				"--seed", "5", "--format", tt.format, "--in-flight", "8", "--json", "--no-wait")
			if err != nil {
				t.Fatalf("simulate: %v", err)
			}
			var rep simulateReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("decode report %q: %v", out, err)
			}
			if rep.Sent != total || rep.Acked != total {
				t.Errorf("report: sent %d, acked %d; want %d each", rep.Sent, rep.Acked, total)
			}
			for ct, n := range want {
				if rep.PerType[ct] != n {
					t.Errorf("report: %d %s commands acked, want %d", rep.PerType[ct], ct, n)
				}
			}
			if got, want := rep.Expected.Events[domain.EventEnrolled], f.Tally().Events[domain.EventEnrolled]; got != want {
				t.Errorf("report: expected %d enrollments, the fleet decided %d", got, want)
			}
			info, err := stream.Info(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if info.State.Msgs != uint64(total) {
				t.Errorf("stream holds %d commands, want %d", info.State.Msgs, total)
			}
		})
	}
}

func TestSimulateTable(t *testing.T) {
	out, _, err := runCLI(t, "", "simulate", "--dry-run", "--clients", "10", "--days", "1")
	if err != nil {
		t.Fatalf("simulate --dry-run: %v", err)
	}
	for _, want := range []string{"generated", "recipe_run", "expected"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestSimulateWithoutStudyd(t *testing.T) {
	s, _, _ := natstest.StartWith(t, natstest.Config{Listen: true})
	_, _, err := runCLI(t, "", "simulate", "--server", s.ClientURL(), "--clients", "5", "--days", "1")
	if !errors.Is(err, client.ErrNoCommandsStream) {
		t.Fatalf("got %v, want ErrNoCommandsStream", err)
	}
	if !strings.Contains(err.Error(), "is studyd running?") {
		t.Errorf("error %q does not ask whether studyd runs", err)
	}
}

func TestSimulateFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no clients", []string{"--clients", "0", "--dry-run"}},
		{"bad format", []string{"--format", "xml", "--dry-run"}},
		{"stray argument", []string{"--dry-run", "extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := runCLI(t, "", append([]string{"simulate"}, tt.args...)...); err == nil {
				t.Fatalf("simulate %v: got no error, want one", tt.args)
			}
		})
	}
}

// startStudyd runs studyd's parts on a real server: the command stream and its
// intake, the projector and the query service. It returns the server URL.
func startStudyd(t *testing.T, partitions int) string {
	t.Helper()
	s, nc, js := natstest.StartWith(t, natstest.Config{Listen: true})
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := intake.EnsureCommandsStream(ctx, js, partitions, 1); err != nil {
		t.Fatal(err)
	}
	store := eventlog.NewStore(js)
	in := intake.New(nc, js, app.NewHandler(store, app.Config{}), intake.Config{Partitions: partitions})
	p := views.NewProjector(js, views.ProjectorConfig{FlushInterval: 20 * time.Millisecond})
	q := querysvc.NewQueryService(nc, js, store, querysvc.QueryConfig{})
	var wg sync.WaitGroup
	wg.Go(func() { _ = in.Run(ctx) })
	wg.Go(func() { _ = p.Run(ctx) })
	wg.Go(func() { _ = q.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	select {
	case <-q.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("query service not ready after 30s")
	}
	return s.ClientURL()
}

// TestSimulateWaitsUntilDecidedAndVisible: simulate returns only once studyd has
// decided every command and the views show them, so the views then hold exactly the
// expected numbers.
func TestSimulateWaitsUntilDecidedAndVisible(t *testing.T) {
	url := startStudyd(t, 4)
	out, stderr, err := runCLI(t, "", "simulate", "-s", url, "--clients", "40", "--days", "3", "--seed", "7", "--json")
	if err != nil {
		t.Fatalf("simulate: %v (stderr %q)", err, stderr)
	}
	var rep simulateReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Wait == nil {
		t.Fatalf("report %+v: no wait, want simulate to wait for studyd", rep)
	}
	// No --min-seq: what the views hold right after simulate returns.
	out, stderr, err = runCLI(t, "", "studies", "-s", url, "--json")
	if err != nil {
		t.Fatalf("studies: %v (stderr %q)", err, stderr)
	}
	var got struct {
		Seq     uint64
		Studies []projections.StudyView
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	var enrolled, failed, unenrolled uint64
	for _, v := range got.Studies {
		enrolled, failed, unenrolled = enrolled+v.Enrolled, failed+sum(v.EnrollFailed), unenrolled+sum(v.Unenrolled)
	}
	ex := rep.Expected.Events
	if enrolled != uint64(ex[domain.EventEnrolled]) || failed != uint64(ex[domain.EventEnrollFailed]) || unenrolled != uint64(ex[domain.EventUnenrolled]) {
		t.Errorf("views right after simulate: %d enrolled, %d enroll_failed, %d unenrolled; simulate expected %d, %d, %d",
			enrolled, failed, unenrolled, ex[domain.EventEnrolled], ex[domain.EventEnrollFailed], ex[domain.EventUnenrolled])
	}
	if enrolled == 0 {
		t.Errorf("the fleet enrolled nobody; the test proves nothing")
	}
	if got.Seq != rep.Wait.Seq || got.Seq == 0 {
		t.Errorf("views at seq %d, simulate waited for seq %d", got.Seq, rep.Wait.Seq)
	}
}
