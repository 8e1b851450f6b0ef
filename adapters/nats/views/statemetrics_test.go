package views

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
)

// scrape returns the collector's metrics in the text format.
func scrape(t *testing.T, js jetstream.JetStream) string {
	t.Helper()
	b, err := testutil.CollectAndFormat(StateCollector(js, nil), expfmt.TypeTextPlain, "studyd_projection_lag_seqs",
		"studyd_projection_lag_seconds", "studyd_enrollments", "studyd_enroll_failures", "studyd_uptake_reports")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStateCollectorFollowsTheViews: lag in sequences and seconds, enrollments by
// study, branch and state, uptake by source and status.
func TestStateCollectorFollowsTheViews(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	store := eventlog.NewStore(js)
	at := time.Date(2018, 7, 14, 12, 0, 0, 0, time.UTC)
	for i, c := range []domain.ClientID{"alice", "bob"} {
		en := domain.Enrollment{Object: domain.PreferenceStudy, Key: "pref-x", Slug: "pref-x", State: domain.StateEnrolled,
			Branch: "treatment", EnrolledAt: at}
		if _, err := store.Append(ctx, eventstore.Commit{CommitID: fmt.Sprint("k", i), CommandID: fmt.Sprint("k", i),
			CommandType: domain.CommandRecipeRun, Client: c, At: at,
			State: domain.ClientState{Client: c, LastRunAt: at, Enrollments: []domain.Enrollment{en}},
			Events: []domain.Event{
				{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: domain.RunnerSuccess},
				{Type: domain.EventEnrolled, Object: domain.PreferenceStudy, Key: "pref-x", Slug: "pref-x", Branch: "treatment",
					From: domain.StateNone, To: domain.StateEnrolled, ExperimentType: domain.ExperimentTypeExp},
			}}, 0); err != nil {
			t.Fatal(err)
		}
	}
	// No projector yet: the views lag two sequences behind.
	if got := scrape(t, js); !strings.Contains(got, "studyd_projection_lag_seqs 2\n") {
		t.Errorf("before the projector ran, metrics lack a lag of 2:\n%s", got)
	}
	p := NewProjector(js, ProjectorConfig{FlushInterval: 10 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if _, err := client.WaitViews(wctx, js, 2); err != nil {
		t.Fatal(err)
	}
	got := scrape(t, js)
	for _, want := range []string{
		"studyd_projection_lag_seqs 0\n",
		"studyd_projection_lag_seconds 0\n",
		`studyd_enrollments{branch="treatment",state="enrolled",study="preference_study/pref-x"} 2` + "\n",
		`studyd_enrollments{branch="treatment",state="unenrolled",study="preference_study/pref-x"} 0` + "\n",
		`studyd_uptake_reports{source="normandy/runner",status="RUNNER_SUCCESS"} 2` + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %q:\n%s", want, got)
		}
	}
}

// TestStateCollectorBoundsLabels: however many studies, branches and uptake sources
// the views hold, the series stay within the bounds, the rest summed as "other".
func TestStateCollectorBoundsLabels(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := context.Background()
	studies, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: client.StudiesBucket})
	if err != nil {
		t.Fatal(err)
	}
	uptake, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: client.UptakeBucket})
	if err != nil {
		t.Fatal(err)
	}
	proj, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: client.ProjectionBucket})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := proj.Put(ctx, client.CheckpointKey, []byte(`{"seq":1}`)); err != nil {
		t.Fatal(err)
	}
	const nStudies, nBranches, nRecipes = MaxMetricStudies + 20, MaxMetricBranches + 5, MaxMetricSources + 30
	var total uint64
	for i := range nStudies {
		v := projections.StudyView{Object: domain.PreferenceStudy, Key: fmt.Sprintf("s%03d", i), Branches: map[string]projections.BranchCount{}}
		for b := range nBranches {
			v.Branches[fmt.Sprintf("b%02d", b)] = projections.BranchCount{Enrolled: uint64(i + 1), Active: int64(i + 1)}
			v.Enrolled += uint64(i + 1)
		}
		v.Active = int64(v.Enrolled)
		total += v.Enrolled
		b, _ := json.Marshal(v)
		if _, err := studies.Put(ctx, client.StudyKey(v.Study()), b); err != nil {
			t.Fatal(err)
		}
	}
	for i := range nRecipes {
		k := projections.UptakeKey{Source: domain.RecipeSource(domain.RecipeID(i)), Status: domain.RecipeSuccess, Period: projections.PeriodTotal}
		b, _ := json.Marshal(client.NewUptakeValue(k, 1, 1))
		if _, err := uptake.Put(ctx, client.UptakeKey(k), b); err != nil {
			t.Fatal(err)
		}
	}
	c := StateCollector(js, nil)
	if n, bound := testutil.CollectAndCount(c, "studyd_enrollments"), 2*(MaxMetricStudies*(MaxMetricBranches+1)+1); n > bound {
		t.Errorf("%d studyd_enrollments series, want at most %d", n, bound)
	}
	if n := testutil.CollectAndCount(c, "studyd_uptake_reports"); n != MaxMetricSources+1 {
		t.Errorf("%d studyd_uptake_reports series, want %d (the bound and one other)", n, MaxMetricSources+1)
	}
	got := scrape(t, js)
	var sum float64
	for _, line := range strings.Split(got, "\n") {
		if strings.HasPrefix(line, "studyd_enrollments{") && strings.Contains(line, `state="enrolled"`) {
			var n float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &n)
			sum += n
		}
	}
	if sum != float64(total) {
		t.Errorf("enrolled series sum to %v, want every enrollment (%d) counted once", sum, total)
	}
	for _, want := range []string{`study="other"`, `branch="other"`, `source="other"`} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
