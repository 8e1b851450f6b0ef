package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/choria-io/fisk"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
)

// selectionFlags are the flags every replaying command shares.
type selectionFlags struct {
	stream      string
	client      string
	study       string
	from, to    uint64
	since       string
	until       string
	commitSince string
	commitUntil string
}

// register declares the selection flags on cmd; filters says whether the client and
// study filters apply (health takes its study as an argument instead).
func (s *selectionFlags) register(cmd *fisk.CmdClause, filters bool) {
	cmd.Flag("stream", "the events stream to read (a copy or a restored backup may have another name)").Default(eventlog.EventsStream).PlaceHolder("NAME").StringVar(&s.stream)
	if filters {
		cmd.Flag("client", "only this client's commits (subject studyd.evt.<client>)").PlaceHolder("CLIENT").StringVar(&s.client)
		cmd.Flag("study", "only commits with an event about this study, <object>/<key> (e.g. preference_study/my-slug)").PlaceHolder("STUDY").StringVar(&s.study)
	}
	cmd.Flag("from", "first stream sequence").PlaceHolder("SEQ").Uint64Var(&s.from)
	cmd.Flag("to", "last stream sequence (default: the last when the replay starts)").PlaceHolder("SEQ").Uint64Var(&s.to)
	cmd.Flag("since", "messages stored at or after this time (RFC 3339 or YYYY-MM-DD; starts the consumer there)").PlaceHolder("TIME").StringVar(&s.since)
	cmd.Flag("until", "messages stored before this time").PlaceHolder("TIME").StringVar(&s.until)
	if filters {
		cmd.Flag("commit-since", "commits whose own time (the command's at) is at or after this").PlaceHolder("TIME").StringVar(&s.commitSince)
		cmd.Flag("commit-until", "commits whose own time is before this").PlaceHolder("TIME").StringVar(&s.commitUntil)
	}
}

// options turns the flags into a replay and a selection. subjects are the stream
// subjects to read when no client is given (nil: all).
func (s *selectionFlags) options(subjects []string, rejections bool) (eventlog.ReplayOptions, audit.Selection, error) {
	o := eventlog.ReplayOptions{Stream: s.stream, From: s.from, To: s.to, Subjects: subjects}
	var sel audit.Selection
	var err error
	if s.client != "" {
		c := domain.ClientID(s.client)
		if err := c.Validate(); err != nil {
			return o, sel, err
		}
		o.Subjects = []string{eventlog.EventSubject(c)}
		if rejections {
			o.Subjects = []string{eventlog.RejectionSubject(c)}
		}
	}
	if s.study != "" {
		if sel.Study, err = audit.ParseStudy(s.study); err != nil {
			return o, sel, err
		}
	}
	for _, t := range []struct {
		v   string
		dst *time.Time
	}{{s.since, &o.Since}, {s.until, &o.Until}, {s.commitSince, &sel.Since}, {s.commitUntil, &sel.Until}} {
		if *t.dst, err = parseTime(t.v); err != nil {
			return o, sel, err
		}
	}
	return o, sel, nil
}

// parseTime reads RFC 3339 or a bare UTC date; "" is the zero time.
func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q is not RFC 3339 (2018-07-14T12:00:00Z) or a date (2018-07-14)", v)
}

// auditSummary is what `studyctl audit` reports after the export.
type auditSummary struct {
	Format   audit.Format `json:"format"`
	Messages uint64       `json:"messages"` // read from the stream
	Commits  uint64       `json:"commits"`  // selected
	Lines    uint64       `json:"lines"`    // written
	FirstSeq uint64       `json:"first_seq"`
	LastSeq  uint64       `json:"last_seq"`
	Seconds  float64      `json:"duration_seconds"`
	Rate     float64      `json:"messages_per_second"`
	// Skipped are records the format cannot hold (e.g. a time JSON cannot write):
	// left out, named here, and the export went on.
	Skipped []audit.Skipped `json:"skipped,omitempty"`
}

