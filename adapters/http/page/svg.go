package page

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/studyd/studyd/projections"
)

// Chart geometry, in SVG user units; the SVG scales to its container's width.
const (
	chartW, chartH                  = 760, 240
	padLeft, padRight, padTop, padB = 64, 16, 12, 40
)

// palette holds line colours with at least 4.5:1 contrast on white, so that lines and
// their legend read for low-vision users; each series also gets its own dash pattern
// and marker, so that none depends on colour alone.
var palette = []string{"#0b5cad", "#b33c00", "#00704a", "#9c2a6e", "#6b5300", "#4a4a4a", "#5b3aa8", "#8a1c1c"}

var dashes = []string{"", "6 3", "2 3", "8 3 2 3", "1 2", "10 4", "4 4", "3 2 1 2"}

// series is one line of a chart.
type series struct {
	Name   string
	Values []float64 // one per bucket of the chart
	Dashed bool      // a reference line (a target), drawn thin and dashed
	// Like draws the line in the colour of series Like-1 (0: its own), so that a
	// target line matches its branch.
	Like int
}

// chart is a line chart over time buckets, rendered to SVG on the server.
type chart struct {
	ID     string // unique on the page; names the title and description elements
	Title  string
	Desc   string // what the chart shows, read by screen readers
	Period projections.Period
	X      []time.Time // bucket starts
	Series []series
	YLabel string
	// LogY draws a p-value axis: log10 from 1 down to MinY (default 1e-12).
	LogY bool
	MinY float64
	// MaxY fixes the top of a linear axis (e.g. 1 for shares); 0 = from the data.
	MaxY float64
	// Threshold draws a labelled horizontal line (e.g. the SRM p-value threshold).
	Threshold      float64
	ThresholdLabel string
	// Percent formats the y axis as percentages.
	Percent bool
}

// style returns the i-th series colour and dash pattern.
func style(i int) (string, string) { return palette[i%len(palette)], dashes[i%len(dashes)] }

// seriesStyle is style for series i of c, honouring Like and Dashed.
func (c *chart) seriesStyle(i int) (colour, dash, width string) {
	s := c.Series[i]
	colour, dash = style(i)
	width = "2.5"
	if s.Like > 0 {
		colour, _ = style(s.Like - 1)
	}
	if s.Dashed {
		dash, width = "5 4", "1.5"
	}
	return colour, dash, width
}

func (c *chart) y(v, maxY float64) float64 {
	plotH := float64(chartH - padTop - padB)
	if c.LogY {
		minY := c.minY()
		v = max(v, minY)
		if v > 1 {
			v = 1
		}
		return padTop + plotH*(math.Log10(v)/math.Log10(minY))
	}
	if maxY <= 0 {
		return chartH - padB
	}
	return padTop + plotH*(1-v/maxY)
}

func (c *chart) minY() float64 {
	if c.MinY > 0 {
		return c.MinY
	}
	return 1e-12
}

func (c *chart) x(i int) float64 {
	plotW := float64(chartW - padLeft - padRight)
	if len(c.X) <= 1 {
		return padLeft + plotW/2
	}
	return padLeft + plotW*float64(i)/float64(len(c.X)-1)
}

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// bucketLabel formats a bucket start for an axis or a table.
func bucketLabel(p projections.Period, t time.Time) string {
	if p == projections.PeriodHour {
		return t.UTC().Format("Jan 2 15:00")
	}
	return t.UTC().Format("Jan 2")
}

