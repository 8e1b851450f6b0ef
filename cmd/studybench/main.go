// Command studybench measures studyd against the engine's own limits: raw JetStream
// publish and read rates are the baselines, and every studyd figure (end-to-end
// commands per second, latency under load, audit replay, memory per enrollment,
// throughput as the log grows) is printed next to its baseline from the same run.
// Everything runs in this process against an embedded nats-server on a fresh
// temporary store per scenario (the memory run also starts a server process of its
// own, to read its RSS). `make bench` runs it; docs/BENCHMARKS.md has a recorded run.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if isChild, err := runChildRole(ctx); isChild {
		if err != nil {
			fmt.Fprintln(os.Stderr, "studybench child:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "studybench:", err)
		os.Exit(1)
	}
}

// run parses the flags, runs the scenarios and prints the report.
func run(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	rep, err := bench(ctx, cfg, func(msg string) { fmt.Fprintln(stderr, "…", msg) })
	if err != nil {
		return err
	}
	if cfg.JSON {
		return rep.printJSON(stdout)
	}
	rep.print(stdout)
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d scenarios failed", len(rep.Errors))
	}
	return nil
}
