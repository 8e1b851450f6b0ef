// Command docgen rewrites the generated sections of README.md from the code: the
// enrollment state machine diagram (fsm.Mermaid) and the event catalogue (domain's
// events, telemetry shapes, reasons and uptake statuses). Run it from the repository
// root with `make docs`; a test fails while the README is stale.
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
	check := fs.Bool("check", false, "only report whether the README is up to date")
	if err := fs.Parse(args); err != nil {
		return err
	}
	old, err := os.ReadFile(*readme)
	if err != nil {
		return fmt.Errorf("read readme: %w", err)
	}
	updated, err := Rewrite(string(old))
	if err != nil {
		return fmt.Errorf("rewrite %s: %w", *readme, err)
	}
	if updated == string(old) {
		return nil
	}
	if *check {
		return fmt.Errorf("%s is stale: run make docs", *readme)
	}
	if err := os.WriteFile(*readme, []byte(updated), 0o644); err != nil {
		return fmt.Errorf("write readme: %w", err)
	}
	return nil
}
