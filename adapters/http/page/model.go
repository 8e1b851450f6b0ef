package page

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
	"github.com/studyd/studyd/srm"
)

// maxBuckets bounds the buckets a chart shows: the latest three days of hours, or
// the latest two months of days.
var maxBuckets = map[projections.Period]int{projections.PeriodHour: 72, projections.PeriodDay: 62}

// recordedRatios is the study view's target split as its enrollments recorded it
// from the recipe's branches. Views of a log older than those records have none:
// equal weights.
func recordedRatios(v *projections.StudyView) map[string]float64 {
	if len(v.Ratios) == 0 {
		return nil
	}
	w := make(map[string]float64, len(v.Ratios))
	for _, r := range v.Ratios {
		if r.Ratio > 0 {
			w[r.Slug] = float64(r.Ratio)
		}
	}
	return w
}

// srmLight is a study's sample-ratio-mismatch light.
type srmLight struct {
	Class string // ok, alarm or none
	Text  string // what the light says, for everyone
	P     float64
}

func lightOf(h srm.StudyHealth) srmLight {
	switch {
	case h.SRM:
		return srmLight{Class: "alarm", Text: "mismatch, p = " + formatP(h.PValue), P: h.PValue}
	case h.DF == 0:
		return srmLight{Class: "none", Text: "nothing to test", P: h.PValue}
	}
	return srmLight{Class: "ok", Text: "ok, p = " + formatP(h.PValue), P: h.PValue}
}

