package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README.md's studyctl help section (make docs)")

// The README's studyctl section shows `studyctl --help` between these markers.
const (
	helpBegin = "<!-- BEGIN GENERATED: studyctl --help -->"
	helpEnd   = "<!-- END GENERATED: studyctl --help -->"
)

// TestReadmeMatchesHelp fails while the README's copy of `studyctl --help` differs
// from the real one; `make docs` (this test with -update) rewrites it.
func TestReadmeMatchesHelp(t *testing.T) {
	t.Setenv("COLUMNS", "100") // fisk wraps help to the terminal; the README is fixed
	help, _, err := runCLI(t, "", "--help")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, helpBegin), strings.Index(readme, helpEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks %s … %s", helpBegin, helpEnd)
	}
	want := "\n```text\n$ studyctl --help\n" + strings.TrimRight(help, "\n") + "\n```\n"
	if got := readme[i+len(helpBegin) : j]; got != want {
		if !*update {
			t.Fatalf("README.md's studyctl section differs from studyctl --help (run make docs):\n%s", want)
		}
		readme = readme[:i+len(helpBegin)] + want + readme[j:]
		if err := os.WriteFile(path, []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
