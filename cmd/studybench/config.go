package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// config is what a run measures, and how big.
type config struct {
	Quick bool `json:"quick"`
	// Size is the commands of the end-to-end run and the messages of the raw baselines.
	Size int `json:"size"`
	// Duration is how long the latency run publishes.
	Duration time.Duration `json:"duration_ns"`
	// Partitions are the command partition counts the end-to-end run is measured with;
	// the first is studyd's (and the latency run's).
	Partitions     int   `json:"partitions"`
	MorePartitions []int `json:"more_partitions,omitempty"`
	// Clients is the simulated fleet of the end-to-end and latency runs.
	Clients int `json:"clients"`
	// Scale are the log sizes, in events, of the scale run.
	Scale []uint64 `json:"scale"`
	// ScaleCommands are the commands of the end-to-end run at each scale point.
	ScaleCommands int `json:"scale_commands"`
	// Enrollments is the live enrollments of the memory run.
	Enrollments uint64 `json:"enrollments"`
	// Patience bounds each wait for studyd to catch up (a stalled partition fails the
	// scenario rather than hanging the run).
	Patience time.Duration `json:"patience_ns"`
	// Only, if set, runs just these scenarios.
	Only       []string `json:"only,omitempty"`
	JSON       bool     `json:"-"`
	CPUProfile string   `json:"-"`
}

// scenarios are the parts of a run, in order.
var scenarios = []string{"baseline", "e2e", "sync", "instances", "latency", "replay", "memory", "scale", "idempotency"}

func defaultConfig() config {
	return config{Size: 50_000, Duration: 10 * time.Second, Partitions: 16, MorePartitions: []int{64},
		Clients: 20_000, Scale: []uint64{10_000, 100_000, 1_000_000, 10_000_000}, ScaleCommands: 40_000, Enrollments: 250_000, Patience: 5 * time.Minute}
}

// quickConfig is a smoke test's: every scenario, tiny.
func quickConfig() config {
	return config{Quick: true, Size: 2_000, Duration: time.Second, Partitions: 4, MorePartitions: nil,
		Clients: 500, Scale: []uint64{2_000, 10_000}, ScaleCommands: 500, Enrollments: 10_000, Patience: 4 * time.Minute}
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("studybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := defaultConfig()
	quick := fs.Bool("quick", false, "tiny sizes: a smoke test of every scenario (seconds)")
	size := fs.Int("size", 0, fmt.Sprintf("commands of the end-to-end run and messages of the baselines (default %d)", def.Size))
	duration := fs.Duration("duration", 0, fmt.Sprintf("how long the latency run publishes (default %s)", def.Duration))
	parts := fs.String("partitions", "", "command partitions of the end-to-end runs, comma-separated; the first is also the latency run's (default 16,64)")
	clients := fs.Int("clients", 0, fmt.Sprintf("simulated clients of the end-to-end and latency runs (default %d)", def.Clients))
	scale := fs.String("scale", "", "log sizes in events for the scale run, e.g. 10k,100k,1M,10M (default 10k,100k,1M,10M)")
	enroll := fs.String("enrollments", "", "live enrollments of the memory run; its figure is per 1M (default 250k)")
	only := fs.String("only", "", "run only these scenarios, comma-separated: "+strings.Join(scenarios, ","))
	jsonOut := fs.Bool("json", false, "print the report as JSON instead of a table")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	cfg := def
	if *quick {
		cfg = quickConfig()
	}
	cfg.JSON, cfg.CPUProfile = *jsonOut, *cpuprofile
	if *size != 0 {
		cfg.Size = *size
	}
	if *duration != 0 {
		cfg.Duration = *duration
	}
	if *clients != 0 {
		cfg.Clients = *clients
	}
	var errs []error
	if *parts != "" {
		ps, err := parseCounts(*parts)
		if err != nil {
			errs = append(errs, fmt.Errorf("--partitions: %w", err))
		} else {
			cfg.Partitions, cfg.MorePartitions = int(ps[0]), nil
			for _, p := range ps[1:] {
				cfg.MorePartitions = append(cfg.MorePartitions, int(p))
			}
		}
	}
	if *scale != "" {
		s, err := parseCounts(*scale)
		if err != nil {
			errs = append(errs, fmt.Errorf("--scale: %w", err))
		}
		cfg.Scale = s
	}
	if *enroll != "" {
		e, err := parseCounts(*enroll)
		if err != nil || len(e) != 1 {
			errs = append(errs, fmt.Errorf("--enrollments %q: want one count such as 1M", *enroll))
		} else {
			cfg.Enrollments = e[0]
		}
	}
	if *only != "" {
		for s := range strings.SplitSeq(*only, ",") {
			if !contains(scenarios, s) {
				errs = append(errs, fmt.Errorf("--only: unknown scenario %q (want some of %s)", s, strings.Join(scenarios, ",")))
			}
			cfg.Only = append(cfg.Only, s)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return config{}, err
	}
	return cfg, cfg.Validate()
}

// Validate rejects sizes no run can measure with.
func (c config) Validate() error {
	var errs []error
	bad := func(cond bool, format string, args ...any) {
		if cond {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	bad(c.Size < 100, "--size %d: want at least 100", c.Size)
	bad(c.Duration < 100*time.Millisecond, "--duration %s: want at least 100ms", c.Duration)
	bad(c.Partitions < 1 || c.Partitions > 1024, "--partitions %d: want 1..1024", c.Partitions)
	for _, p := range c.MorePartitions {
		bad(p < 1 || p > 1024, "--partitions %d: want 1..1024", p)
	}
	bad(c.Clients < 10, "--clients %d: want at least 10", c.Clients)
	bad(len(c.Scale) == 0, "--scale: want at least one size")
	bad(c.Enrollments < 1000, "--enrollments %d: want at least 1k", c.Enrollments)
	for i := 1; i < len(c.Scale); i++ {
		bad(c.Scale[i] <= c.Scale[i-1], "--scale: sizes must grow (%d after %d)", c.Scale[i], c.Scale[i-1])
	}
	return errors.Join(errs...)
}

// runs reports whether scenario s is part of the run.
func (c config) runs(s string) bool { return len(c.Only) == 0 || contains(c.Only, s) }

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// parseCounts reads "10k,100k,1M" (k = 10³, M = 10⁶).
func parseCounts(v string) ([]uint64, error) {
	var out []uint64
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		mult := uint64(1)
		switch {
		case strings.HasSuffix(f, "k"):
			mult, f = 1000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "M"):
			mult, f = 1_000_000, strings.TrimSuffix(f, "M")
		}
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q is not a count such as 10k or 1M", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}
