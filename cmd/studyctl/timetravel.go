package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
)

// jsConnect dials NATS and returns the JetStream handle with a closer.
func (e *env) jsConnect() (client.JetStream, func(), error) {
	nc, err := e.connect()
	if err != nil {
		return nil, nil, err
	}
	js, err := client.JetStreamOf(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}

// runAsOf prints a client's state as it was at a stream sequence or stored time.
func runAsOf(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	stream := fs.String("stream", eventlog.EventsStream, "the events stream")
	client := fs.String("client", "", "the client (required)")
	study := fs.String("study", "", "show only this study, <object>/<key>")
	at := fs.String("at", "", "the state as of this stored time (RFC 3339 or YYYY-MM-DD): the last commit stored at or before it")
	seq := fs.Uint64("seq", 0, "the state as of this stream sequence: the client's last commit at or before it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := domain.ClientID(*client)
	if err := c.Validate(); err != nil {
		return fmt.Errorf("asof: --client: %w", err)
	}
	if (*at == "") == (*seq == 0) {
		return fmt.Errorf("asof: give exactly one of --at TIME or --seq S")
	}
	t, err := parseTime(*at)
	if err != nil {
		return fmt.Errorf("asof: %w", err)
	}
	var ref domain.StudyRef
	if *study != "" {
		if ref, err = audit.ParseStudy(*study); err != nil {
			return fmt.Errorf("asof: %w", err)
		}
	}
	js, closer, err := e.jsConnect()
	if err != nil {
		return fmt.Errorf("asof: %w", err)
	}
	defer closer()
	rec, stored, err := eventlog.ClientAsOf(ctx, js, *stream, c, *seq, t)
	if err != nil {
		return fmt.Errorf("asof: %w", err)
	}
	a := audit.AsOfRecord(c, rec, stored, ref)
	if e.json {
		return e.printJSON(a)
	}
	return printAsOf(e.stdout, a)
}

func printAsOf(w io.Writer, a audit.AsOf) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if !a.Found {
		fmt.Fprintf(tw, "client %s had no commit by then\n", a.Client)
	} else {
		fmt.Fprintf(tw, "client %s as of commit seq %d (at %s, stored %s)\n", a.Client, a.Seq,
			a.At.Format(time.RFC3339), a.Stored.Format(time.RFC3339Nano))
		fmt.Fprintf(tw, "studies enabled\t%t\n", !a.State.StudiesDisabled)
	}
	ens := a.State.Enrollments
	if a.Enrollment != nil {
		ens = []domain.Enrollment{*a.Enrollment}
	}
	fmt.Fprintln(tw, "STUDY\tSTATE\tBRANCH\tENROLLED\tENDED\tREASON")
	for _, en := range ens {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", en.Study(), en.State, en.Branch, ts(en.EnrolledAt), ts(en.EndedAt), en.Reason)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// runExplain prints an enrollment's whole history, transition by transition.
func runExplain(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	stream := fs.String("stream", eventlog.EventsStream, "the events stream")
	client := fs.String("client", "", "the client (required)")
	study := fs.String("study", "", "the study, <object>/<key> (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := domain.ClientID(*client)
	if err := c.Validate(); err != nil {
		return fmt.Errorf("explain: --client: %w", err)
	}
	ref, err := audit.ParseStudy(*study)
	if err != nil {
		return fmt.Errorf("explain: --study: %w", err)
	}
	js, closer, err := e.jsConnect()
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	defer closer()
	steps := []audit.Step{}
	err = eventlog.ReplayCommits(ctx, js, eventlog.ReplayOptions{Stream: *stream, Subjects: []string{eventlog.EventSubject(c)}},
		func(r eventstore.Record) error {
			steps = append(steps, audit.Steps(r, ref)...)
			return nil
		})
	if err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	if e.json {
		return e.printJSON(struct {
			Client domain.ClientID `json:"client_id"`
			Study  domain.StudyRef `json:"study"`
			Steps  []audit.Step    `json:"steps"`
		}{c, ref, steps})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "client %s, study %s: %d transition(s)\n", c, ref, len(steps))
	fmt.Fprintln(tw, "SEQ\tAT\tCOMMAND\tTYPE\tEVENT\tFROM → TO\tBRANCH\tREASON")
	for _, s := range steps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s → %s\t%s\t%s\n", s.Seq, s.At.Format(time.RFC3339), s.CommandID, s.CommandType,
			s.Event, s.From, s.To, s.Branch, s.Reason)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// runHealth folds one study from the log and tests its branches' enrollments against
// the expected ratios (sample-ratio mismatch).
func runHealth(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	var sf selectionFlags
	sf.register(fs)
	ratios := fs.String("ratios", "", "expected branch weights, e.g. control=1,treatment=1 (default: the ratios the study's recipe gave, recorded with its enrollments; equal over the branches seen if the log has none)")
	// The study comes as two positional arguments, before or after the flags.
	var pos []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos, rest = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	if len(pos) != 2 {
		return fmt.Errorf("health: want <object> <key>, e.g. studyctl health preference_study my-slug")
	}
	ref := domain.StudyRef{Object: domain.Object(pos[0]), Key: pos[1]}
	if err := ref.Validate(); err != nil {
		return fmt.Errorf("health: %w", err)
	}
	w, err := audit.ParseRatios(*ratios)
	if err != nil {
		return fmt.Errorf("health: --ratios: %w", err)
	}
	sf.study = ref.String()
	o, sel, err := sf.options([]string{eventlog.EventSubjects}, false)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	js, closer, err := e.jsConnect()
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer closer()
	view := &projections.StudyView{Object: ref.Object, Key: ref.Key}
	var first, last uint64
	err = replayWithProgress(ctx, e, js, o, "folding", func(en audit.Entry) error {
		if en.Kind() != audit.KindCommit {
			return nil
		}
		r, err := en.Record()
		if err != nil {
			return err
		}
		if !sel.Match(&r.Commit) {
			return nil
		}
		return sel.Events(&r.Commit, func(_ int, ev *domain.Event) error {
			view.Apply(ev)
			view.Seq = r.Position
			return nil
		})
	}, &first, &last)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	h := audit.Health(view, w)
	if e.json {
		return e.printJSON(h)
	}
	return printHealth(e.stdout, h)
}

func printHealth(w io.Writer, h audit.StudyHealth) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "study %s (log to seq %d): %d enrolled, %d active\n", h.Study, h.Seq, h.Enrolled, h.Active)
	fmt.Fprintf(tw, "expected split: %s\n", map[string]string{audit.RatiosGiven: "the --ratios given",
		audit.RatiosRecipe: "the study's recipe ratios", audit.RatiosEqual: "equal (no ratios in the log)"}[h.RatiosFrom])
	fmt.Fprintln(tw, "BRANCH\tWEIGHT\tENROLLED\tEXPECTED\tSHARE\tACTIVE")
	for _, b := range h.Branches {
		fmt.Fprintf(tw, "%s\t%g\t%d\t%.1f\t%.2f%%\t%d\n", b.Branch, b.Weight, b.Enrolled, b.Expected, 100*b.Share, b.Active)
	}
	verdict := "no sample-ratio mismatch"
	if h.SRM {
		verdict = fmt.Sprintf("SAMPLE-RATIO MISMATCH (p < %g)", audit.SRMThreshold)
	}
	fmt.Fprintf(tw, "chi-squared\t%.4f, df %d, p = %.4g: %s\n", h.ChiSquared, h.DF, h.PValue, verdict)
	if h.Note != "" {
		fmt.Fprintf(tw, "note\t%s\n", h.Note)
	}
	for reason, n := range h.Unenrolled {
		fmt.Fprintf(tw, "unenrolled\t%s: %d\n", reason, n)
	}
	for reason, n := range h.EnrollFailed {
		fmt.Fprintf(tw, "enroll failed\t%s: %d\n", reason, n)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}
