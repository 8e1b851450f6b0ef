package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/choria-io/fisk"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
)

// studyArg declares the <object>/<key> argument every command about one study takes.
// The older two-word form (<object> <key>) is still accepted.
type studyArg struct {
	ref, key string
}

func (a *studyArg) declare(cmd *fisk.CmdClause, required bool) {
	arg := cmd.Arg("study", "the study: <object>/<key>, e.g. preference_study/my-slug or addon_study/42")
	if required {
		arg.Required()
	}
	arg.StringVar(&a.ref)
	cmd.Arg("key", "").Hidden().StringVar(&a.key)
}

// parse returns the study; the zero StudyRef when the argument was optional and absent.
func (a *studyArg) parse() (domain.StudyRef, error) {
	if a.ref == "" {
		return domain.StudyRef{}, nil
	}
	if a.key != "" {
		if strings.Contains(a.ref, "/") {
			return domain.StudyRef{}, fmt.Errorf("unexpected argument %q after the study %s", a.key, a.ref)
		}
		return audit.ParseStudy(a.ref + "/" + a.key)
	}
	return audit.ParseStudy(a.ref)
}

// clientArg declares the <client> argument every command about one client takes.
func clientArg(cmd *fisk.CmdClause, dst *string) {
	cmd.Arg("client", "the client id (as in studyd.cmd.<client>)").Required().StringVar(dst)
}

func parseClient(s string) (domain.ClientID, error) {
	c := domain.ClientID(s)
	if err := c.Validate(); err != nil {
		return "", err
	}
	return c, nil
}

// readViews reads the view buckets in set once they reflect at least minSeq (none yet
// is an empty answer, not an error): what every command listing a view does.
func (c *cli) readViews(ctx context.Context, name string, minSeq uint64, set client.ViewSet) (client.Views, error) {
	js, closer, err := c.jsConnect(name)
	if err != nil {
		return client.Views{}, err
	}
	defer closer()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if _, err := client.WaitViews(ctx, js, minSeq); err != nil {
		return client.Views{}, err
	}
	v, err := client.ReadViews(ctx, js, set)
	if err != nil && !errors.Is(err, client.ErrNoViews) {
		return client.Views{}, err
	}
	return v, nil
}

// minSeqFlag declares --min-seq on a view command.
func minSeqFlag(cmd *fisk.CmdClause, dst *uint64) {
	cmd.Flag("min-seq", "wait (up to --timeout) until the answer reflects at least this log sequence, e.g. a command's outcome seq (read your own writes)").
		PlaceHolder("SEQ").Uint64Var(dst)
}

// studiesCmd lists every study the views know.
func (c *cli) studiesCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("studies", "list every study the views know, with its totals")
	var minSeq uint64
	minSeqFlag(cmd, &minSeq)
	return cmd.FullCommand(), func(ctx context.Context) error {
		v, err := c.readViews(ctx, "studies", minSeq, client.StudyViews)
		if err != nil {
			return err
		}
		seq, views := v.Checkpoint, v.Studies
		if views == nil {
			views = []projections.StudyView{}
		}
		if c.json {
			return c.printJSON(struct {
				Seq     uint64                  `json:"seq"`
				Studies []projections.StudyView `json:"studies"`
			}{seq, views})
		}
		t := newTable("study", "slug", "enrolled", "active", "unenrolled", "enroll failed", "seq")
		var enrolled, unenrolled, failed uint64
		var active int64
		for _, v := range views {
			t.AppendRow(row(string(v.Object)+"/"+v.Key, v.Slug, v.Enrolled, v.Active, sum(v.Unenrolled), sum(v.EnrollFailed), v.Seq))
			enrolled, active, unenrolled, failed = enrolled+v.Enrolled, active+v.Active, unenrolled+sum(v.Unenrolled), failed+sum(v.EnrollFailed)
		}
		// The totals, to hold against what simulate expected.
		t.AppendFooter(row("total", "", enrolled, active, unenrolled, failed, ""))
		fmt.Fprintf(c.stdout, "studies as of seq %d\n\n", seq)
		if len(views) == 0 {
			fmt.Fprintln(c.stderr, "no studies yet: has studyd applied any enrolling recipe run? (studyctl simulate makes some)")
			return nil
		}
		return writeTable(c.stdout, t)
	}
}

func sum(counts map[string]uint64) uint64 {
	var n uint64
	for _, c := range counts {
		n += c
	}
	return n
}

// studyCmd prints one study's enrollment view.
func (c *cli) studyCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("study", "one study's enrollment view: per branch, unenroll and failure reasons")
	var sa studyArg
	sa.declare(cmd, true)
	var minSeq uint64
	minSeqFlag(cmd, &minSeq)
	return cmd.FullCommand(), func(ctx context.Context) error {
		ref, err := sa.parse()
		if err != nil {
			return err
		}
		return query(ctx, c, "study "+ref.String(), func(ctx context.Context, nc *client.Conn) (client.StudyResponse, error) {
			return client.QueryStudy(ctx, nc, client.StudyRequest{Object: ref.Object, Key: ref.Key, MinSeq: minSeq})
		}, printStudy)
	}
}

// query connects, asks one query endpoint and prints the answer as a table or JSON.
func query[R any](ctx context.Context, c *cli, what string, ask func(context.Context, *client.Conn) (R, error), print func(io.Writer, R) error) error {
	nc, err := c.connect(strings.Fields(what)[0])
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := ask(ctx, nc)
	if err != nil {
		return err // the service's answer names what it was asked about
	}
	if c.json {
		return c.printJSON(resp)
	}
	return print(c.stdout, resp)
}

