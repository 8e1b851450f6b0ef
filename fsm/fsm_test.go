package fsm_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/fsm"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestCheckTransition(t *testing.T) {
	t.Parallel()
	legal := map[[3]string]bool{}
	for _, tr := range fsm.Table() {
		legal[[3]string{string(tr.Event), string(tr.From), string(tr.To)}] = true
	}
	types := []domain.EventType{domain.EventEnrolled, domain.EventEnrollFailed, domain.EventUnenrolled}
	// Every (type, from, to) triple: legal exactly when the table has the edge.
	for _, typ := range types {
		for _, from := range domain.States {
			for _, to := range domain.States {
				e := domain.Event{Type: typ, Object: A, Key: "1", From: from, To: to}
				want := legal[[3]string{string(typ.Method()), string(from), string(to)}]
				err := fsm.CheckTransition(e)
				if want && err != nil {
					t.Errorf("%s %s→%s: got %v, want legal", typ, from, to, err)
				}
				if !want && !errors.Is(err, domain.ErrIllegalTransition) {
					t.Errorf("%s %s→%s: got %v, want ErrIllegalTransition", typ, from, to, err)
				}
			}
		}
	}
	tests := []struct {
		name  string
		e     domain.Event
		legal bool
	}{
		{name: "uptake without states", e: domain.Event{Type: domain.EventUptakeReported}, legal: true},
		{name: "opt-out without states", e: domain.Event{Type: domain.EventStudiesOptOutChanged}, legal: true},
		{name: "uptake with states", e: domain.Event{Type: domain.EventUptakeReported, From: domain.StateNone, To: domain.StateEnrolled}},
		{name: "unknown state", e: domain.Event{Type: domain.EventEnrolled, From: "limbo", To: domain.StateEnrolled}},
		{name: "empty states", e: domain.Event{Type: domain.EventUnenrolled}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := fsm.CheckTransition(tt.e)
			if tt.legal != (err == nil) {
				t.Errorf("got %v, want legal=%t", err, tt.legal)
			}
			if err != nil && !errors.Is(err, domain.ErrIllegalTransition) {
				t.Errorf("got %v, want it to wrap ErrIllegalTransition", err)
			}
		})
	}
}

func TestUnenrolledIsTerminal(t *testing.T) {
	t.Parallel()
	for _, tr := range fsm.Table() {
		if tr.From == domain.StateUnenrolled {
			t.Errorf("got transition %v out of unenrolled, want none", tr)
		}
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	v := fsm.Version()
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(v) {
		t.Errorf("got version %q, want 16 hex digits", v)
	}
	if v != fsm.Version() {
		t.Errorf("version is not stable")
	}
	// Table returns a copy: changing it cannot change the machine.
	tbl := fsm.Table()
	tbl[0].To = domain.StateUnenrolled
	if fsm.Table()[0].To == domain.StateUnenrolled {
		t.Errorf("Table returned the live table, want a copy")
	}
}

func TestMermaidGolden(t *testing.T) {
	t.Parallel()
	path := filepath.Join("testdata", "enrollment.mmd")
	got := fsm.Mermaid()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test ./fsm -run Mermaid -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("Mermaid() differs from %s (rerun with -update if the table changed on purpose)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
