package views

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/projections"
)

// Label bounds of the study-owner metrics: a fleet can have any number of studies,
// branches and recipes, a Prometheus server cannot. Past a bound, the smallest series
// are summed into one labelled "other".
const (
	MaxMetricStudies  = 100 // studies with their own series, the most enrolled first
	MaxMetricBranches = 16  // branches per study with their own series
	MaxMetricSources  = 100 // uptake sources with their own series, the most reported first
	otherLabel        = "other"
	scrapeTimeout     = 5 * time.Second
)

var (
	lagSeqDesc = prometheus.NewDesc("studyd_projection_lag_seqs",
		"STUDYD_EVENTS sequences the views have yet to fold: the stream's last sequence minus the views' checkpoint.", nil, nil)
	lagSecondsDesc = prometheus.NewDesc("studyd_projection_lag_seconds",
		"Age of the oldest commit the views do not reflect yet (0 when they reflect the whole log).", nil, nil)
	enrollmentsDesc = prometheus.NewDesc("studyd_enrollments",
		"Enrollments by study (<object>/<key>), branch and state (enrolled: active now; unenrolled: ended), from the study views. Studies without branches (add-on studies) have branch \"none\".",
		[]string{"study", "branch", "state"}, nil)
	enrollFailuresDesc = prometheus.NewDesc("studyd_enroll_failures",
		"enrollFailed events by study, from the study views.", []string{"study"}, nil)
	uptakeDesc = prometheus.NewDesc("studyd_uptake_reports",
		"Uptake statuses reported, by source (normandy/runner, normandy/action/<name>, normandy/recipe/<id>) and status, from the uptake totals.",
		[]string{"source", "status"}, nil)
)

// stateCollector reads the views and the log's end on each scrape.
type stateCollector struct {
	js  jetstream.JetStream
	log *slog.Logger
}

// StateCollector reports, at each scrape, the views' lag behind the log (in sequences
// and seconds) and what they say to study owners: enrollments by study, branch and
// state, enroll failures by study, uptake reports by source and status, each with
// bounded label cardinality (MaxMetricStudies, MaxMetricBranches, MaxMetricSources).
// Every instance reports the same figures: they come from the stream and the KV views.
func StateCollector(js jetstream.JetStream, log *slog.Logger) prometheus.Collector {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &stateCollector{js: js, log: log}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{lagSeqDesc, lagSecondsDesc, enrollmentsDesc, enrollFailuresDesc, uptakeDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if err := c.collectLag(ctx, ch); err != nil {
		c.log.Debug("metrics: projection lag", "err", err)
	}
	if err := c.collectStudies(ctx, ch); err != nil {
		c.log.Debug("metrics: study views", "err", err)
	}
	if err := c.collectUptake(ctx, ch); err != nil {
		c.log.Debug("metrics: uptake totals", "err", err)
	}
}

func (c *stateCollector) collectLag(ctx context.Context, ch chan<- prometheus.Metric) error {
	s, err := c.js.Stream(ctx, eventlog.EventsStream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	seq, err := client.ViewsSeq(ctx, c.js)
	if err != nil {
		return err
	}
	var lag uint64
	var age float64
	if last := info.State.LastSeq; last > seq {
		lag = last - seq
		// The oldest commit not reflected is the first after the checkpoint (the log
		// never deletes, so it exists).
		if m, err := s.GetMsg(ctx, max(seq+1, info.State.FirstSeq)); err == nil {
			age = max(time.Since(m.Time).Seconds(), 0)
		}
	}
	ch <- prometheus.MustNewConstMetric(lagSeqDesc, prometheus.GaugeValue, float64(lag))
	ch <- prometheus.MustNewConstMetric(lagSecondsDesc, prometheus.GaugeValue, age)
	return nil
}

func (c *stateCollector) collectStudies(ctx context.Context, ch chan<- prometheus.Metric) error {
	// A scrape wants the live values, not a snapshot of one checkpoint: read the bucket.
	var views []projections.StudyView
	err := client.EachValue(ctx, c.js, client.StudiesBucket, ">", func(_ string, b []byte) error {
		var sv projections.StudyView
		if err := json.Unmarshal(b, &sv); err != nil {
			return err
		}
		views = append(views, sv)
		return nil
	})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	type series struct{ study, branch, state string }
	counts := map[series]float64{}
	failures := map[string]float64{}
	slices.SortStableFunc(views, func(a, b projections.StudyView) int { return cmp.Compare(b.Enrolled, a.Enrolled) })
	for i, v := range views {
		study := v.Study().String()
		if i >= MaxMetricStudies {
			study = otherLabel
		}
		failures[study] += float64(sumCounts(v.EnrollFailed))
		if len(v.Branches) == 0 {
			counts[series{study, "none", "enrolled"}] += float64(max(v.Active, 0))
			counts[series{study, "none", "unenrolled"}] += float64(int64(v.Enrolled) - max(v.Active, 0))
			continue
		}
		names := make([]string, 0, len(v.Branches))
		for name := range v.Branches {
			names = append(names, name)
		}
		slices.SortFunc(names, func(a, b string) int {
			return cmp.Or(cmp.Compare(v.Branches[b].Enrolled, v.Branches[a].Enrolled), cmp.Compare(a, b))
		})
		for j, name := range names {
			b := v.Branches[name]
			branch := name
			if j >= MaxMetricBranches || study == otherLabel {
				branch = otherLabel
			}
			counts[series{study, branch, "enrolled"}] += float64(max(b.Active, 0))
			counts[series{study, branch, "unenrolled"}] += float64(int64(b.Enrolled) - max(b.Active, 0))
		}
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(enrollmentsDesc, prometheus.GaugeValue, n, s.study, s.branch, s.state)
	}
	for study, n := range failures {
		ch <- prometheus.MustNewConstMetric(enrollFailuresDesc, prometheus.CounterValue, n, study)
	}
	return nil
}

func (c *stateCollector) collectUptake(ctx context.Context, ch chan<- prometheus.Metric) error {
	var rows []client.UptakeValue
	for _, pattern := range []string{"runner.>", "action.>", "recipe.>"} {
		err := client.EachValue(ctx, c.js, client.UptakeBucket, pattern, func(_ string, b []byte) error {
			var v client.UptakeValue
			if err := json.Unmarshal(b, &v); err != nil {
				return err
			}
			rows = append(rows, v)
			return nil
		})
		if err != nil {
			return err
		}
	}
	bySource := map[string]uint64{}
	for _, r := range rows {
		bySource[r.Source] += r.Count
	}
	sources := make([]string, 0, len(bySource))
	for s := range bySource {
		sources = append(sources, s)
	}
	slices.SortFunc(sources, func(a, b string) int { return cmp.Or(cmp.Compare(bySource[b], bySource[a]), cmp.Compare(a, b)) })
	keep := map[string]bool{}
	for i, s := range sources {
		keep[s] = i < MaxMetricSources
	}
	type series struct{ source, status string }
	counts := map[series]float64{}
	for _, r := range rows {
		src := r.Source
		if !keep[src] {
			src = otherLabel
		}
		counts[series{src, string(r.Status)}] += float64(r.Count)
	}
	for s, n := range counts {
		ch <- prometheus.MustNewConstMetric(uptakeDesc, prometheus.CounterValue, n, s.source, s.status)
	}
	return nil
}

func sumCounts(m map[string]uint64) uint64 {
	var n uint64
	for _, c := range m {
		n += c
	}
	return n
}
