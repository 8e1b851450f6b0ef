// Command studyd runs the studyd service: it applies Normandy recipe-execution commands
// from NATS JetStream, appends their events to the log, and keeps the projections
// current. With no flags it starts an embedded nats-server on 127.0.0.1:4222 with its
// data under ./data.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "studyd:", err)
		os.Exit(1)
	}
}

// run is studyd's whole life: parse config, start, serve until ctx ends, drain.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, errShown) {
		return nil
	}
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stdout, stderr)
}
