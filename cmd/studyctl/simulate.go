package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/choria-io/fisk"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
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
	// Wait is set once studyd had decided every command and the views showed them.
	Wait *waitReport `json:"wait,omitempty"`
}

// simulateCmd generates a fleet's commands, publishes them to STUDYD_CMDS and waits
// until studyd has decided them all and the views show them.
func (c *cli) simulateCmd(app *fisk.Application) (string, func(context.Context) error) {
	cmd := app.Command("simulate", "simulate a fleet of Firefox clients running recipes over days, publish its commands, wait until studyd has decided them and the views show them")
	cfg := simulate.Config{}
	var rate float64
	var inFlight int
	var format string
	var dryRun, noWait bool
	var versions string
	c.envFlag(cmd, "clients", "simulated Firefox profiles", "STUDYCTL_CLIENTS").Default("1000").PlaceHolder("N").IntVar(&cfg.Clients)
	c.envFlag(cmd, "days", "simulated days", "STUDYCTL_DAYS").Default("7").PlaceHolder("D").IntVar(&cfg.Days)
	c.envFlag(cmd, "seed", "random seed: the same seed sends the same commands", "STUDYCTL_SEED").Default("1").PlaceHolder("SEED").Uint64Var(&cfg.Seed)
	c.envFlag(cmd, "runs-per-day", "recipe runs per client per day", "STUDYCTL_RUNS_PER_DAY").Default(strconv.Itoa(simulate.DefaultRunsPerDay)).PlaceHolder("N").IntVar(&cfg.RunsPerDay)
	c.envFlag(cmd, "pref-studies", "preference studies", "STUDYCTL_PREF_STUDIES").Default(strconv.Itoa(simulate.DefaultPrefStudies)).PlaceHolder("N").IntVar(&cfg.PrefStudies)
	c.envFlag(cmd, "addon-studies", "add-on studies", "STUDYCTL_ADDON_STUDIES").Default(strconv.Itoa(simulate.DefaultAddonStudies)).PlaceHolder("N").IntVar(&cfg.AddonStudies)
	c.envFlag(cmd, "rate", "commands per second, 0 = as fast as acks allow", "STUDYCTL_RATE").Default("0").PlaceHolder("R").FloatVar(&rate)
	c.envFlag(cmd, "in-flight", "publishes awaiting their ack at most", "STUDYCTL_IN_FLIGHT").Default("256").PlaceHolder("N").IntVar(&inFlight)
	c.envFlag(cmd, "format", "command encoding: msgpack or json", "STUDYCTL_FORMAT").Default("msgpack").EnumVar(&format, "msgpack", "json")
	c.envFlag(cmd, "versions", "the fleet's Firefox versions: seed (no version: the 2018 rules) or mixed (unversioned, 60, 70, 80 and 100 clients)", "STUDYCTL_VERSIONS").Default("seed").EnumVar(&versions, "seed", "mixed")
	cmd.Flag("dry-run", "generate and tally the commands without connecting or publishing").UnNegatableBoolVar(&dryRun)
	cmd.Flag("no-wait", "exit once the stream has accepted every command, without waiting for studyd to decide them").UnNegatableBoolVar(&noWait)
	return cmd.FullCommand(), func(ctx context.Context) error {
		if versions == "mixed" {
			cfg.Versions = simulate.MixedFleet
		}
		fleet, err := simulate.New(cfg)
		if err != nil {
			return err
		}
		rep := simulateReport{Clients: cfg.Clients, Days: cfg.Days, Seed: cfg.Seed, Format: format}
		var stats client.PublishStats
		desc := "publishing"
		if dryRun {
			desc = "generating"
		}
		bar := progress(c.stderr, int64(fleet.Count()), desc, "cmd")
		var js client.JetStream
		if dryRun {
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
			nc, cerr := c.connect("simulate")
			if cerr != nil {
				return cerr
			}
			defer nc.Close()
			if js, cerr = client.JetStreamOf(nc); cerr != nil {
				return cerr
			}
			stats, err = client.PublishCommands(ctx, nc, fleet.Next, client.PublishOptions{
				JSON: format == "json", InFlight: inFlight, Rate: rate,
				Acked: func(domain.Command) { _ = bar.Add(1) },
			})
		}
		_ = bar.Finish()
		if err == nil {
			err = fleet.Err()
		}
		rep.Sent, rep.Acked, rep.Duplicates, rep.Retries = stats.Sent, stats.Acked, stats.Duplicates, stats.Retries
		rep.PerType, rep.Seconds, rep.Rate = stats.PerType, stats.Duration.Seconds(), stats.Rate()
		if dryRun {
			rep.Acked, rep.Rate = 0, float64(stats.Sent)/max(stats.Duration.Seconds(), 1e-9)
		}
		rep.Expected = fleet.Tally()
		if err == nil && !dryRun && !noWait {
			rep.Wait, err = c.waitDone(ctx, js, rep.Acked)
		}
		var perr error
		if c.json {
			perr = c.printJSON(rep)
		} else {
			perr = printSimulateTable(c.stdout, rep, dryRun)
		}
		if err != nil {
			return err
		}
		return perr
	}
}

