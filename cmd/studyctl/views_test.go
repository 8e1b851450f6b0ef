package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/adapters/nats/views"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
)

// startViews runs a real server with the events stream, a projector and the query
// service, and appends one client's enrollment and run through the JetStream store.
// It returns the server URL and the last appended sequence.
func startViews(t *testing.T) (string, uint64) {
	t.Helper()
	s, nc, js := natstest.StartWith(t, natstest.Config{Listen: true})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatalf("EnsureEventsStream: %v", err)
	}
	store := eventlog.NewStore(js)
	at := time.Date(2018, 7, 14, 12, 0, 0, 0, time.UTC)
	en := domain.Enrollment{Object: domain.PreferenceStudy, Key: "pref-x", Slug: "pref-x", State: domain.StateEnrolled,
		Branch: "treatment", EnrolledAt: at}
	ro := domain.Enrollment{Object: domain.PreferenceRollout, Key: "rollout-x", Slug: "rollout-x", State: domain.StateActive, EnrolledAt: at}
	rec, err := store.Append(ctx, eventstore.Commit{CommitID: "k1", CommandID: "k1", CommandType: domain.CommandRecipeRun,
		Client: "alice", At: at, State: domain.ClientState{Client: "alice", LastRunAt: at, Enrollments: []domain.Enrollment{ro, en}},
		Events: []domain.Event{
			{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: domain.RunnerSuccess},
			{Type: domain.EventUptakeReported, Source: domain.ActionSource("preference-experiment"), Status: domain.ActionSuccess},
			{Type: domain.EventEnrolled, Object: domain.PreferenceStudy, Key: "pref-x", Slug: "pref-x", Branch: "treatment",
				From: domain.StateNone, To: domain.StateEnrolled, ExperimentType: domain.ExperimentTypeExp},
			{Type: domain.EventEnrolled, Object: domain.PreferenceRollout, Key: "rollout-x", Slug: "rollout-x",
				From: domain.StateNone, To: domain.StateActive},
		}}, 0)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	p := views.NewProjector(js, views.ProjectorConfig{FlushInterval: 10 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	qs := views.NewQueryService(nc, js, store, views.QueryConfig{})
	qdone := make(chan error, 1)
	go func() { qdone <- qs.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-qdone })
	select {
	case <-qs.Ready():
	case err := <-qdone:
		t.Fatalf("query service: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("query service not ready after 10s")
	}
	return s.ClientURL(), rec.Position
}

func TestViewCommands(t *testing.T) {
	t.Parallel()
	url, seq := startViews(t)
	minSeq := "--min-seq=" + itoa(seq)
	tests := []struct {
		name string
		args []string
		want []string // substrings of stdout
	}{
		{name: "study table", args: []string{"study", "preference_study", "pref-x", "--server", url, minSeq},
			want: []string{"preference_study/pref-x", "treatment", "exp"}},
		{name: "study slash form", args: []string{"study", "preference_study/pref-x", "--server", url, minSeq},
			want: []string{"enrolled 1, active 1"}},
		{name: "uptake table", args: []string{"uptake", "--source", "normandy/", "--server", url, minSeq},
			want: []string{"normandy/runner", "RUNNER_SUCCESS", "good", "normandy/action/preference-experiment"}},
		{name: "uptake by day", args: []string{"uptake", "--period", "day", "--server", url, minSeq},
			want: []string{"2018-07-14"}},
		{name: "uptake one hour", args: []string{"uptake", "--period", "hour", "--bucket", "2018071412", "--server", url, minSeq},
			want: []string{"2018-07-14T12Z", "RUNNER_SUCCESS"}},
		{name: "rollouts table", args: []string{"rollouts", "--server", url, minSeq},
			want: []string{"rollout-x", "ACTIVE", "ROLLED BACK"}},
		{name: "one rollout", args: []string{"rollouts", "rollout-x", "--server", url, minSeq},
			want: []string{"rollout-x", "graduations", "rollbacks"}},
		{name: "client table", args: []string{"client", "alice", "--server", url},
			want: []string{"alice", "pref-x", "enrolled", "treatment", "2018-07-14T12:00:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, stderr, err := runCLI(t, "", tt.args...)
			if err != nil {
				t.Fatalf("studyctl %v: %v (stderr %s)", tt.args, err, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("studyctl %v output lacks %q:\n%s", tt.args, w, out)
				}
			}
		})
	}

	out, _, err := runCLI(t, "", "study", "preference_study", "pref-x", "--server", url, "--json", minSeq)
	if err != nil {
		t.Fatalf("study --json: %v", err)
	}
	var resp client.StudyResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		t.Fatalf("study --json output is not a StudyResponse: %v\n%s", err, out)
	}
	if resp.Seq < seq || resp.View.Enrolled != 1 || resp.View.Branches["treatment"].Active != 1 {
		t.Errorf("study --json = %+v, want seq >= %d, one active enrollment on treatment", resp, seq)
	}

	out, _, err = runCLI(t, "", "rollouts", "--server", url, "--json", minSeq)
	if err != nil {
		t.Fatalf("rollouts --json: %v", err)
	}
	var rs struct {
		Seq      uint64                    `json:"seq"`
		Rollouts []projections.RolloutView `json:"rollouts"`
	}
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("rollouts --json output: %v\n%s", err, out)
	}
	if rs.Seq < seq || len(rs.Rollouts) != 1 || rs.Rollouts[0].Slug != "rollout-x" || rs.Rollouts[0].Enrolled != 1 ||
		rs.Rollouts[0].States[domain.StateActive] != 1 || rs.Rollouts[0].Seq < seq {
		t.Errorf("rollouts --json = %+v, want seq >= %d, rollout-x enrolled once, one client active", rs, seq)
	}
	if _, _, err := runCLI(t, "", "rollouts", "never", "--server", url); err == nil {
		t.Errorf("rollouts of an unknown rollout: error nil, want an error")
	}

	if _, _, err := runCLI(t, "", "study", "preference_study", "missing", "--server", url); err == nil {
		t.Errorf("study of an unknown study: error nil, want a not-found error")
	}
}

