package main

import (
	"context"
	"fmt"
	"time"

	"github.com/choria-io/fisk"

	"github.com/studyd/studyd/adapters/nats/client"
)

// runRebuild asks the leading projector (inside a running studyd) to refold the whole
// log into the views. The rebuild runs server-side, in the one process allowed to write
// the views, so it cannot race the live projector; studyctl only shows its progress.
func (c *cli) rebuildCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("rebuild", "refold the whole log into the views (runs in the leading studyd, without a partial window)")
	var wait time.Duration
	cmd.Flag("max-wait", "how long to wait for the rebuild to finish").Default("30m").PlaceHolder("DURATION").DurationVar(&wait)
	return cmd.FullCommand(), func(ctx context.Context) error {
		nc, err := c.connect("rebuild")
		if err != nil {
			return err
		}
		defer nc.Close()
		ctx, cancel := context.WithTimeout(ctx, wait)
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
			fmt.Fprintf(c.stderr, "rebuild: %d/%d %s\n", p.Done, p.Total, unit)
		})
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(res)
		}
		_, err = fmt.Fprintf(c.stdout, "rebuilt views at seq %d: %d commits folded, %d uptake keys, %d study keys, %d study hour/day keys, %d rollout keys, %d stale keys deleted, in %s\n",
			res.Seq, res.Commits, res.UptakeKeys, res.StudyKeys, res.StudyTimeKeys, res.RolloutKeys, res.Deleted, fmtDuration(res.Took))
		return err
	}
}