// studyRow is one line of the studies list, and the head of a study's page.
type studyRow struct {
	Object     domain.Object
	Key        string
	Slug       string
	Href       string
	First      time.Time
	Last       time.Time
	Enrolled   uint64
	Active     int64
	Unenrolled uint64
	Failed     uint64
	SRM        srmLight
	Ratios     string // the target split used, e.g. "control 1 : treatment 1"; "equal" when none was recorded
	Recipe     string // the source whose uptake error rate is shown: its recipe's, or its action's while the recipe is not known
	RateOf     string // "recipe <id>" or "action <name>"
	RateAlert  bool   // the error rate is above the uptake-health threshold
	RecipeID   domain.RecipeID
	HasRecipe  bool
	Action     string
	ErrorRate  string // its recipe's uptake error rate, "–" when not known
	Reports    uint64 // its recipe's uptake reports
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// studyHref is the page of study ref.
func studyHref(ref domain.StudyRef) string {
	return "/study/" + url.PathEscape(string(ref.Object)) + "/" + url.PathEscape(ref.Key)
}

// rowOf builds a study's row from its view, its day buckets and the uptake totals.
func rowOf(v *projections.StudyView, days []projections.StudyBucket, totals map[projections.UptakeKey]uint64,
	ratios func(*projections.StudyView) map[string]float64) studyRow {
	slug := v.Slug
	if slug == "" {
		slug = v.Key
	}
	w := ratios(v)
	row := studyRow{Object: v.Object, Key: v.Key, Slug: slug, Href: studyHref(v.Study()), Enrolled: v.Enrolled,
		Active: v.Active, Unenrolled: sum(v.Unenrolled), Failed: sum(v.EnrollFailed), SRM: lightOf(srm.Health(v, w)),
		Ratios: ratioText(w), ErrorRate: "–"}
	var candidates []domain.RecipeID
	var events uint64
	var actionSeq uint64
	for i := range days {
		b := &days[i]
		if b.First.Before(row.First) || row.First.IsZero() {
			row.First = b.First
		}
		if b.Last.After(row.Last) {
			row.Last = b.Last
		}
		if b.Action != "" && b.Seq >= actionSeq {
			row.Action, actionSeq = b.Action, b.Seq
		}
		if b.RecipeEvents > 0 {
			if events == 0 {
				candidates = slices.Clone(b.Recipes)
			} else {
				candidates = slices.DeleteFunc(candidates, func(id domain.RecipeID) bool { return !slices.Contains(b.Recipes, id) })
			}
			events += b.RecipeEvents
		}
	}
	if v.Object == domain.AddonStudy {
		if id, err := strconv.ParseUint(v.Key, 10, 64); err == nil {
			candidates, events = []domain.RecipeID{domain.RecipeID(id)}, 1
		}
	}
	if events > 0 && len(candidates) == 1 {
		row.RecipeID, row.HasRecipe = candidates[0], true
		row.Recipe = domain.RecipeSource(candidates[0])
		row.RateOf = "recipe " + candidates[0].String()
	} else if row.Action != "" {
		// The log names a preference study's recipe nowhere; it is known only once
		// the runs that enrolled clients had a single recipe in common. Until then the
		// rate shown is its action's, and says so.
		row.Recipe = domain.ActionSource(row.Action)
		row.RateOf = "action " + row.Action
	}
	if row.Recipe != "" {
		var hc projections.HealthCounts
		for k, n := range totals {
			if k.Source == row.Recipe && k.Period == projections.PeriodTotal {
				hc.Add(k.Status, n)
			}
		}
		row.Reports = hc.Good + hc.Neutral + hc.Bad
		if hc.Good+hc.Bad > 0 {
			row.ErrorRate = formatPercent(hc.BadRatio())
			row.RateAlert = hc.BadRatio() > uptakeAlert
		}
	}
	return row
}

func ratioText(w map[string]float64) string {
	if len(w) == 0 {
		return "equal weights"
	}
	s := ""
	for i, b := range sortedKeys(w) {
		if i > 0 {
			s += ", "
		}
		s += b + " " + strconv.FormatFloat(w[b], 'f', -1, 64)
	}
	return s
}

type studiesPage struct {
	Rows []studyRow
}

func studiesModel(views []projections.StudyView, days []projections.StudyBucket, totals map[projections.UptakeKey]uint64,
	ratios func(*projections.StudyView) map[string]float64) studiesPage {
	byStudy := map[domain.StudyRef][]projections.StudyBucket{}
	for _, b := range days {
		byStudy[b.Study()] = append(byStudy[b.Study()], b)
	}
	p := studiesPage{Rows: make([]studyRow, 0, len(views))}
	for i := range views {
		p.Rows = append(p.Rows, rowOf(&views[i], byStudy[views[i].Study()], totals, ratios))
	}
	return p
}

// axis returns the continuous run of bucket starts covering starts (gaps included),
// at most the latest maxBuckets of them.
func axis(period projections.Period, starts []int64) []time.Time {
	if len(starts) == 0 {
		return nil
	}
	step := int64(3600)
	if period == projections.PeriodDay {
		step = 86400
	}
	lo, hi := slices.Min(starts), slices.Max(starts)
	if n := int64(maxBuckets[period]); (hi-lo)/step+1 > n {
		lo = hi - (n-1)*step
	}
	var out []time.Time
	for s := lo; s <= hi; s += step {
		out = append(out, time.Unix(s, 0).UTC())
	}
	return out
}

// index maps each axis bucket start to its position.
func index(x []time.Time) map[int64]int {
	m := make(map[int64]int, len(x))
	for i, t := range x {
		m[t.Unix()] = i
	}
	return m
}

// branchRow is one branch of a study against its target.
type branchRow struct {
	Branch   string
	Weight   string
	Target   string // target share
	Enrolled uint64
	Share    string
	Expected string
	Active   int64
}

type studyPage struct {
	Row      studyRow
	Period   string
	Health   srm.StudyHealth
	Branches []branchRow
	Charts   []*chart
	Failures []reasonRow
	Reasons  []reasonRow
}

type reasonRow struct {
	Reason string
	Count  uint64
}

func reasonRows(m map[string]uint64) []reasonRow {
	out := make([]reasonRow, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, reasonRow{Reason: k, Count: m[k]})
	}
	return out
}