func (c *chart) yTick(v float64) string {
	switch {
	case c.LogY:
		return fmt.Sprintf("1e%d", int(math.Round(math.Log10(v))))
	case c.Percent:
		return strconv.FormatFloat(v*100, 'f', -1, 64) + "%"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// SVG renders the chart: an accessible image (role img, title and description) whose
// data is also in the table the templates put beside it.
func (c *chart) SVG() template.HTML {
	esc := template.HTMLEscapeString
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="%s-t %s-d" preserveAspectRatio="xMidYMid meet">`,
		chartW, chartH, esc(c.ID), esc(c.ID))
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, esc(c.ID), esc(c.Title), esc(c.ID), esc(c.Desc))
	maxY := c.MaxY
	// Axes and grid.
	var ticks []float64
	switch {
	case c.LogY:
		step := max(1, int(math.Ceil(-math.Log10(c.minY())/4)))
		for e := 0; math.Pow(10, float64(-e)) >= c.minY(); e += step {
			ticks = append(ticks, math.Pow(10, float64(-e)))
		}
	case maxY > 0:
		ticks = []float64{0, maxY / 4, maxY / 2, 3 * maxY / 4, maxY}
	case c.Percent:
		// Rates: from 0 to a round share above the data and the threshold.
		maxY = c.Threshold * 2
		for _, s := range c.Series {
			for _, v := range s.Values {
				maxY = max(maxY, v)
			}
		}
		maxY = min(niceMax(maxY), 1)
		ticks = []float64{0, maxY / 4, maxY / 2, 3 * maxY / 4, maxY}
	default:
		// Counts: whole-number steps of 1, 2 or 5 times a power of ten, at most five.
		for _, s := range c.Series {
			for _, v := range s.Values {
				maxY = max(maxY, v)
			}
		}
		step := max(1, niceMax(maxY/5))
		maxY = max(step, math.Ceil(maxY/step)*step)
		for v := 0.0; v <= maxY+step/2; v += step {
			ticks = append(ticks, v)
		}
	}
	for _, v := range ticks {
		y := c.y(v, maxY)
		fmt.Fprintf(&b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padLeft, chartW-padRight, y, y)
		fmt.Fprintf(&b, `<text class="tick" x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, padLeft-6, y, esc(c.yTick(v)))
	}
	fmt.Fprintf(&b, `<text class="axis-label" transform="translate(14 %d) rotate(-90)" text-anchor="middle">%s</text>`,
		padTop+(chartH-padTop-padB)/2, esc(c.YLabel))
	if n := len(c.X); n > 0 {
		every := max(1, (n+5)/6)
		for i := 0; i < n; i += every {
			fmt.Fprintf(&b, `<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`, c.x(i), chartH-padB+18, esc(bucketLabel(c.Period, c.X[i])))
		}
	} else {
		fmt.Fprintf(&b, `<text class="empty" x="%d" y="%d" text-anchor="middle">no data yet</text>`, chartW/2, chartH/2)
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>`, padLeft, chartW-padRight, chartH-padB, chartH-padB)
	if c.Threshold > 0 {
		y := c.y(c.Threshold, maxY)
		fmt.Fprintf(&b, `<line class="threshold" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padLeft, chartW-padRight, y, y)
		fmt.Fprintf(&b, `<text class="threshold-label" x="%d" y="%.1f" text-anchor="end">%s</text>`, chartW-padRight-4, y-4, esc(c.ThresholdLabel))
	}
	for i, s := range c.Series {
		colour, dash, width := c.seriesStyle(i)
		var pts strings.Builder
		for j, v := range s.Values {
			if j >= len(c.X) {
				break
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", c.x(j), c.y(v, maxY))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%s" stroke-dasharray="%s" points="%s"><title>%s</title></polyline>`,
			colour, width, dash, strings.TrimSpace(pts.String()), esc(s.Name))
		if !s.Dashed && len(c.X) <= 48 {
			for j, v := range s.Values {
				if j >= len(c.X) {
					break
				}
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s, %s: %s</title></circle>`,
					c.x(j), c.y(v, maxY), colour, esc(s.Name), esc(bucketLabel(c.Period, c.X[j])), esc(c.value(v)))
			}
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // every text above is escaped
}

// value formats one data point as the table shows it.
func (c *chart) value(v float64) string {
	switch {
	case c.LogY:
		return formatP(v)
	case c.Percent:
		return formatPercent(v)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// Legend is the chart's series with their colour and dash, for the HTML legend.
func (c *chart) Legend() []legendItem {
	out := make([]legendItem, len(c.Series))
	for i, s := range c.Series {
		colour, dash, _ := c.seriesStyle(i)
		out[i] = legendItem{Name: s.Name, Colour: colour, Dash: dash}
	}
	return out
}

type legendItem struct{ Name, Colour, Dash string }

// Rows is the chart's data as table rows: one per bucket, one cell per series.
func (c *chart) Rows() []tableRow {
	rows := make([]tableRow, len(c.X))
	for i, x := range c.X {
		r := tableRow{Label: bucketLabel(c.Period, x)}
		for _, s := range c.Series {
			v := ""
			if i < len(s.Values) {
				v = c.value(s.Values[i])
			}
			r.Cells = append(r.Cells, v)
		}
		rows[i] = r
	}
	return rows
}

type tableRow struct {
	Label string
	Cells []string
}

func formatP(p float64) string {
	switch {
	case math.IsNaN(p):
		return "–"
	case p >= 0.01:
		return strconv.FormatFloat(p, 'f', 2, 64)
	case p == 0:
		return "0"
	}
	return strconv.FormatFloat(p, 'e', 1, 64)
}

func formatPercent(v float64) string {
	return strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
}
