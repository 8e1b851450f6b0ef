// Command studyctl is the operator's and auditor's tool for studyd: publish commands,
// simulate a fleet, query and watch projections, replay and verify the log.
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
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "studyctl:", err)
		os.Exit(1)
	}
}

// run parses the command line (global flags anywhere, as in the nats CLI) and runs the
// selected command. Tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c := newCLI(getenv, stdin, stdout, stderr)
	app, handlers := c.app()
	// fisk ends --help, --version and the completion scripts by calling its terminate
	// function; turn that into a return so that run's caller decides how to exit.
	defer func() {
		if r := recover(); r != nil {
			code, ok := r.(terminated)
			if !ok {
				panic(r)
			}
			if code != 0 {
				err = errUsage
			}
		}
	}()
	envErrs := c.applyEnv()
	name, err := app.Parse(protectDash(args))
	if err != nil {
		return err
	}
	if err := envErrs(name); err != nil {
		return err
	}
	h, ok := handlers[name]
	if !ok {
		return fmt.Errorf("unknown command %q", name)
	}
	return h(ctx)
}

// terminated is what fisk's terminate function panics with; run recovers it.
type terminated int

// errUsage is run's error when fisk has already explained a usage error.
var errUsage = errors.New("usage error")

// stdinArg stands for a lone "-" argument (stdin) while fisk parses: fisk turns "-"
// into an empty string.
const stdinArg = "\x00-"

// protectDash returns args with each lone "-" replaced by stdinArg.
func protectDash(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "-" {
			a = stdinArg
		}
		out[i] = a
	}
	return out
}
