package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
)

// runParked lists the commands studyd parked after they failed the same way too many
// times, or re-drives one (--redrive SEQ) once its cause is fixed.
func runParked(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	redrive := fs.Uint64("redrive", 0, "send the parked command at this STUDYD_PARKED sequence back to studyd and print its new outcome")
	timeout := fs.Duration("timeout", 15*time.Second, "how long to wait (listing, or a re-driven command's outcome)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("parked: unexpected argument %q", fs.Arg(0))
	}
	nc, err := e.connect()
	if err != nil {
		return fmt.Errorf("parked: %w", err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if *redrive != 0 {
		out, err := client.Redrive(ctx, nc, *redrive)
		if err != nil {
			return fmt.Errorf("parked: %w", err)
		}
		if e.json {
			return e.printJSON(out)
		}
		return printOutcome(e.stdout, out)
	}
	js, err := client.JetStreamOf(nc)
	if err != nil {
		return fmt.Errorf("parked: %w", err)
	}
	list, err := client.ListParked(ctx, js)
	if err != nil {
		return fmt.Errorf("parked: %w", err)
	}
	if e.json {
		if list == nil {
			list = []client.Parked{}
		}
		return e.printJSON(list)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tCLIENT\tCOMMAND\tCMD SEQ\tFAILURES\tPARKED AT\tBYTES\tERROR\t")
	for _, p := range list {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t\n", p.Seq, p.Client, orDash(p.CommandID), p.CommandSeq, p.Failures,
			p.At.Format(time.RFC3339), p.Bytes, p.Error)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stderr, "no parked commands")
	} else {
		fmt.Fprintln(e.stderr, "after fixing the cause: studyctl parked --redrive SEQ")
	}
	return nil
}