func studyModel(v *projections.StudyView, period projections.Period, buckets, days []projections.StudyBucket,
	uptake, totals map[projections.UptakeKey]uint64, ratios func(*projections.StudyView) map[string]float64) studyPage {
	w := ratios(v)
	h := srm.Health(v, w)
	p := studyPage{Row: rowOf(v, days, totals, ratios), Period: period.String(), Health: h,
		Failures: reasonRows(v.EnrollFailed), Reasons: reasonRows(v.Unenrolled)}
	var totalW float64
	for _, b := range h.Branches {
		totalW += b.Weight
	}
	for _, b := range h.Branches {
		r := branchRow{Branch: b.Branch, Weight: strconv.FormatFloat(b.Weight, 'f', -1, 64), Enrolled: b.Enrolled,
			Share: formatPercent(b.Share), Expected: strconv.FormatFloat(b.Expected, 'f', 1, 64), Active: b.Active, Target: "–"}
		if totalW > 0 {
			r.Target = formatPercent(b.Weight / totalW)
		}
		p.Branches = append(p.Branches, r)
	}

	slices.SortFunc(buckets, func(a, b projections.StudyBucket) int { return a.Start.Compare(b.Start) })
	starts := make([]int64, len(buckets))
	for i, b := range buckets {
		starts[i] = b.Start.Unix()
	}
	x := axis(period, starts)
	at := index(x)
	unit := period.String()
	branches := map[string]bool{}
	reasons, failures := map[string]bool{}, map[string]bool{}
	for _, b := range buckets {
		for name, a := range b.Branches {
			if a.Enrolled > 0 {
				branches[name] = true
			}
		}
		for r := range b.Unenrolled {
			reasons[r] = true
		}
		for r := range b.EnrollFailed {
			failures[r] = true
		}
	}
	for _, b := range h.Branches {
		branches[b.Branch] = true
	}
	names := sortedKeys(branches)

	enroll := &chart{ID: "enrollments", Title: "Enrollments per branch per " + unit, Period: period, X: x, YLabel: "enrollments",
		Desc: "Enroll events per branch in each UTC " + unit + " of " + p.Row.Slug + "."}
	share := &chart{ID: "split", Title: "Share of enrollments per branch against the target split", Period: period, X: x,
		YLabel: "share", MaxY: 1, Percent: true,
		Desc: "Each branch's share of all enrollments so far, at the end of each UTC " + unit + "; dashed lines are the target shares."}
	srmChart := &chart{ID: "srm", Title: "Sample-ratio mismatch over time (p-value, log scale)", Period: period, X: x,
		YLabel: "p-value", LogY: true, Threshold: srm.Threshold, ThresholdLabel: "p = 0.001",
		Desc: "The chi-squared test of the enrollments so far against the target split, at the end of each UTC " + unit + "; below the line is a mismatch."}
	cum := map[string]uint64{}
	perBranch := make(map[string][]float64, len(names))
	shares := make(map[string][]float64, len(names))
	pvals := make([]float64, len(x))
	byStart := map[int64]*projections.StudyBucket{}
	for i := range buckets {
		byStart[buckets[i].Start.Unix()] = &buckets[i]
	}
	// The share and SRM lines start from what happened before the axis begins.
	if len(x) > 0 {
		for _, b := range buckets {
			if b.Start.Before(x[0]) {
				for name, a := range b.Branches {
					cum[name] += a.Enrolled
				}
			}
		}
	}
	for _, name := range names {
		perBranch[name] = make([]float64, len(x))
		shares[name] = make([]float64, len(x))
	}
	for i, t := range x {
		b := byStart[t.Unix()]
		if b != nil {
			for name, a := range b.Branches {
				cum[name] += a.Enrolled
				if _, ok := perBranch[name]; ok {
					perBranch[name][i] = float64(a.Enrolled)
				}
			}
		}
		var total uint64
		sv := projections.StudyView{Object: v.Object, Key: v.Key, Branches: map[string]projections.BranchCount{}}
		for name, n := range cum {
			total += n
			sv.Branches[name] = projections.BranchCount{Enrolled: n}
		}
		sv.Enrolled = total
		for _, name := range names {
			if total > 0 {
				shares[name][i] = float64(cum[name]) / float64(total)
			}
		}
		pvals[i] = srm.Health(&sv, w).PValue
	}
	var totalWeight float64
	for _, b := range h.Branches {
		totalWeight += b.Weight
	}
	for _, name := range names {
		enroll.Series = append(enroll.Series, series{Name: name, Values: perBranch[name]})
		share.Series = append(share.Series, series{Name: name, Values: shares[name]})
	}
	if len(names) == 0 { // an add-on study: no branches, only its total
		total := make([]float64, len(x))
		for i, t := range x {
			if b := byStart[t.Unix()]; b != nil {
				total[i] = float64(b.Enrolled)
			}
		}
		enroll.Title = "Enrollments per " + unit
		enroll.Series = []series{{Name: "enrollments", Values: total}}
	}
	for _, b := range h.Branches {
		if totalWeight <= 0 || b.Weight == 0 {
			continue
		}
		target := make([]float64, len(x))
		for i := range target {
			target[i] = b.Weight / totalWeight
		}
		share.Series = append(share.Series, series{Name: b.Branch + " target", Values: target, Dashed: true,
			Like: slices.Index(names, b.Branch) + 1})
	}
	srmChart.Series = []series{{Name: "p-value", Values: pvals}}

	unenroll := countChart("unenrollments", "Unenrollments by reason per "+unit, "Unenroll events by reason in each UTC "+unit+".",
		"unenrollments", period, x, at, buckets, sortedKeys(reasons), func(b *projections.StudyBucket) map[string]uint64 { return b.Unenrolled })
	failed := countChart("failures", "Enroll failures by reason per "+unit, "Enroll-failed events by reason in each UTC "+unit+".",
		"failures", period, x, at, buckets, sortedKeys(failures), func(b *projections.StudyBucket) map[string]uint64 { return b.EnrollFailed })
	p.Charts = []*chart{enroll, share, srmChart, unenroll, failed}
	if p.Row.HasRecipe {
		p.Charts = append(p.Charts, uptakeChart("recipe-uptake", "Uptake of its recipe "+p.Row.Recipe+" per "+unit, period, uptake,
			func(src string) bool { return src == p.Row.Recipe }))
	}
	if p.Row.Action != "" {
		src := domain.ActionSource(p.Row.Action)
		p.Charts = append(p.Charts, uptakeChart("action-uptake", "Uptake of its action "+p.Row.Action+" per "+unit, period, uptake,
			func(s string) bool { return s == src }))
	}
	return p
}

