package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/choria-io/fisk"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
)

// rolloutsCmd lists the preference rollouts the views know (studyd_rollouts), or one.
func (c *cli) rolloutsCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("rollouts", "list the preference rollouts the views know: clients per state (active, rolled back, graduated), updates and failures")
	var slug string
	cmd.Arg("slug", "only this rollout, with its reasons").StringVar(&slug)
	var minSeq uint64
	minSeqFlag(cmd, &minSeq)
	return cmd.FullCommand(), func(ctx context.Context) error {
		v, err := c.readViews(ctx, "rollouts", minSeq, client.RolloutViews)
		if err != nil {
			return err
		}
		views := v.Rollouts
		if slug != "" {
			views = slices.DeleteFunc(views, func(r projections.RolloutView) bool { return r.Slug != slug })
			if len(views) == 0 {
				return fmt.Errorf("no rollout %q in the views (as of seq %d)", slug, v.Checkpoint)
			}
		}
		if views == nil {
			views = []projections.RolloutView{}
		}
		if c.json {
			return c.printJSON(struct {
				Seq      uint64                    `json:"seq"`
				Rollouts []projections.RolloutView `json:"rollouts"`
			}{v.Checkpoint, views})
		}
		fmt.Fprintf(c.stdout, "rollouts as of seq %d\n\n", v.Checkpoint)
		if len(views) == 0 {
			fmt.Fprintln(c.stderr, "no rollouts yet: has studyd applied a preference-rollout recipe run from a Firefox that has them?")
			return nil
		}
		t := newTable("rollout", "enrolled", "active", "graduated", "rolled back", "updates", "enroll failed", "unenroll failed", "seq")
		for _, r := range views {
			var updates uint64
			for _, n := range r.Updated {
				updates += n
			}
			t.AppendRow(row(r.Slug, r.Enrolled, r.States[domain.StateActive], r.States[domain.StateGraduated],
				r.States[domain.StateRolledBack], updates, sum(r.EnrollFailed), sum(r.UnenrollFailed), r.Seq))
		}
		if err := writeTable(c.stdout, t); err != nil {
			return err
		}
		if slug == "" {
			return nil
		}
		r := views[0]
		return writeFields(c.stdout,
			[2]string{"graduations", reasons(r.Graduated)},
			[2]string{"rollbacks", fmt.Sprint(r.RolledBack)},
			[2]string{"enroll failed", reasons(r.EnrollFailed)},
			[2]string{"unenroll failed", reasons(r.UnenrollFailed)})
	}
}

// reasons renders counts per reason as "reason=n, ...", sorted; "-" for none.
func reasons(counts map[string]uint64) string {
	parts := make([]string, 0, len(counts))
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	return orDash(strings.Join(parts, ", "))
}
