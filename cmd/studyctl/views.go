package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/domain"
)

// parseInterleaved parses fs over args allowing flags after positional arguments
// (`studyctl study preference_study x --json`), and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// queryTimeout bounds a query: its own min_seq wait plus the round trip.
const queryTimeout = 10 * time.Second

// runStudy prints one study's enrollment view.
func runStudy(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	minSeq := fs.Uint64("min-seq", 0, "wait (briefly) until the view reflects at least this stream sequence, e.g. a command's outcome seq")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: studyctl study <object> <key> [flags]   (or <object>/<key>)")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 1 {
		if o, k, ok := strings.Cut(pos[0], "/"); ok {
			pos = []string{o, k}
		}
	}
	if len(pos) != 2 {
		fs.Usage()
		return fmt.Errorf("study: want <object> <key>, got %d arguments", len(pos))
	}
	ref := domain.StudyRef{Object: domain.Object(pos[0]), Key: pos[1]}
	if err := ref.Validate(); err != nil {
		return fmt.Errorf("study: %w", err)
	}
	return query(ctx, e, "study "+ref.String(), func(ctx context.Context, nc *client.Conn) (client.StudyResponse, error) {
		return client.QueryStudy(ctx, nc, client.StudyRequest{Object: ref.Object, Key: ref.Key, MinSeq: *minSeq})
	}, printStudy)
}

// query connects, asks one query endpoint and prints the answer as a table or JSON.
func query[R any](ctx context.Context, e *env, what string, ask func(context.Context, *client.Conn) (R, error), print func(io.Writer, R) error) error {
	nc, err := e.connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	resp, err := ask(ctx, nc)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if e.json {
		return e.printJSON(resp)
	}
	return print(e.stdout, resp)
}

func printStudy(w io.Writer, r client.StudyResponse) error {
	v := r.View
	fmt.Fprintf(w, "study %s/%s (slug %s) as of seq %d\n", v.Object, v.Key, orDash(v.Slug), r.Seq)
	fmt.Fprintf(w, "enrolled %d, active %d\n", v.Enrolled, v.Active)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nBRANCH\tENROLLED\tACTIVE\t")
	for _, name := range sortedKeys(v.Branches) {
		b := v.Branches[name]
		fmt.Fprintf(tw, "%s\t%d\t%d\t\n", orDash(name), b.Enrolled, b.Active)
	}
	for _, sec := range []struct {
		title  string
		counts map[string]uint64
	}{
		{"UNENROLLED (reason)", v.Unenrolled},
		{"ENROLL FAILED (reason)", v.EnrollFailed},
		{"DID RESET VALUE", v.DidResetValue},
		{"EXPERIMENT TYPE", v.ExperimentTypes},
	} {
		if len(sec.counts) == 0 {
			continue
		}
		fmt.Fprintf(tw, "\n%s\tCOUNT\t\t\n", sec.title)
		for _, k := range sortedKeys(sec.counts) {
			fmt.Fprintf(tw, "%s\t%d\t\t\n", orDash(k), sec.counts[k])
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// runUptake prints uptake tallies.
func runUptake(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	source := fs.String("source", "", "only sources starting with this prefix, e.g. normandy/runner, normandy/action/, normandy/recipe/42")
	period := fs.String("period", "total", "total, hour or day")
	bucket := fs.String("bucket", "", "with --period hour|day: only this bucket, e.g. 2018071412 or 20180714 (* wildcards allowed)")
	minSeq := fs.Uint64("min-seq", 0, "wait (briefly) until the tallies reflect at least this stream sequence")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("uptake: unexpected argument %q (use --source)", pos[0])
	}
	return query(ctx, e, "uptake", func(ctx context.Context, nc *client.Conn) (client.UptakeResponse, error) {
		return client.QueryUptake(ctx, nc, client.UptakeRequest{Source: *source, Period: *period, Bucket: *bucket, MinSeq: *minSeq})
	}, printUptake)
}

func printUptake(w io.Writer, r client.UptakeResponse) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "uptake as of seq %d\n\n", r.Seq)
	fmt.Fprintln(tw, "SOURCE\tBUCKET\tSTATUS\tLABEL\tHEALTH\tCOUNT\t")
	for _, row := range r.Rows {
		bucket := "total"
		switch row.Period {
		case "hour":
			bucket = row.Start.UTC().Format("2006-01-02T15Z")
		case "day":
			bucket = row.Start.UTC().Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t\n", row.Source, bucket, row.Status, row.Label, row.Health, row.Count)
	}
	if len(r.Health) > 0 {
		fmt.Fprintln(tw, "\nSOURCE\tGOOD\tNEUTRAL\tBAD\tBAD %\t\t")
		for _, src := range sortedKeys(r.Health) {
			h := r.Health[src]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t\t\n", src, h.Good, h.Neutral, h.Bad, 100*h.BadRatio())
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// runClient prints one client's enrollments.
func runClient(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	minSeq := fs.Uint64("min-seq", 0, "the stream sequence the answer must reflect (a client's view is read from its latest commit, so it always does)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("client: want one client id, got %d arguments", len(pos))
	}
	id := domain.ClientID(pos[0])
	if err := id.Validate(); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return query(ctx, e, "client "+string(id), func(ctx context.Context, nc *client.Conn) (client.ClientResponse, error) {
		return client.QueryClient(ctx, nc, client.ClientRequest{Client: id, MinSeq: *minSeq})
	}, printClient)
}

func printClient(w io.Writer, r client.ClientResponse) error {
	v := r.View
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "client\t%s\tas of seq %d\n", v.Client, r.Seq)
	fmt.Fprintf(tw, "studies opted out\t%t\t\n", v.StudiesDisabled)
	fmt.Fprintf(tw, "last run\t%s\t\n", fmtTime(v.LastRunAt))
	fmt.Fprintln(tw, "\nOBJECT\tKEY\tSLUG\tSTATE\tBRANCH\tENROLLED AT\tENDED AT\tREASON\t")
	for _, en := range v.Enrollments {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", en.Object, en.Key, en.Slug, en.State, orDash(en.Branch),
			fmtTime(en.EnrolledAt), fmtTime(en.EndedAt), orDash(en.Reason))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
