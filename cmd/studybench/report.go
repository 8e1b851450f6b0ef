package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// goal is a target a figure should meet: its ratio to the baseline at least Min, or
// its value at most Max.
type goal struct {
	MinRatio float64 `json:"min_ratio,omitempty"`
	MaxValue float64 `json:"max_value,omitempty"`
}

func (g goal) String() string {
	switch {
	case g.MinRatio > 0:
		return fmt.Sprintf("ratio ≥ %.2f", g.MinRatio)
	case g.MaxValue > 0:
		return fmt.Sprintf("≤ %g", g.MaxValue)
	}
	return ""
}

// row is one figure of the report, next to its baseline from the same run.
type row struct {
	Scenario string  `json:"scenario"`
	Figure   string  `json:"figure"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline string  `json:"baseline,omitempty"` // what the value is compared with
	BaseVal  float64 `json:"baseline_value,omitempty"`
	BaseUnit string  `json:"baseline_unit,omitempty"` // "" means Unit
	Ratio    float64 `json:"ratio,omitempty"`
	Goal     *goal   `json:"goal,omitempty"`
	Met      *bool   `json:"met,omitempty"`
	Note     string  `json:"note,omitempty"`
	// Difference: the value is one noisy figure less another, so on a busy machine
	// it may come out at or below zero.
	Difference bool `json:"difference,omitempty"`
}

// report is everything one run measured.
type report struct {
	Machine  machine        `json:"machine"`
	Config   config         `json:"config"`
	Rows     []row          `json:"rows"`
	Details  map[string]any `json:"details"`
	Duration time.Duration  `json:"duration_ns"`
	Errors   []string       `json:"errors,omitempty"`
	started  time.Time
}

// add appends a figure; base 0 means it has no baseline.
func (r *report) add(x row) {
	if x.BaseVal > 0 {
		x.Ratio = x.Value / x.BaseVal
	}
	if x.Goal != nil {
		met := true
		if x.Goal.MinRatio > 0 {
			met = x.Ratio >= x.Goal.MinRatio
		}
		if x.Goal.MaxValue > 0 {
			met = x.Value <= x.Goal.MaxValue
		}
		x.Met = &met
	}
	r.Rows = append(r.Rows, x)
}

// print writes the machine, then the table.
func (r *report) print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "studybench — %s\n", m.Start.Format(time.RFC3339))
	fmt.Fprintf(w, "machine: %s, %d cores (GOMAXPROCS %d), %s RAM, %s %s/%s, nats-server %s (embedded)\n",
		m.CPU, m.Cores, m.GOMAXPROCS, bytesText(m.MemTotal), m.Go, m.OS, m.Arch, m.NATSServer)
	fmt.Fprintf(w, "load average: %s at start, %s at end\n\n", m.LoadStart, m.LoadEnd)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\tfigure\tvalue\tbaseline (same run)\tratio\tgoal\t")
	for _, x := range r.Rows {
		base, ratio, g := "", "", ""
		if x.Baseline != "" {
			base = x.Baseline
			if x.BaseVal > 0 {
				unit := x.Unit
				if x.BaseUnit != "" {
					unit = x.BaseUnit
				}
				base = fmt.Sprintf("%s %s", x.Baseline, valueText(x.BaseVal, unit))
			}
		}
		if x.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", x.Ratio)
		}
		if x.Goal != nil {
			g = x.Goal.String()
			if x.Met != nil && *x.Met {
				g += " ✓"
			} else {
				g += " ✗"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", x.Scenario, x.Figure, valueText(x.Value, x.Unit), base, ratio, g)
	}
	_ = tw.Flush()
	for _, x := range r.Rows {
		if x.Note != "" {
			fmt.Fprintf(w, "  %s / %s: %s\n", x.Scenario, x.Figure, x.Note)
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "ERROR: %s\n", e)
	}
	fmt.Fprintf(w, "\ntotal time %s\n", r.Duration.Round(time.Second))
}

func (r *report) printJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// valueText formats a figure with its unit.
func valueText(v float64, unit string) string {
	switch {
	case strings.HasSuffix(unit, "/s"), strings.HasSuffix(unit, "/cpu-s"):
		return grouped(v) + " " + unit
	case unit == "ms":
		return fmt.Sprintf("%.2f ms", v)
	case unit == "MB":
		return fmt.Sprintf("%.0f MB", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

// grouped prints an integer part with thin thousands separators: 93 096.
func grouped(v float64) string {
	s := fmt.Sprintf("%.0f", math.Round(v))
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func bytesText(b uint64) string { return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30)) }

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mb is b in megabytes (10⁶).
func mb(b uint64) float64 { return float64(b) / 1e6 }

// median returns the median of xs.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// count prints a size the way the flags take it: 10k, 1M.
func count(n uint64) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}
