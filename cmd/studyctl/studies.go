package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/studyd/studyd/adapters/nats/client"
)

// runStudies lists every study the projections know, one line each.
func runStudies(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	if err := fs.Parse(args); err != nil {
		return err
	}
	nc, err := e.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := client.JetStreamOf(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	v, err := client.ReadViews(ctx, js, client.StudyViews)
	if err != nil {
		return err
	}
	views := v.Studies
	if e.json {
		return e.printJSON(views)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OBJECT\tKEY\tSLUG\tENROLLED\tACTIVE\tUNENROLLED\tENROLL FAILED\tSEQ\t")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n", v.Object, v.Key, orDash(v.Slug), v.Enrolled, v.Active,
			sum(v.Unenrolled), sum(v.EnrollFailed), v.Seq)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if len(views) == 0 {
		fmt.Fprintln(e.stderr, "no studies yet: has studyd applied any enrolling recipe run? (studyctl simulate makes some)")
	}
	return nil
}

func sum(counts map[string]uint64) uint64 {
	var n uint64
	for _, c := range counts {
		n += c
	}
	return n
}
