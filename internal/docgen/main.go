// Command docgen rewrites the generated sections of README.md and docs/commands.md from
// the code: the state machine diagrams (fsm.Mermaid, fsm.RolloutMermaid), the event
// catalogue (domain's events, telemetry shapes, reasons and uptake statuses) and the
// table of versioned rules (domain.Rules). Run it from the repository root with `make
// docs`; a test fails while either file is stale.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "docgen:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("docgen", flag.ContinueOnError)
	readme := fs.String("readme", "README.md", "the README to rewrite")
	commands := fs.String("commands", "docs/commands.md", "the command contract to rewrite (empty: leave it)")
	check := fs.Bool("check", false, "only report whether the files are up to date")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := rewriteFile(*readme, Rewrite, *check); err != nil {
		return err
	}
	if *commands == "" {
		return nil
	}
	return rewriteFile(*commands, RewriteCommands, *check)
}

// rewriteFile rewrites path's generated sections with rewrite, or with check only
// reports whether they are stale.
func rewriteFile(path string, rewrite func(string) (string, error), check bool) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	updated, err := rewrite(string(old))
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", path, err)
	}
	if updated == string(old) {
		return nil
	}
	if check {
		return fmt.Errorf("%s is stale: run make docs", path)
	}
	if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
