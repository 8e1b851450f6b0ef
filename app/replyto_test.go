package app_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/studyd/studyd/app"
)

func TestReplyPolicyCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  app.ReplyPolicy
		subject string
		ok      bool
	}{
		{name: "inbox", subject: "_INBOX.abc123.4", ok: true},
		{name: "the log", subject: "studyd.evt.vic"},
		{name: "a rejection subject", subject: "studyd.rej.vic"},
		{name: "a command", subject: "studyd.cmd.vic"},
		{name: "a KV view", subject: "$KV.studyd_uptake.runner.RUNNER_SUCCESS"},
		{name: "the JetStream API", subject: "$JS.API.STREAM.DELETE.STUDYD_EVENTS"},
		{name: "system account", subject: "$SYS.REQ.SERVER.PING"},
		{name: "bare inbox prefix", subject: "_INBOX."},
		{name: "inbox without a token", subject: "_INBOX"},
		{name: "look-alike", subject: "_INBOXX.abc"},
		{name: "wildcard", subject: "_INBOX.>"},
		{name: "star", subject: "_INBOX.*.x"},
		{name: "empty token", subject: "_INBOX..x"},
		{name: "blank", subject: "_INBOX.a b"},
		{name: "too long", subject: "_INBOX." + strings.Repeat("a", 300)},
		{name: "custom prefix", policy: app.ReplyPolicy{Prefixes: []string{"_INBOX_alice."}}, subject: "_INBOX_alice.x", ok: true},
		{name: "default refused under a custom prefix", policy: app.ReplyPolicy{Prefixes: []string{"_INBOX_alice."}}, subject: "_INBOX.x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.policy.Check(tc.subject)
			if tc.ok {
				if err != nil {
					t.Fatalf("Check(%q): got %v, want nil", tc.subject, err)
				}
				return
			}
			if !errors.Is(err, app.ErrReplySubject) {
				t.Fatalf("Check(%q): got %v, want ErrReplySubject", tc.subject, err)
			}
			if !strings.Contains(err.Error(), "Studyd-Reply-To") {
				t.Errorf("got %q, want the header named", err)
			}
		})
	}
}

func TestReplyPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		prefix string
		ok     bool
	}{
		{name: "inbox", prefix: "_INBOX.", ok: true},
		{name: "per-user inbox", prefix: "_INBOX_alice.", ok: true},
		{name: "two tokens", prefix: "_R.alice.", ok: true},
		{name: "no trailing dot", prefix: "_INBOX"},
		{name: "empty", prefix: ""},
		{name: "studyd's subjects", prefix: "studyd.reply."},
		{name: "JetStream", prefix: "$JS."},
		{name: "KV", prefix: "$KV.studyd_uptake."},
		{name: "wildcard", prefix: "*."},
		{name: "everything", prefix: "."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := app.ReplyPolicy{Prefixes: []string{tc.prefix}}.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate(%q): got %v, want ok=%t", tc.prefix, err, tc.ok)
			}
			if err != nil && !errors.Is(err, app.ErrReplyPrefix) {
				t.Errorf("got %v, want ErrReplyPrefix", err)
			}
		})
	}
}
