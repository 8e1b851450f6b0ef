// Command studyctl is the operator's and auditor's tool for studyd: publish commands,
// simulate a fleet, query and watch projections, replay and verify the log.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "studyctl:", err)
		os.Exit(1)
	}
}

// subcommand is one studyctl verb. Each lives in its own file.
type subcommand struct {
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// subcommands lists every verb; `studyctl help` prints them.
func subcommands() map[string]subcommand {
	return map[string]subcommand{
		"publish":    {"send one command (flags, a JSON file or stdin) and print its outcome", runPublish},
		"studies":    {"list every study the projections know, with its totals", runStudies},
		"study":      {"a study's enrollment view: per branch, unenroll and failure reasons", runStudy},
		"uptake":     {"uptake tallies per source and status (--source, --period total|hour|day)", runUptake},
		"client":     {"a client's enrollments, from its latest commit", runClient},
		"watch":      {"follow the studies or uptake views live (KV watch)", runWatch},
		"rebuild":    {"refold the whole log into the views (runs in the leading studyd)", runRebuild},
		"simulate":   {"simulate a fleet of clients running recipes over days", runSimulate},
		"audit":      {"export the log (jsonl, csv, Telemetry shape) or its rejections", runAudit},
		"verify":     {"replay and verify the log: transitions, hash chains, signed checkpoints, views", runVerify},
		"checkpoint": {"sign and publish a checkpoint of the log now (--key)", runCheckpoint},
		"keygen":     {"write a new ed25519 key for signing checkpoints", runKeygen},
		"asof":       {"a client's state as it was at a stream sequence or time", runAsOf},
		"explain":    {"an enrollment's full history, transition by transition", runExplain},
		"health":     {"a study's enrollment per branch with a sample-ratio-mismatch test", runHealth},
		"parked":     {"commands parked after failing the same way repeatedly; --redrive SEQ sends one back", runParked},
	}
}

// run parses the global flags and dispatches to a subcommand. Tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmds := subcommands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, cmds)
		return nil
	}
	sc, ok := cmds[args[0]]
	if !ok {
		usage(stderr, cmds)
		return fmt.Errorf("unknown command %q", args[0])
	}
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr, name: args[0]}
	return sc.run(ctx, e, args[1:])
}

func usage(w io.Writer, cmds map[string]subcommand) {
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintln(w, "usage: studyctl <command> [flags]   (studyctl <command> -h for its flags)")
	fmt.Fprintln(w, "\ncommands:")
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nconnection flags (every command): --server URL (env NATS_URL), --user/--password, --nkey FILE, --creds FILE, --tlscert/--tlskey/--tlsca")
}
