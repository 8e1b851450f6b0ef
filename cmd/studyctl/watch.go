package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/choria-io/fisk"

	"github.com/studyd/studyd/adapters/nats/client"
)

// watchCmd follows a view bucket live: the current values, then every change.
func (c *cli) watchCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("watch", "follow the studies, uptake or rollouts views live (a KV watch)")
	cmd.HelpLong("patterns: studies 'preference_study.>', 'addon_study.42'; uptake 'runner.>', 'action.<name>.>', 'recipe.<id>.>', 'hour.2018071412.>', 'day.*.runner.>'; rollouts '<slug>'")
	var view, pattern string
	var updatesOnly bool
	cmd.Arg("view", "studies, uptake or rollouts").Default("studies").EnumVar(&view, "studies", "uptake", "rollouts")
	cmd.Arg("pattern", "a key pattern, e.g. 'preference_study.>' or 'runner.>'").Default(">").StringVar(&pattern)
	cmd.Flag("updates-only", "skip the current values; print changes only").UnNegatableBoolVar(&updatesOnly)
	return cmd.FullCommand(), func(ctx context.Context) error {
		bucket, err := client.ViewBucket(view)
		if err != nil {
			return err
		}
		nc, err := c.connect("watch")
		if err != nil {
			return err
		}
		defer nc.Close()
		enc := json.NewEncoder(c.stdout)
		return client.WatchView(ctx, nc, bucket, pattern, updatesOnly, func(u client.WatchUpdate) error {
			if c.json {
				if err := enc.Encode(u); err != nil {
					return fmt.Errorf("write json: %w", err)
				}
				return nil
			}
			// Fixed-width columns, the key (of any length) last, so every line aligns.
			line := fmt.Sprintf("%s  %-6s  rev %-8d  %s  %s", time.Now().UTC().Format("15:04:05.000"), u.Op, u.Revision, summarize(bucket, u), u.Key)
			_, err := fmt.Fprintln(c.stdout, strings.TrimRight(line, " "))
			return err
		})
	}
}

// summarize is the one-line human form of a view value.
func summarize(bucket string, u client.WatchUpdate) string {
	width := len(fmt.Sprintf(studyLine, 0, 0, 0))
	if bucket == client.UptakeBucket {
		width = len(fmt.Sprintf(uptakeLine, 0, "", 0))
	}
	if u.Op != "put" {
		return strings.Repeat(" ", width)
	}
	var v struct {
		Seq      uint64 `json:"seq"`
		Count    uint64 `json:"count"`
		Enrolled uint64 `json:"enrolled"`
		Active   int64  `json:"active"`
		Health   string `json:"health"`
		// A rollout's clients per state.
		States map[string]int64 `json:"states"`
	}
	if err := json.Unmarshal(u.Value, &v); err != nil {
		return fmt.Sprintf("%-*s", width, "(not a view value)")
	}
	if bucket == client.UptakeBucket {
		return fmt.Sprintf(uptakeLine, v.Count, v.Health, v.Seq)
	}
	if bucket == client.RolloutsBucket {
		v.Active = v.States["active"]
	}
	return fmt.Sprintf(studyLine, v.Enrolled, v.Active, v.Seq)
}

// The summaries of watch lines, fixed width (for counts below ten million).
const (
	studyLine  = "enrolled=%-7d active=%-7d seq=%-9d"
	uptakeLine = "count=%-8d health=%-7s seq=%-9d"
)
