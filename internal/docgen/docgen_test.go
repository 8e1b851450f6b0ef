package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/fsm"
)

// TestReadmeUpToDate fails while README.md's generated sections differ from the code.
func TestReadmeUpToDate(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Rewrite(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(b) {
		t.Errorf("README.md generated sections are stale: run make docs")
	}
	if !strings.Contains(string(b), fsm.Mermaid()) {
		t.Errorf("README.md does not show fsm.Mermaid()")
	}
}

// TestCommandsDocUpToDate fails while docs/commands.md's generated sections (the
// versioned rules and the later events' Telemetry shapes) differ from the code.
func TestCommandsDocUpToDate(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "commands.md"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := RewriteCommands(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(b) {
		t.Errorf("docs/commands.md generated sections are stale: run make docs")
	}
	for _, r := range domain.Rules {
		if !strings.Contains(string(b), "| `"+string(r.ID)+"` |") {
			t.Errorf("docs/commands.md does not show rule %s", r.ID)
		}
	}
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), fsm.RolloutMermaid()) {
		t.Errorf("README.md does not show fsm.RolloutMermaid()")
	}
}

func TestRewrite(t *testing.T) {
	t.Parallel()
	both := "intro\n<!-- BEGIN GENERATED: fsm -->\nold\n<!-- END GENERATED: fsm -->\nmiddle\n" +
		"<!-- BEGIN GENERATED: rollout-fsm -->\n<!-- END GENERATED: rollout-fsm -->\n" +
		"<!-- BEGIN GENERATED: events -->\n<!-- END GENERATED: events -->\noutro\n"
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "both sections", in: both},
		{name: "missing events section", in: "<!-- BEGIN GENERATED: fsm -->\n<!-- END GENERATED: fsm -->\n", wantErr: true},
		{name: "markers reversed", in: "<!-- END GENERATED: fsm -->\n<!-- BEGIN GENERATED: fsm -->\n" +
			"<!-- BEGIN GENERATED: events -->\n<!-- END GENERATED: events -->\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := Rewrite(tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrMarkers) {
					t.Fatalf("got %v, want ErrMarkers", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, keep := range []string{"intro\n", "\nmiddle\n", "\noutro\n"} {
				if !strings.Contains(out, keep) {
					t.Errorf("text outside the markers lost: %q missing", keep)
				}
			}
			if strings.Contains(out, "\nold\n") {
				t.Errorf("old generated text kept")
			}
			again, err := Rewrite(out)
			if err != nil || again != out {
				t.Errorf("rewrite is not idempotent (err %v)", err)
			}
		})
	}
}

func TestRunCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "README.md")
	stale := "<!-- BEGIN GENERATED: fsm -->\n<!-- END GENERATED: fsm -->\n<!-- BEGIN GENERATED: rollout-fsm -->\n<!-- END GENERATED: rollout-fsm -->\n" +
		"<!-- BEGIN GENERATED: events -->\n<!-- END GENERATED: events -->\n"
	if err := os.WriteFile(path, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run([]string{"-check", "-readme", path, "-commands", ""}); err == nil {
		t.Errorf("got no error checking a stale README, want one")
	}
	if err := run([]string{"-readme", path, "-commands", ""}); err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	if err := run([]string{"-check", "-readme", path, "-commands", ""}); err != nil {
		t.Errorf("got %v checking a rewritten README, want none", err)
	}
}
