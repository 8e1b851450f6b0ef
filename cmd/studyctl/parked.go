package main

import (
	"context"
	"fmt"
	"time"

	"github.com/choria-io/fisk"

	"github.com/studyd/studyd/adapters/nats/client"
)

// parkedCmd lists the commands studyd parked after they failed the same way too many
// times, or re-drives one (--redrive SEQ) once its cause is fixed.
func (c *cli) parkedCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("parked", "commands parked after failing the same way repeatedly; --redrive SEQ sends one back")
	var redrive uint64
	cmd.Flag("redrive", "send the parked command at this STUDYD_PARKED sequence back to studyd and print its new outcome").PlaceHolder("SEQ").Uint64Var(&redrive)
	return cmd.FullCommand(), func(ctx context.Context) error {
		nc, err := c.connect("parked")
		if err != nil {
			return err
		}
		defer nc.Close()
		// The global --timeout bounds the listing, or the wait for a re-driven command's
		// outcome.
		ctx, cancel := context.WithTimeout(ctx, max(c.timeout, time.Second))
		defer cancel()
		if redrive != 0 {
			out, err := client.Redrive(ctx, nc, redrive)
			if err != nil {
				return err
			}
			if c.json {
				return c.printJSON(out)
			}
			return printOutcome(c.stdout, out)
		}
		js, err := client.JetStreamOf(nc)
		if err != nil {
			return err
		}
		list, err := client.ListParked(ctx, js)
		if err != nil {
			return err
		}
		if c.json {
			if list == nil {
				list = []client.Parked{}
			}
			return c.printJSON(list)
		}
		t := newTable("seq", "client", "command", "cmd seq", "failures", "parked at", "bytes", "error")
		for _, p := range list {
			t.AppendRow(row(p.Seq, string(p.Client), p.CommandID, p.CommandSeq, p.Failures, p.At, p.Bytes, p.Error))
		}
		if err := writeTable(c.stdout, t); err != nil {
			return err
		}
		if len(list) == 0 {
			fmt.Fprintln(c.stderr, "no parked commands")
		} else {
			fmt.Fprintln(c.stderr, "after fixing the cause: studyctl parked --redrive SEQ")
		}
		return nil
	}
}
