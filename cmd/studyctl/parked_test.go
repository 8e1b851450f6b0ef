package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/natstest"
)

// TestParkedListsAndRedrives: `studyctl parked` lists what studyd parked, and
// `--redrive SEQ` sends it back to its client's subject as it first came, prints the
// new outcome and removes it from the list.
func TestParkedListsAndRedrives(t *testing.T) {
	s, nc, js := natstest.StartWith(t, natstest.Config{Listen: true})
	ctx := context.Background()
	commandsStream(t, js)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: client.ParkedStream, Subjects: []string{client.ParkedSubjects}}); err != nil {
		t.Fatal(err)
	}
	fake := &fakeStudyd{}
	fake.start(t, nc)
	m := nats.NewMsg(client.ParkedSubject("c7"))
	m.Data = []byte(`{"type":"opt_out","command_id":"stuck-1","client_id":"c7","at":"2026-11-27T10:00:00Z"}`)
	m.Header.Set(client.HeaderContentType, client.ContentTypeJSON)
	m.Header.Set(client.HeaderParkedSeq, "41")
	m.Header.Set(client.HeaderParkedCommand, "stuck-1")
	m.Header.Set(client.HeaderParkedFailures, "5")
	m.Header.Set(client.HeaderParkedError, "load c7: corrupt commit")
	m.Header.Set(client.HeaderParkedAt, "2026-11-27T10:00:05Z")
	ack, err := js.PublishMsg(ctx, m)
	if err != nil {
		t.Fatal(err)
	}

	out, _, err := runCLI(t, "", "parked", "--server", s.ClientURL())
	if err != nil || !strings.Contains(out, "stuck-1") || !strings.Contains(out, "corrupt commit") {
		t.Fatalf("parked: %v\n%s\nwant the parked command and its error", err, out)
	}
	out, _, err = runCLI(t, "", "parked", "--server", s.ClientURL(), "--json")
	var list []client.Parked
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 {
		t.Fatalf("parked --json: %v\n%s", err, out)
	}
	if p := list[0]; p.Seq != ack.Sequence || p.Client != "c7" || p.CommandSeq != 41 || p.Failures != 5 {
		t.Errorf("parked %+v: want seq %d, client c7, command seq 41, 5 failures", p, ack.Sequence)
	}

	out, _, err = runCLI(t, "", "parked", "--server", s.ClientURL(), "--json", "--redrive", "1")
	var o client.Outcome
	if err != nil || json.Unmarshal([]byte(out), &o) != nil || o.Status != client.OutcomeApplied || o.CommandID != "stuck-1" {
		t.Fatalf("parked --redrive: %v\n%s\nwant stuck-1 applied", err, out)
	}
	if cmd, ct := fake.last(t); cmd.CommandID != "stuck-1" || ct != client.ContentTypeJSON {
		t.Errorf("studyd got %q as %q, want stuck-1 as JSON", cmd.CommandID, ct)
	}
	out, _, err = runCLI(t, "", "parked", "--server", s.ClientURL(), "--json")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Errorf("parked after the re-drive: %v %q, want []", err, out)
	}
}