// auditCmd exports the selected part of the log.
func (c *cli) auditCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("audit", "export the log (jsonl, csv, or Firefox's Telemetry event shape), or its rejections")
	var sf selectionFlags
	sf.register(cmd, true)
	var format, output string
	var rejections bool
	cmd.Flag("format", "jsonl (decoded commits), csv (one row per event) or telemetry (Firefox's event shape)").Default("jsonl").EnumVar(&format, "jsonl", "csv", "telemetry")
	cmd.Flag("rejections", "list the recorded rejections instead of the commits").UnNegatableBoolVar(&rejections)
	cmd.Flag("output", "write the export to this file instead of stdout (the summary then goes to stdout)").Short('o').PlaceHolder("FILE").StringVar(&output)
	return cmd.FullCommand(), func(ctx context.Context) error {
		f, err := audit.ParseFormat(format)
		if err != nil {
			return err
		}
		subjects := []string{eventlog.EventSubjects}
		if rejections {
			subjects = []string{eventlog.RejectionSubjects}
		}
		o, sel, err := sf.options(subjects, rejections)
		if err != nil {
			return err
		}
		out, summaryTo := c.stdout, c.stderr
		if output != "" {
			file, err := os.Create(output)
			if err != nil {
				return err
			}
			defer file.Close()
			out, summaryTo = file, c.stdout
		}
		x, err := audit.NewExporter(out, f, sel, rejections)
		if err != nil {
			return err
		}
		js, closer, err := c.jsConnect("audit")
		if err != nil {
			return err
		}
		defer closer()
		sum := auditSummary{Format: f}
		start := time.Now()
		err = c.replayWithProgress(ctx, js, o, "exporting", func(en audit.Entry) error {
			sum.Messages++
			switch en.Kind() {
			case audit.KindCommit:
				r, err := en.Record()
				if err != nil {
					return err
				}
				return x.Commit(r)
			case audit.KindRejection:
				r, err := en.Rejection()
				if err != nil {
					return err
				}
				return x.Rejection(en.Seq, r)
			}
			return nil
		}, &sum.FirstSeq, &sum.LastSeq)
		if cerr := x.Close(); err == nil {
			err = cerr
		}
		if output != "" {
			if cerr := out.(*os.File).Close(); err == nil && cerr != nil {
				err = cerr
			}
		}
		if err != nil {
			return err
		}
		sum.Commits, sum.Lines, sum.Skipped = x.Commits, x.Lines, x.Skipped
		sum.Seconds = time.Since(start).Seconds()
		sum.Rate = float64(sum.Messages) / max(sum.Seconds, 1e-9)
		if c.json {
			return writeJSON(summaryTo, sum)
		}
		_, err = fmt.Fprintf(summaryTo, "audit: %d messages read (seq %d..%d), %d commits selected, %d %s lines written in %s (%.0f msg/s)\n",
			sum.Messages, sum.FirstSeq, sum.LastSeq, sum.Commits, sum.Lines, f, fmtDuration(time.Duration(sum.Seconds*float64(time.Second))), sum.Rate)
		for _, sk := range sum.Skipped {
			if err == nil {
				_, err = fmt.Fprintf(summaryTo, "audit: seq %d skipped: %s (studyctl verify lists it)\n", sk.Seq, sk.Err)
			}
		}
		return err
	}
}

// replayWithProgress replays o with a progress bar (by sequence, with rate and ETA) on
// stderr when stderr is a terminal, and records the first and last sequence seen.
func (c *cli) replayWithProgress(ctx context.Context, js client.JetStream, o eventlog.ReplayOptions, desc string, fn func(audit.Entry) error, first, last *uint64) error {
	lo, hi, ok, err := eventlog.ReplayBounds(ctx, js, o)
	if err != nil || !ok {
		return err
	}
	bar := progress(c.stderr, int64(hi-lo+1), desc, "msg")
	defer func() { _ = bar.Finish() }()
	return eventlog.Replay(ctx, js, o, func(en audit.Entry) error {
		if *first == 0 {
			*first = en.Seq
		}
		*last = en.Seq
		_ = bar.Set64(int64(en.Seq - lo + 1))
		return fn(en)
	})
}
