package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/choria-io/fisk"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
	"github.com/studyd/studyd/srm"
)

// asofCmd prints a client's state as it was at a time of its own, a storage time, or
// a log sequence.
func (c *cli) asofCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("asof", "a client's state as it was at a time (the client's own, or the log's) or a log sequence")
	var clientID, stream, at, stored string
	var seq uint64
	var sa studyArg
	clientArg(cmd, &clientID)
	sa.declare(cmd, false)
	cmd.Flag("stream", "the events stream").Default(eventlog.EventsStream).PlaceHolder("NAME").StringVar(&stream)
	cmd.Flag("at", "the state after the client's last command whose own time (its at) is at or before TIME (RFC 3339 or YYYY-MM-DD)").PlaceHolder("TIME").StringVar(&at)
	cmd.Flag("stored", "the state after the last commit the log stored at or before TIME").PlaceHolder("TIME").StringVar(&stored)
	cmd.Flag("seq", "the state after the client's last commit at or before this log sequence").PlaceHolder("SEQ").Uint64Var(&seq)
	return cmd.FullCommand(), func(ctx context.Context) error {
		id, err := parseClient(clientID)
		if err != nil {
			return err
		}
		ref, err := sa.parse()
		if err != nil {
			return err
		}
		given := 0
		for _, set := range []bool{at != "", stored != "", seq != 0} {
			if set {
				given++
			}
		}
		if given > 1 {
			return errors.New("give one of --at, --stored or --seq (none: the latest state)")
		}
		atT, err := parseTime(at)
		if err != nil {
			return fmt.Errorf("--at: %w", err)
		}
		storedT, err := parseTime(stored)
		if err != nil {
			return fmt.Errorf("--stored: %w", err)
		}
		js, closer, err := c.jsConnect("asof")
		if err != nil {
			return err
		}
		defer closer()
		var rec eventstore.Record
		var storedAt time.Time
		if at != "" {
			rec, storedAt, err = c.clientAt(ctx, js, stream, id, atT)
		} else {
			rec, storedAt, err = eventlog.ClientAsOf(ctx, js, stream, id, seq, storedT)
		}
		if err != nil {
			return err
		}
		a := audit.AsOfRecord(id, rec, storedAt, ref)
		if !a.Found {
			return c.whyNotFound(ctx, js, stream, id, at, stored, seq)
		}
		if c.json {
			return c.printJSON(a)
		}
		return printAsOf(c.stdout, a)
	}
}

// clientAt is the client's last commit, in log order, whose own time is at or before
// t, read by replaying the client's commits.
func (c *cli) clientAt(ctx context.Context, js client.JetStream, stream string, id domain.ClientID, t time.Time) (eventstore.Record, time.Time, error) {
	var found audit.Entry
	var first, last uint64
	err := c.replayWithProgress(ctx, js, eventlog.ReplayOptions{Stream: stream, Subjects: []string{eventlog.EventSubject(id)}}, "reading",
		func(en audit.Entry) error {
			if en.Kind() != audit.KindCommit {
				return nil
			}
			r, err := en.Record()
			if err != nil {
				return err
			}
			if !r.Commit.At.After(t) {
				found = en
			}
			return nil
		}, &first, &last)
	if err != nil || found.Seq == 0 {
		return eventstore.Record{}, time.Time{}, err
	}
	r, err := found.Record()
	return r, found.Stored, err
}

// whyNotFound is asof's error when the client had no commit by then: it says whether
// the client has none at all, or what its first one is.
func (c *cli) whyNotFound(ctx context.Context, js client.JetStream, stream string, id domain.ClientID, at, stored string, seq uint64) error {
	latest, _, err := eventlog.ClientAsOf(ctx, js, stream, id, 0, time.Time{})
	if err != nil {
		return err
	}
	if latest.Position == 0 {
		return fmt.Errorf("client %s has no commits in %s (is the id right? studyd.evt.%s is empty)", id, stream, id)
	}
	var by string
	switch {
	case at != "":
		by = "with its own time at or before " + at
	case stored != "":
		by = "stored at or before " + stored
	default:
		by = fmt.Sprintf("at or before seq %d", seq)
	}
	return fmt.Errorf("client %s had no commit %s: its first came later (its latest is seq %d, at %s)", id, by, latest.Position, fmtTime(latest.Commit.At))
}

func printAsOf(w io.Writer, a audit.AsOf) error {
	fmt.Fprintf(w, "client %s as of commit seq %d (at %s, stored %s)\n", a.Client, a.Seq, fmtTime(a.At), a.Stored.UTC().Format(time.RFC3339Nano))
	if err := writeFields(w, [2]string{"studies enabled", strconv.FormatBool(!a.State.StudiesDisabled)}); err != nil {
		return err
	}
	ens := a.State.Enrollments
	if a.Enrollment != nil {
		ens = []domain.Enrollment{*a.Enrollment}
	}
	fmt.Fprintln(w)
	return writeEnrollments(w, ens)
}