func printStudy(w io.Writer, r client.StudyResponse) error {
	v := r.View
	fmt.Fprintf(w, "study %s/%s (slug %s) as of seq %d: enrolled %d, active %d\n\n", v.Object, v.Key, orDash(v.Slug), r.Seq, v.Enrolled, v.Active)
	// target is each branch's share of the recipe's ratios, as its enrollments recorded them.
	target := map[string]string{}
	var total uint64
	for _, r := range v.Ratios {
		total += r.Ratio
	}
	for _, r := range v.Ratios {
		if total > 0 {
			target[r.Slug] = fmt.Sprintf("%.1f%%", 100*float64(r.Ratio)/float64(total))
		}
	}
	t := newTable("branch", "enrolled", "active", "target")
	for _, name := range sortedKeys(v.Branches) {
		b := v.Branches[name]
		t.AppendRow(row(name, b.Enrolled, b.Active, orDash(target[name])))
	}
	if err := writeTable(w, t); err != nil {
		return err
	}
	for _, sec := range []struct {
		title  string
		counts map[string]uint64
	}{
		{"unenrolled (reason)", v.Unenrolled},
		{"enroll failed (reason)", v.EnrollFailed},
		{"did reset value", v.DidResetValue},
		{"experiment type", v.ExperimentTypes},
	} {
		if len(sec.counts) == 0 {
			continue
		}
		t := newTable(sec.title, "count")
		for _, k := range sortedKeys(sec.counts) {
			t.AppendRow(row(k, sec.counts[k]))
		}
		fmt.Fprintln(w)
		if err := writeTable(w, t); err != nil {
			return err
		}
	}
	return nil
}

// uptakeCmd prints uptake tallies.
func (c *cli) uptakeCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("uptake", "uptake tallies per source and status, with each source's health")
	var source, period, bucket string
	var minSeq uint64
	cmd.Flag("source", "only sources starting with this prefix, e.g. normandy/runner, normandy/action/, normandy/recipe/42").PlaceHolder("PREFIX").StringVar(&source)
	cmd.Flag("period", "total, hour or day").Default("total").EnumVar(&period, "total", "hour", "day")
	cmd.Flag("bucket", "with --period hour|day: only this bucket, e.g. 2018071412 or 20180714 (* wildcards allowed)").PlaceHolder("BUCKET").StringVar(&bucket)
	minSeqFlag(cmd, &minSeq)
	return cmd.FullCommand(), func(ctx context.Context) error {
		return query(ctx, c, "uptake", func(ctx context.Context, nc *client.Conn) (client.UptakeResponse, error) {
			return client.QueryUptake(ctx, nc, client.UptakeRequest{Source: source, Period: period, Bucket: bucket, MinSeq: minSeq})
		}, printUptake)
	}
}

func printUptake(w io.Writer, r client.UptakeResponse) error {
	fmt.Fprintf(w, "uptake as of seq %d\n\n", r.Seq)
	t := newTable("source", "bucket", "status", "label", "health", "count")
	for _, u := range r.Rows {
		bucket := "total"
		switch u.Period {
		case "hour":
			bucket = u.Start.UTC().Format("2006-01-02T15Z")
		case "day":
			bucket = u.Start.UTC().Format("2006-01-02")
		}
		t.AppendRow(row(u.Source, bucket, string(u.Status), u.Label, string(u.Health), u.Count))
	}
	if err := writeTable(w, t); err != nil {
		return err
	}
	if len(r.Health) == 0 {
		return nil
	}
	h := newTable("source", "good", "neutral", "bad", "bad %")
	for _, src := range sortedKeys(r.Health) {
		c := r.Health[src]
		h.AppendRow(row(src, c.Good, c.Neutral, c.Bad, strconv.FormatFloat(100*c.BadRatio(), 'f', 2, 64)))
	}
	fmt.Fprintln(w)
	return writeTable(w, h)
}

// clientCmd prints one client's enrollments.
func (c *cli) clientCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("client", "one client's enrollments, from its latest commit")
	var clientID string
	clientArg(cmd, &clientID)
	var minSeq uint64
	minSeqFlag(cmd, &minSeq)
	return cmd.FullCommand(), func(ctx context.Context) error {
		id, err := parseClient(clientID)
		if err != nil {
			return err
		}
		return query(ctx, c, "client "+string(id), func(ctx context.Context, nc *client.Conn) (client.ClientResponse, error) {
			return client.QueryClient(ctx, nc, client.ClientRequest{Client: id, MinSeq: minSeq})
		}, printClient)
	}
}

func printClient(w io.Writer, r client.ClientResponse) error {
	v := r.View
	fmt.Fprintf(w, "client %s as of seq %d\n", v.Client, r.Seq)
	if err := writeFields(w,
		[2]string{"studies enabled", strconv.FormatBool(!v.StudiesDisabled)},
		[2]string{"last run", fmtTime(v.LastRunAt)}); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return writeEnrollments(w, v.Enrollments)
}

// writeEnrollments is the one enrollments table (client, asof).
func writeEnrollments(w io.Writer, ens []domain.Enrollment) error {
	t := newTable("study", "slug", "state", "branch", "enrolled at", "ended at", "reason")
	for _, en := range ens {
		t.AppendRow(row(en.Study().String(), en.Slug, string(en.State), en.Branch, en.EnrolledAt, en.EndedAt, en.Reason))
	}
	return writeTable(w, t)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// fmtDuration prints d rounded for people.
func fmtDuration(d time.Duration) string { return d.Round(time.Millisecond).String() }
