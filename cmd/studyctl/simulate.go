package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/simulate"
)

// simulateReport is what `studyctl simulate --json` prints.
type simulateReport struct {
	Clients    int                        `json:"clients"`
	Days       int                        `json:"days"`
	Seed       uint64                     `json:"seed"`
	Format     string                     `json:"format"`
	Sent       int                        `json:"sent"`
	Acked      int                        `json:"acked"`
	Duplicates int                        `json:"duplicates"`
	Retries    int                        `json:"retries"`
	PerType    map[domain.CommandType]int `json:"per_type"`
	Seconds    float64                    `json:"duration_seconds"`
	Rate       float64                    `json:"rate_per_second"`
	// Expected is what studyd records when it applies every acked command.
	Expected simulate.Tally `json:"expected"`
}

// runSimulate generates a fleet's commands and publishes them to STUDYD_CMDS.
func runSimulate(ctx context.Context, e *env, args []string) error {
	fs := e.flags()
	cfg := simulate.Config{}
	fs.IntVar(&cfg.Clients, "clients", simEnvInt(e, "STUDYCTL_CLIENTS", 1000), "simulated Firefox profiles (env STUDYCTL_CLIENTS)")
	fs.IntVar(&cfg.Days, "days", simEnvInt(e, "STUDYCTL_DAYS", 7), "simulated days (env STUDYCTL_DAYS)")
	seed := fs.Uint64("seed", uint64(simEnvInt(e, "STUDYCTL_SEED", 1)), "random seed: the same seed sends the same commands (env STUDYCTL_SEED)")
	fs.IntVar(&cfg.RunsPerDay, "runs-per-day", simEnvInt(e, "STUDYCTL_RUNS_PER_DAY", simulate.DefaultRunsPerDay), "recipe runs per client per day (env STUDYCTL_RUNS_PER_DAY)")
	fs.IntVar(&cfg.PrefStudies, "pref-studies", simEnvInt(e, "STUDYCTL_PREF_STUDIES", simulate.DefaultPrefStudies), "preference studies (env STUDYCTL_PREF_STUDIES)")
	fs.IntVar(&cfg.AddonStudies, "addon-studies", simEnvInt(e, "STUDYCTL_ADDON_STUDIES", simulate.DefaultAddonStudies), "add-on studies (env STUDYCTL_ADDON_STUDIES)")
	rate := fs.Float64("rate", simEnvFloat(e, "STUDYCTL_RATE", 0), "commands per second, 0 = as fast as acks allow (env STUDYCTL_RATE)")
	inFlight := fs.Int("in-flight", simEnvInt(e, "STUDYCTL_IN_FLIGHT", 256), "publishes awaiting their ack at most (env STUDYCTL_IN_FLIGHT)")
	format := fs.String("format", simEnvString(e, "STUDYCTL_FORMAT", "msgpack"), "command encoding: msgpack or json (env STUDYCTL_FORMAT)")
	dryRun := fs.Bool("dry-run", false, "generate and tally the commands without connecting or publishing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("simulate: unexpected argument %q", fs.Arg(0))
	}
	cfg.Seed = *seed
	if *format != "msgpack" && *format != "json" {
		return fmt.Errorf("simulate: --format %q (want msgpack or json)", *format)
	}
	fleet, err := simulate.New(cfg)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	rep := simulateReport{Clients: cfg.Clients, Days: cfg.Days, Seed: cfg.Seed, Format: *format}

	var stats client.PublishStats
	bar := simProgress(e.stderr, fleet.Count(), *dryRun)
	if *dryRun {
		stats.PerType = map[domain.CommandType]int{}
		start := time.Now()
		err = fleet.Each(func(c domain.Command) error {
			stats.Sent++
			stats.PerType[c.Type]++
			_ = bar.Add(1)
			return nil
		})
		stats.Duration = time.Since(start)
	} else {
		nc, cerr := e.connect()
		if cerr != nil {
			return fmt.Errorf("simulate: %w", cerr)
		}
		defer nc.Close()
		stats, err = client.PublishCommands(ctx, nc, fleet.Next, client.PublishOptions{
			JSON: *format == "json", InFlight: *inFlight, Rate: *rate,
			Acked: func(domain.Command) { _ = bar.Add(1) },
		})
	}
	_ = bar.Finish()
	if err == nil {
		err = fleet.Err()
	}
	rep.Sent, rep.Acked, rep.Duplicates, rep.Retries = stats.Sent, stats.Acked, stats.Duplicates, stats.Retries
	rep.PerType, rep.Seconds, rep.Rate = stats.PerType, stats.Duration.Seconds(), stats.Rate()
	if *dryRun {
		rep.Acked, rep.Rate = 0, float64(stats.Sent)/max(stats.Duration.Seconds(), 1e-9)
	}
	rep.Expected = fleet.Tally()
	var perr error
	if e.json {
		perr = e.printJSON(rep)
	} else {
		perr = printSimulateTable(e.stdout, rep, *dryRun)
	}
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	return perr
}

// printSimulateTable prints the summary for people.
func printSimulateTable(w io.Writer, r simulateReport, dryRun bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "fleet\t%d clients, %d days, seed %d, %s\n", r.Clients, r.Days, r.Seed, r.Format)
	if dryRun {
		fmt.Fprintf(tw, "generated\t%d\n", r.Sent)
	} else {
		fmt.Fprintf(tw, "sent\t%d\n", r.Sent)
		fmt.Fprintf(tw, "acked\t%d\n", r.Acked)
		fmt.Fprintf(tw, "duplicates\t%d\n", r.Duplicates)
		fmt.Fprintf(tw, "retries\t%d\n", r.Retries)
	}
	types := make([]domain.CommandType, 0, len(r.PerType))
	for t := range r.PerType {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		fmt.Fprintf(tw, "  %s\t%d\n", t, r.PerType[t])
	}
	fmt.Fprintf(tw, "duration\t%s\n", time.Duration(r.Seconds*float64(time.Second)).Round(time.Millisecond))
	fmt.Fprintf(tw, "rate\t%.0f commands/s\n", r.Rate)
	ex := r.Expected.Events
	fmt.Fprintf(tw, "expected\t%d enrolled, %d enroll_failed, %d unenrolled\n",
		ex[domain.EventEnrolled], ex[domain.EventEnrollFailed], ex[domain.EventUnenrolled])
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// simProgress is a progress bar on a terminal, and a silent one otherwise.
func simProgress(w io.Writer, total int, dryRun bool) *progressbar.ProgressBar {
	if f, ok := w.(*os.File); !ok || !simIsTerminal(f) {
		return progressbar.DefaultSilent(int64(total))
	}
	desc := "publishing"
	if dryRun {
		desc = "generating"
	}
	return progressbar.NewOptions64(int64(total),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("cmd"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// simIsTerminal reports whether f is a character device (a terminal).
func simIsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// simEnvInt, simEnvFloat and simEnvString read a flag's environment fallback; an unset
// or unparsable variable keeps the built-in default.
func simEnvInt(e *env, key string, def int) int {
	if n, err := strconv.Atoi(e.getenv(key)); err == nil {
		return n
	}
	return def
}

func simEnvFloat(e *env, key string, def float64) float64 {
	if v, err := strconv.ParseFloat(e.getenv(key), 64); err == nil {
		return v
	}
	return def
}

func simEnvString(e *env, key, def string) string {
	if v := e.getenv(key); v != "" {
		return v
	}
	return def
}
