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
	cmd := app.Command("watch", "follow the studies or uptake views live (a KV watch)")
	cmd.HelpLong("patterns: studies 'preference_study.>', 'addon_study.42'; uptake 'runner.>', 'action.<name>.>', 'recipe.<id>.>', 'hour.2018071412.>', 'day.*.runner.>'")
	var view, pattern string
	var updatesOnly bool
	cmd.Arg("view", "studies or uptake").Default("studies").EnumVar(&view, "studies", "uptake")
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
			line := fmt.Sprintf("%s  %-6s  %-*s  rev %-6d  %s", time.Now().UTC().Format("15:04:05.000"), u.Op, keyWidth(bucket), u.Key, u.Revision, summarize(bucket, u))
			_, err := fmt.Fprintln(c.stdout, strings.TrimRight(line, " "))
			return err
		})
	}
}

// keyWidth is the key column's width in watch lines: wide enough for most keys of
// the bucket, so that the columns after it line up.
func keyWidth(bucket string) int {
	if bucket == client.UptakeBucket {
		return 48
	}
	return 40
}

// summarize is the one-line human form of a view value.
func summarize(bucket string, u client.WatchUpdate) string {
	if u.Op != "put" {
		return ""
	}
	var v struct {
		Seq      uint64 `json:"seq"`
		Count    uint64 `json:"count"`
		Enrolled uint64 `json:"enrolled"`
		Active   int64  `json:"active"`
		Health   string `json:"health"`
	}
	if err := json.Unmarshal(u.Value, &v); err != nil {
		return string(u.Value)
	}
	if bucket == client.UptakeBucket {
		return fmt.Sprintf("count=%d health=%s seq=%d", v.Count, v.Health, v.Seq)
	}
	return fmt.Sprintf("enrolled=%d active=%d seq=%d", v.Enrolled, v.Active, v.Seq)
}
