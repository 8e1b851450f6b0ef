package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/domain"
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
				"--seed", "5", "--format", tt.format, "--in-flight", "8", "--json")
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
