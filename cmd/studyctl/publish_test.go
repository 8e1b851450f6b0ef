package main

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/domain"
)

// fakeStudyd answers commands like studyd would, from a real NATS subscription: it
// rejects clients named "bad" and applies the rest. It records what it received.
type fakeStudyd struct {
	mu    sync.Mutex
	got   []domain.Command
	ctype []string
}

func (f *fakeStudyd) outcome(m *nats.Msg) []byte {
	ct := m.Header.Get(client.HeaderContentType)
	cmd, err := client.DecodeCommand(ct, m.Data)
	f.mu.Lock()
	f.got = append(f.got, cmd)
	f.ctype = append(f.ctype, ct)
	f.mu.Unlock()
	out := client.Outcome{CommandID: cmd.CommandID, ClientID: cmd.ClientID, Status: client.OutcomeApplied, Seq: 7}
	if err != nil || cmd.ClientID == "bad" {
		out.Status, out.Code, out.Error = client.OutcomeRejected, domain.RejectInvalid, "client bad is not welcome"
	}
	b, _ := json.Marshal(out)
	return b
}

// start serves studyd.submit and, for --async, the command subjects.
func (f *fakeStudyd) start(t *testing.T, nc *nats.Conn) {
	t.Helper()
	if _, err := nc.Subscribe(client.SubmitSubject, func(m *nats.Msg) { _ = m.Respond(f.outcome(m)) }); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Subscribe("studyd.cmd.>", func(m *nats.Msg) {
		_ = nc.Publish(m.Header.Get(client.HeaderReplyTo), f.outcome(m))
	}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func (f *fakeStudyd) last(t *testing.T) (domain.Command, string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.got) == 0 {
		t.Fatal("fake studyd received nothing")
	}
	return f.got[len(f.got)-1], f.ctype[len(f.ctype)-1]
}

func TestPublish(t *testing.T) {
	tests := []struct {
		name     string
		stdin    string
		args     []string
		rejected bool
		wantType domain.CommandType
		wantID   string // "" = generated
		wantCT   string
	}{
		{name: "flags", args: []string{"--type", "opt_out", "--client", "c1"},
			wantType: domain.CommandOptOut, wantCT: client.ContentTypeJSON},
		{name: "flags with study", args: []string{"--type", "unenroll", "--client", "c1", "--study", "addon_study/42", "--id", "op-1"},
			wantType: domain.CommandUnenroll, wantID: "op-1", wantCT: client.ContentTypeJSON},
		{name: "stdin", stdin: `{"type":"pref_changed","client_id":"c2","preference":"network.trr.mode"}`, args: []string{"-"},
			wantType: domain.CommandPrefChanged, wantCT: client.ContentTypeJSON},
		{name: "rejected", args: []string{"--type", "opt_out", "--client", "bad"}, rejected: true,
			wantType: domain.CommandOptOut, wantCT: client.ContentTypeJSON},
		{name: "async", args: []string{"--async", "--type", "addon_uninstalled", "--client", "c3", "--addon-id", "x@y"},
			wantType: domain.CommandAddonUninstalled, wantCT: ""},
		{name: "async rejected", args: []string{"--async", "--type", "opt_out", "--client", "bad"}, rejected: true,
			wantType: domain.CommandOptOut, wantCT: ""},
	}
	s, nc, js := natstest.StartWith(t, natstest.Config{Listen: true})
	commandsStream(t, js)
	fake := &fakeStudyd{}
	fake.start(t, nc)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"publish", "--server", s.ClientURL(), "--json"}, tt.args...)
			out, _, err := runCLI(t, tt.stdin, args...)
			if got := errors.Is(err, errRejected); got != tt.rejected {
				t.Fatalf("publish: error %v, want rejected=%t", err, tt.rejected)
			}
			if !tt.rejected && err != nil {
				t.Fatalf("publish: %v", err)
			}
			var o client.Outcome
			if err := json.Unmarshal([]byte(out), &o); err != nil {
				t.Fatalf("decode outcome %q: %v", out, err)
			}
			cmd, ct := fake.last(t)
			if cmd.Type != tt.wantType {
				t.Errorf("studyd got type %s, want %s", cmd.Type, tt.wantType)
			}
			if ct != tt.wantCT {
				t.Errorf("Content-Type %q, want %q", ct, tt.wantCT)
			}
			if tt.wantID != "" && cmd.CommandID != tt.wantID {
				t.Errorf("command id %q, want %q", cmd.CommandID, tt.wantID)
			}
			if cmd.CommandID == "" || cmd.At.IsZero() {
				t.Errorf("command id %q, at %s: want both filled in", cmd.CommandID, cmd.At)
			}
			if o.CommandID != cmd.CommandID {
				t.Errorf("printed outcome for %q, want %q", o.CommandID, cmd.CommandID)
			}
		})
	}
}

func TestPublishTable(t *testing.T) {
	s, nc, _ := natstest.StartWith(t, natstest.Config{Listen: true})
	(&fakeStudyd{}).start(t, nc)
	out, _, err := runCLI(t, "", "publish", "--server", s.ClientURL(), "--type", "opt_out", "--client", "bad")
	if !errors.Is(err, errRejected) {
		t.Fatalf("got %v, want errRejected", err)
	}
	for _, want := range []string{"status rejected", "code invalid"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestPublishUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"nothing to send", nil},
		{"file and flags", []string{"x.json", "--type", "opt_out"}},
		{"bad study", []string{"--type", "unenroll", "--client", "c", "--study", "nokey"}},
		{"bad time", []string{"--type", "opt_out", "--client", "c", "--at", "yesterday"}},
		{"async bad client", []string{"--async", "--type", "opt_out", "--client", "a.b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := runCLI(t, "", append([]string{"publish", "--server", "nats://127.0.0.1:1"}, tt.args...)...); err == nil {
				t.Fatalf("publish %v: got no error, want one", tt.args)
			}
		})
	}
}
