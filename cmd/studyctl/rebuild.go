package main

import (
	"context"
	"fmt"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
)

// runRebuild asks the leading projector (inside a running studyd) to refold the whole
// log into the views. The rebuild runs server-side, in the one process allowed to write
// the views, so it cannot race the live projector; studyctl only shows its progress.
func runRebuild(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	timeout := fs.Duration("timeout", 30*time.Minute, "how long to wait for the rebuild to finish")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("rebuild: unexpected argument %q", pos[0])
	}
	nc, err := e.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var lastPhase string
	var lastPrint time.Time
	res, err := client.RequestRebuild(ctx, nc, func(p client.RebuildProgress) {
		// Progress goes to stderr, throttled, so --json output stays clean.
		if p.Phase == lastPhase && time.Since(lastPrint) < 250*time.Millisecond && p.Done < p.Total {
			return
		}
		lastPhase, lastPrint = p.Phase, time.Now()
		unit := "commits folded"
		if p.Phase == "write" {
			unit = "keys written"
		}
		fmt.Fprintf(e.stderr, "rebuild: %d/%d %s\n", p.Done, p.Total, unit)
	})
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(res)
	}
	fmt.Fprintf(e.stdout, "rebuilt views at seq %d: %d commits folded, %d uptake keys, %d study keys, %d stale keys deleted, in %s\n",
		res.Seq, res.Commits, res.UptakeKeys, res.StudyKeys, res.Deleted, res.Took.Round(time.Millisecond))
	return nil
}