// countChart charts one map of each bucket (reason → count), one line per key.
func countChart(id, title, desc, ylabel string, period projections.Period, x []time.Time, at map[int64]int,
	buckets []projections.StudyBucket, keys []string, of func(*projections.StudyBucket) map[string]uint64) *chart {
	c := &chart{ID: id, Title: title, Desc: desc, Period: period, X: x, YLabel: ylabel}
	for _, k := range keys {
		vals := make([]float64, len(x))
		for i := range buckets {
			if j, ok := at[buckets[i].Start.Unix()]; ok {
				vals[j] += float64(of(&buckets[i])[k])
			}
		}
		c.Series = append(c.Series, series{Name: k, Values: vals})
	}
	return c
}

// uptakeChart charts the statuses of the sources match selects, summed, per bucket.
func uptakeChart(id, title string, period projections.Period, uptake map[projections.UptakeKey]uint64, match func(string) bool) *chart {
	var starts []int64
	statuses := map[domain.UptakeStatus]bool{}
	for k := range uptake {
		if k.Period == period && match(k.Source) {
			starts = append(starts, k.Start)
			statuses[k.Status] = true
		}
	}
	x := axis(period, starts)
	at := index(x)
	c := &chart{ID: id, Title: title, Period: period, X: x, YLabel: "reports",
		Desc: "Uptake reports by status in each UTC " + period.String() + "."}
	for _, s := range sortedKeys(statuses) {
		vals := make([]float64, len(x))
		for k, n := range uptake {
			if k.Period == period && k.Status == s && match(k.Source) {
				if j, ok := at[k.Start]; ok {
					vals[j] += float64(n)
				}
			}
		}
		c.Series = append(c.Series, series{Name: string(s) + " (" + s.Label() + ")", Values: vals})
	}
	return c
}