// waitStall is how long simulate waits while studyd makes no progress at all.
const waitStall = time.Minute

// waitDone waits until studyd has decided every waiting command and the views show
// them, with a progress bar of the commands decided on a terminal.
func (c *cli) waitDone(ctx context.Context, js client.JetStream, sent int) (*waitReport, error) {
	start := time.Now()
	bar := progress(c.stderr, int64(sent), "deciding", "cmd")
	b, err := client.WaitDone(ctx, js, eventlog.EventsStream, waitStall, func(b client.Backlog) {
		if b.Commands <= uint64(sent) {
			_ = bar.Set64(int64(uint64(sent) - b.Commands))
		}
		if b.Decided {
			bar.Describe(fmt.Sprintf("views at seq %d of %d", b.ViewsSeq, b.LastSeq))
		}
	})
	_ = bar.Finish()
	if err != nil {
		return nil, fmt.Errorf("wait for studyd: %w", err)
	}
	return &waitReport{Seq: b.ViewsSeq, Seconds: time.Since(start).Seconds()}, nil
}

// waitReport is what simulate's wait found: the views' sequence once everything was
// decided and shown, and how long that took.
type waitReport struct {
	Seq     uint64  `json:"views_seq"`
	Seconds float64 `json:"duration_seconds"`
}

// printSimulateTable prints the summary for people.
func printSimulateTable(w io.Writer, r simulateReport, dryRun bool) error {
	n := func(v int) string { return strconv.Itoa(v) }
	pairs := [][2]string{{"fleet", fmt.Sprintf("%d clients, %d days, seed %d, %s", r.Clients, r.Days, r.Seed, r.Format)}}
	if dryRun {
		pairs = append(pairs, [2]string{"generated", n(r.Sent)})
	} else {
		pairs = append(pairs, [2]string{"sent", n(r.Sent)}, [2]string{"acked", n(r.Acked)},
			[2]string{"duplicates", n(r.Duplicates)}, [2]string{"retries", n(r.Retries)})
	}
	types := make([]domain.CommandType, 0, len(r.PerType))
	for t := range r.PerType {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		pairs = append(pairs, [2]string{"  " + string(t), n(r.PerType[t])})
	}
	pairs = append(pairs,
		[2]string{"duration", fmtDuration(time.Duration(r.Seconds * float64(time.Second)))},
		[2]string{"rate", fmt.Sprintf("%.0f commands/s", r.Rate)})
	ex := r.Expected.Events
	pairs = append(pairs, [2]string{"expected", fmt.Sprintf("%d enrolled, %d enroll_failed, %d unenrolled",
		ex[domain.EventEnrolled], ex[domain.EventEnrollFailed], ex[domain.EventUnenrolled])})
	if r.Wait != nil {
		pairs = append(pairs, [2]string{"decided", fmt.Sprintf("every command, views at seq %d, after %s more",
			r.Wait.Seq, fmtDuration(time.Duration(r.Wait.Seconds*float64(time.Second))))})
	}
	return writeFields(w, pairs...)
}