func TestWatchAndRebuildCommands(t *testing.T) {
	t.Parallel()
	url, seq := startViews(t)
	if _, _, err := runCLI(t, "", "study", "preference_study/pref-x", "--server", url, "--min-seq="+itoa(seq)); err != nil {
		t.Fatalf("views not ready: %v", err)
	}
	out, stderr, err := runCLI(t, "", "rebuild", "--server", url, "--json")
	if err != nil {
		t.Fatalf("rebuild: %v (stderr %s)", err, stderr)
	}
	var res client.RebuildResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("rebuild --json output: %v\n%s", err, out)
	}
	if res.Seq != seq || res.Commits != 1 || res.StudyKeys != 1 || res.RolloutKeys != 1 {
		t.Errorf("rebuild result %+v, want seq %d, 1 commit, 1 study key, 1 rollout key", res, seq)
	}
	if !strings.Contains(stderr, "keys written") {
		t.Errorf("rebuild progress on stderr lacks 'keys written': %q", stderr)
	}

	// watch prints the current values, then runs until its context ends.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var stdout, errOut strings.Builder
	if err := run(ctx, []string{"watch", "studies", "preference_study.>", "--server", url, "--json"}, noEnv,
		strings.NewReader(""), &stdout, &errOut); err != nil {
		t.Fatalf("watch: %v (stderr %s)", err, errOut.String())
	}
	var u client.WatchUpdate
	if err := json.Unmarshal([]byte(strings.SplitN(stdout.String(), "\n", 2)[0]), &u); err != nil {
		t.Fatalf("watch --json line: %v\n%s", err, stdout.String())
	}
	if u.Key != "preference_study.pref-x" || u.Op != "put" {
		t.Errorf("watch update %+v, want a put of preference_study.pref-x", u)
	}

	// The rollouts bucket is watchable too (as `nats kv watch studyd_rollouts` is).
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	stdout.Reset()
	if err := run(ctx, []string{"watch", "rollouts", "--server", url}, noEnv, strings.NewReader(""), &stdout, &errOut); err != nil {
		t.Fatalf("watch rollouts: %v (stderr %s)", err, errOut.String())
	}
	if line := strings.SplitN(stdout.String(), "\n", 2)[0]; !strings.Contains(line, "enrolled=1") || !strings.Contains(line, "active=1") ||
		!strings.HasSuffix(line, "rollout-x") {
		t.Errorf("watch rollouts line %q, want rollout-x enrolled=1 active=1", line)
	}
}

func itoa(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestWatchLinesAlign: the columns after the key line up in every watch line.
func TestWatchLinesAlign(t *testing.T) {
	t.Parallel()
	url, seq := startViews(t)
	if _, _, err := runCLI(t, "", "uptake", "-s", url, "--min-seq", itoa(seq)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var stdout, stderr strings.Builder
	if err := run(ctx, []string{"watch", "uptake", "-s", url}, noEnv, strings.NewReader(""), &stdout, &stderr); err != nil {
		t.Fatalf("watch: %v (stderr %s)", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) < 3 {
		t.Fatalf("watch printed %d lines, want the uptake keys:\n%s", len(lines), stdout.String())
	}
	col := strings.Index(lines[0], " rev ")
	for _, l := range lines {
		if strings.Index(l, " rev ") != col || strings.TrimRight(l, " ") != l {
			t.Errorf("watch lines not aligned (or with trailing spaces):\n%s", stdout.String())
			break
		}
	}
}