// sourceRow is one uptake source's totals.
type sourceRow struct {
	Source    string
	Good      uint64
	Neutral   uint64
	Bad       uint64
	ErrorRate string
	Alert     bool // error rate above the uptake-health threshold (2%)
}

// uptakeAlert is the error rate above which uptake-health flags a source.
const uptakeAlert = 0.02

type fleetPage struct {
	Period  string
	Status  FleetStatus
	Lag     uint64
	Backlog uint64
	Charts  []*chart
	Sources []sourceRow
}

func fleetModel(period projections.Period, uptake, totals map[projections.UptakeKey]uint64, st FleetStatus) fleetPage {
	p := fleetPage{Period: period.String(), Status: st, Lag: st.Lag(), Backlog: st.Backlog()}
	unit := period.String()
	kindOf := func(src string) string { k, _ := domain.SourceKind(src); return k }
	for _, kind := range []struct{ id, name, kind string }{
		{"runner-uptake", "Runner", "runner"}, {"action-uptake", "Actions", "action"}, {"recipe-uptake", "Recipes", "recipe"},
	} {
		c := uptakeChart(kind.id, kind.name+" uptake by status per "+unit, period, uptake,
			func(src string) bool { return kindOf(src) == kind.kind })
		p.Charts = append(p.Charts, c)
	}
	p.Charts = append(p.Charts, errorRateChart(period, uptake, kindOf))
	health := map[string]*projections.HealthCounts{}
	for k, n := range totals {
		if k.Period != projections.PeriodTotal {
			continue
		}
		h := health[k.Source]
		if h == nil {
			h = &projections.HealthCounts{}
			health[k.Source] = h
		}
		h.Add(k.Status, n)
	}
	for _, src := range slices.Sorted(maps.Keys(health)) {
		h := health[src]
		r := sourceRow{Source: src, Good: h.Good, Neutral: h.Neutral, Bad: h.Bad, ErrorRate: "–"}
		if h.Good+h.Bad > 0 {
			r.ErrorRate = formatPercent(h.BadRatio())
			r.Alert = h.BadRatio() > uptakeAlert
		}
		p.Sources = append(p.Sources, r)
	}
	return p
}

// errorRateChart charts bad / (good + bad) per bucket for the runner, all actions and
// all recipes, against the uptake-health threshold.
func errorRateChart(period projections.Period, uptake map[projections.UptakeKey]uint64, kindOf func(string) string) *chart {
	var starts []int64
	for k := range uptake {
		if k.Period == period {
			starts = append(starts, k.Start)
		}
	}
	x := axis(period, starts)
	at := index(x)
	c := &chart{ID: "error-rate", Title: "Uptake error rate per " + period.String(), Period: period, X: x,
		YLabel: "error rate", Percent: true, Threshold: uptakeAlert, ThresholdLabel: "2% alert",
		Desc: "Bad reports over good and bad ones in each UTC " + period.String() + ", for the runner, all actions and all recipes; above the line is an uptake-health alert."}
	for _, kind := range []struct{ kind, name string }{{"runner", "runner"}, {"action", "actions"}, {"recipe", "recipes"}} {
		counts := make([]projections.HealthCounts, len(x))
		for k, n := range uptake {
			if k.Period != period || kindOf(k.Source) != kind.kind {
				continue
			}
			if j, ok := at[k.Start]; ok {
				counts[j].Add(k.Status, n)
			}
		}
		vals := make([]float64, len(x))
		for j := range counts {
			vals[j] = counts[j].BadRatio()
		}
		c.Series = append(c.Series, series{Name: kind.name, Values: vals})
	}
	return c
}