// explainCmd prints an enrollment's whole history, transition by transition.
func (c *cli) explainCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("explain", "an enrollment's full history, transition by transition")
	var clientID, stream string
	var sa studyArg
	clientArg(cmd, &clientID)
	sa.declare(cmd, true)
	cmd.Flag("stream", "the events stream").Default(eventlog.EventsStream).PlaceHolder("NAME").StringVar(&stream)
	return cmd.FullCommand(), func(ctx context.Context) error {
		id, err := parseClient(clientID)
		if err != nil {
			return err
		}
		ref, err := sa.parse()
		if err != nil {
			return err
		}
		js, closer, err := c.jsConnect("explain")
		if err != nil {
			return err
		}
		defer closer()
		steps := []audit.Step{}
		var first, last uint64
		err = c.replayWithProgress(ctx, js, eventlog.ReplayOptions{Stream: stream, Subjects: []string{eventlog.EventSubject(id)}}, "reading",
			func(en audit.Entry) error {
				if en.Kind() != audit.KindCommit {
					return nil
				}
				r, err := en.Record()
				if err != nil {
					return err
				}
				steps = append(steps, audit.Steps(r, ref)...)
				return nil
			}, &first, &last)
		if err != nil {
			return err
		}
		if c.json {
			return c.printJSON(struct {
				Client domain.ClientID `json:"client_id"`
				Study  domain.StudyRef `json:"study"`
				Steps  []audit.Step    `json:"steps"`
			}{id, ref, steps})
		}
		fmt.Fprintf(c.stdout, "client %s, study %s: %d transition(s)\n", id, ref, len(steps))
		if len(steps) == 0 {
			return nil
		}
		fmt.Fprintln(c.stdout)
		t := newTable("seq", "at", "command", "type", "event", "from", "to", "branch", "reason")
		for _, s := range steps {
			t.AppendRow(row(s.Seq, s.At, s.CommandID, string(s.CommandType), string(s.Event), string(s.From), string(s.To), s.Branch, s.Reason))
		}
		return writeTable(c.stdout, t)
	}
}

// healthCmd folds one study from the log and tests its branches' enrollments against
// the expected ratios (sample-ratio mismatch).
func (c *cli) healthCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("health", "a study's enrollments per branch from the log, with a sample-ratio-mismatch test")
	var sa studyArg
	sa.declare(cmd, true)
	var sf selectionFlags
	sf.register(cmd, false)
	var ratios string
	cmd.Flag("ratios", "expected branch weights, e.g. control=1,treatment=1 (default: the ratios the study's recipe gave, recorded with its enrollments; equal over the branches seen if the log has none)").PlaceHolder("WEIGHTS").StringVar(&ratios)
	return cmd.FullCommand(), func(ctx context.Context) error {
		ref, err := sa.parse()
		if err != nil {
			return err
		}
		return c.health(ctx, ref, &sf, ratios)
	}
}

func (c *cli) health(ctx context.Context, ref domain.StudyRef, sf *selectionFlags, ratios string) error {
	w, err := srm.ParseRatios(ratios)
	if err != nil {
		return fmt.Errorf("--ratios: %w", err)
	}
	sf.study = ref.String()
	o, sel, err := sf.options([]string{eventlog.EventSubjects}, false)
	if err != nil {
		return err
	}
	js, closer, err := c.jsConnect("health")
	if err != nil {
		return err
	}
	defer closer()
	view := &projections.StudyView{Object: ref.Object, Key: ref.Key}
	var first, last uint64
	err = c.replayWithProgress(ctx, js, o, "folding", func(en audit.Entry) error {
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
		return err
	}
	h := srm.Health(view, w)
	if c.json {
		return c.printJSON(h)
	}
	return printHealth(c.stdout, h)
}

func printHealth(w io.Writer, h srm.StudyHealth) error {
	fmt.Fprintf(w, "study %s (log to seq %d): %d enrolled, %d active\n", h.Study, h.Seq, h.Enrolled, h.Active)
	fmt.Fprintf(w, "expected split: %s\n\n", orDash(map[string]string{srm.RatiosGiven: "the --ratios given",
		srm.RatiosRecipe: "the study's recipe ratios", srm.RatiosEqual: "equal (no ratios in the log)"}[h.RatiosFrom]))
	t := newTable("branch", "weight", "enrolled", "expected", "share", "active")
	for _, b := range h.Branches {
		t.AppendRow(row(b.Branch, strconv.FormatFloat(b.Weight, 'g', -1, 64), b.Enrolled, fmt.Sprintf("%.1f", b.Expected), fmt.Sprintf("%.2f%%", 100*b.Share), b.Active))
	}
	if err := writeTable(w, t); err != nil {
		return err
	}
	verdict := "no sample-ratio mismatch"
	if h.SRM {
		verdict = fmt.Sprintf("SAMPLE-RATIO MISMATCH (p < %g)", srm.Threshold)
	}
	pairs := [][2]string{{"chi-squared", fmt.Sprintf("%.4f, df %d, p = %.4g: %s", h.ChiSquared, h.DF, h.PValue, verdict)}}
	if h.Note != "" {
		pairs = append(pairs, [2]string{"note", h.Note})
	}
	for _, reason := range sortedKeys(h.Unenrolled) {
		pairs = append(pairs, [2]string{"unenrolled", fmt.Sprintf("%s: %d", reason, h.Unenrolled[reason])})
	}
	for _, reason := range sortedKeys(h.EnrollFailed) {
		pairs = append(pairs, [2]string{"enroll failed", fmt.Sprintf("%s: %d", reason, h.EnrollFailed[reason])})
	}
	fmt.Fprintln(w)
	return writeFields(w, pairs...)
}
