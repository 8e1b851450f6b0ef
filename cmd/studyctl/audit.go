package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

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

func (s *selectionFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.stream, "stream", eventlog.EventsStream, "the events stream to read (a copy or a restored backup may have another name)")
	fs.StringVar(&s.client, "client", "", "only this client's commits (subject studyd.evt.<client>)")
	fs.StringVar(&s.study, "study", "", "only commits with an event about this study, <object>/<key> (e.g. preference_study/my-slug)")
	fs.Uint64Var(&s.from, "from", 0, "first stream sequence")
	fs.Uint64Var(&s.to, "to", 0, "last stream sequence (default: the last when the replay starts)")
	fs.StringVar(&s.since, "since", "", "messages stored at or after this time (RFC 3339 or YYYY-MM-DD; starts the consumer there)")
	fs.StringVar(&s.until, "until", "", "messages stored before this time")
	fs.StringVar(&s.commitSince, "commit-since", "", "commits whose own time (the command's at) is at or after this")
	fs.StringVar(&s.commitUntil, "commit-until", "", "commits whose own time is before this")
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
}

// runAudit exports the selected part of the log.
func runAudit(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	var sf selectionFlags
	sf.register(fs)
	format := fs.String("format", "jsonl", "jsonl (decoded envelopes), csv (one row per event) or telemetry (Firefox's event shape)")
	rejections := fs.Bool("rejections", false, "list the recorded rejections instead of the commits")
	output := fs.String("output", "", "write the export to this file instead of stdout (the summary then goes to stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit: unexpected argument %q", fs.Arg(0))
	}
	f, err := audit.ParseFormat(*format)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	subjects := []string{eventlog.EventSubjects}
	if *rejections {
		subjects = []string{eventlog.RejectionSubjects}
	}
	o, sel, err := sf.options(subjects, *rejections)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	out, summaryTo := e.stdout, e.stderr
	if *output != "" {
		file, err := os.Create(*output)
		if err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		defer file.Close()
		out, summaryTo = file, e.stdout
	}
	x, err := audit.NewExporter(out, f, sel, *rejections)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	nc, err := e.connect()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer nc.Close()
	js, err := client.JetStreamOf(nc)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	sum := auditSummary{Format: f}
	start := time.Now()
	err = replayWithProgress(ctx, e, js, o, "exporting", func(en audit.Entry) error {
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
	if *output != "" {
		if cerr := out.(*os.File).Close(); err == nil && cerr != nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	sum.Commits, sum.Lines = x.Commits, x.Lines
	sum.Seconds = time.Since(start).Seconds()
	sum.Rate = float64(sum.Messages) / max(sum.Seconds, 1e-9)
	if e.json {
		return (&env{stdout: summaryTo}).printJSON(sum)
	}
	_, err = fmt.Fprintf(summaryTo, "audit: %d messages read (seq %d..%d), %d commits selected, %d %s lines written in %s (%.0f msg/s)\n",
		sum.Messages, sum.FirstSeq, sum.LastSeq, sum.Commits, sum.Lines, f, time.Duration(sum.Seconds*float64(time.Second)).Round(time.Millisecond), sum.Rate)
	return err
}

// replayWithProgress replays o with a progress bar (by sequence, with rate and ETA) on
// stderr when stderr is a terminal, and records the first and last sequence seen.
func replayWithProgress(ctx context.Context, e *env, js client.JetStream, o eventlog.ReplayOptions, desc string, fn func(audit.Entry) error, first, last *uint64) error {
	lo, hi, ok, err := eventlog.ReplayBounds(ctx, js, o)
	if err != nil || !ok {
		return err
	}
	bar := progress(e.stderr, int64(hi-lo+1), desc)
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

// progress is a progress bar with rate and ETA on a terminal, silent otherwise.
func progress(w io.Writer, total int64, desc string) *progressbar.ProgressBar {
	if f, ok := w.(*os.File); !ok || !simIsTerminal(f) {
		return progressbar.DefaultSilent(total)
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("msg"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}
