package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
)

// runWatch follows a view bucket live: the current values, then every change.
func runWatch(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	updatesOnly := fs.Bool("updates-only", false, "skip the current values; print changes only")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: studyctl watch [studies|uptake] [key pattern] [flags]")
		fmt.Fprintln(fs.Output(), "  patterns: studies 'preference_study.>', 'addon_study.42'; uptake 'runner.>', 'action.<name>.>',")
		fmt.Fprintln(fs.Output(), "  'recipe.<id>.>', 'hour.2018071412.>', 'day.*.runner.>'")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	view, pattern := "studies", ">"
	if len(pos) > 0 {
		view = pos[0]
	}
	if len(pos) > 1 {
		pattern = pos[1]
	}
	if len(pos) > 2 {
		fs.Usage()
		return fmt.Errorf("watch: unexpected argument %q", pos[2])
	}
	bucket, err := client.ViewBucket(view)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	nc, err := e.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	enc := json.NewEncoder(e.stdout)
	return client.WatchView(ctx, nc, bucket, pattern, *updatesOnly, func(u client.WatchUpdate) error {
		if e.json {
			if err := enc.Encode(u); err != nil {
				return fmt.Errorf("write json: %w", err)
			}
			return nil
		}
		_, err := fmt.Fprintf(e.stdout, "%s  %-7s %s  rev %d  %s\n", time.Now().UTC().Format("15:04:05.000"), u.Op, u.Key, u.Revision, summarize(bucket, u))
		return err
	})
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
