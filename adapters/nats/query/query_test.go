package query

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/adapters/nats/views"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/internal/buildinfo"
)

func TestQueryMinSeqReadsYourWrites(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatalf("EnsureEventsStream: %v", err)
	}
	store := eventstore.NewMemoryStore()
	runQueries(t, nc, js, store, QueryConfig{MinSeqWait: 3 * time.Second})

	// Before any projector runs, a min_seq beyond the views times out with 504.
	last := publishCommits(t, js, 30)
	_, err := client.QueryStudy(ctx, nc, client.StudyRequest{Object: domain.PreferenceStudy, Key: "pref-0", MinSeq: last})
	var qe *client.QueryError
	if !errors.As(err, &qe) || qe.Code != "504" {
		t.Fatalf("QueryStudy before projecting: error %v, want a 504 QueryError", err)
	}

	// A slow flush: the query must wait for it rather than answer stale.
	stopP := runProjector(js, 100*time.Millisecond)
	defer stopP()
	resp, err := client.QueryStudy(ctx, nc, client.StudyRequest{Object: domain.PreferenceStudy, Key: "pref-0", MinSeq: last})
	if err != nil {
		t.Fatalf("QueryStudy(min_seq %d): %v", last, err)
	}
	if resp.Seq < last {
		t.Errorf("study seq = %d, want >= %d", resp.Seq, last)
	}
	want, _, err := views.FoldLog(ctx, js, last)
	if err != nil {
		t.Fatalf("FoldLog: %v", err)
	}
	_, studies, err := views.FoldLog(ctx, js, last)
	if err != nil {
		t.Fatalf("FoldLog: %v", err)
	}
	wantView := studies.Views[domain.StudyRef{Object: domain.PreferenceStudy, Key: "pref-0"}]
	if wantView == nil || resp.View.Enrolled != wantView.Enrolled || resp.View.Active != wantView.Active {
		t.Errorf("study view enrolled=%d active=%d, want the fold's %+v", resp.View.Enrolled, resp.View.Active, wantView)
	}

	up, err := client.QueryUptake(ctx, nc, client.UptakeRequest{Source: "normandy/runner", MinSeq: last})
	if err != nil {
		t.Fatalf("QueryUptake: %v", err)
	}
	var sum, wantSum uint64
	for _, r := range up.Rows {
		if r.Source != domain.SourceRunner || r.Period != "total" {
			t.Errorf("row %+v, want only runner totals", r)
		}
		sum += r.Count
	}
	for k, n := range want.Counts {
		if k.Source == domain.SourceRunner && k.Period == 0 {
			wantSum += n
		}
	}
	if sum != wantSum || wantSum == 0 {
		t.Errorf("runner total = %d, want %d (> 0)", sum, wantSum)
	}
	h := up.Health[domain.SourceRunner]
	if h.Good+h.Bad+h.Neutral != wantSum {
		t.Errorf("runner health %+v sums to %d, want %d", h, h.Good+h.Bad+h.Neutral, wantSum)
	}

	tests := []struct {
		name string
		call func() error
		code string
	}{
		{name: "unknown study", code: "404", call: func() error {
			_, err := client.QueryStudy(ctx, nc, client.StudyRequest{Object: domain.PreferenceStudy, Key: "never"})
			return err
		}},
		{name: "bad object", code: "400", call: func() error {
			_, err := client.QueryStudy(ctx, nc, client.StudyRequest{Object: "rollout", Key: "x"})
			return err
		}},
		{name: "bad period", code: "400", call: func() error {
			_, err := client.QueryUptake(ctx, nc, client.UptakeRequest{Period: "week"})
			return err
		}},
		{name: "unknown client", code: "404", call: func() error {
			_, err := client.QueryClient(ctx, nc, client.ClientRequest{Client: "nobody"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var qe *client.QueryError
			if !errors.As(err, &qe) || qe.Code != tt.code {
				t.Errorf("error %v, want a QueryError with code %s", err, tt.code)
			}
		})
	}
}

func TestQueryClientReadsLatestCommit(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	store := eventstore.NewMemoryStore()
	runQueries(t, nc, js, store, QueryConfig{})
	en := domain.Enrollment{Object: domain.PreferenceStudy, Key: "s1", Slug: "s1", State: domain.StateEnrolled, Branch: "control"}
	rec, err := store.Append(ctx, eventstore.Commit{CommitID: "c1", CommandID: "c1", CommandType: domain.CommandRecipeRun,
		Client: "alice", At: time.Date(2018, 7, 14, 0, 0, 0, 0, time.UTC),
		State: domain.ClientState{Client: "alice", Enrollments: []domain.Enrollment{en}}}, 0)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	resp, err := client.QueryClient(ctx, nc, client.ClientRequest{Client: "alice", MinSeq: rec.Position})
	if err != nil {
		t.Fatalf("QueryClient: %v", err)
	}
	if resp.Seq != rec.Position || len(resp.View.Enrollments) != 1 || resp.View.Enrollments[0].Branch != "control" {
		t.Errorf("client view %+v at seq %d, want one enrollment on control at seq %d", resp.View, resp.Seq, rec.Position)
	}
}

// TestQueryClientOfAnUnrenderableCommit: a client whose latest commit carries a time
// no view can render (year 20983) is answered 422, naming why, not 500 or nothing.
func TestQueryClientOfAnUnrenderableCommit(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	far := time.Date(20983, 1, 1, 0, 0, 0, 0, time.UTC)
	c := eventstore.Commit{CommitID: "far", CommandID: "far", CommandType: domain.CommandRecipeRun, Client: "far-client", At: far,
		Events: []domain.Event{{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: domain.RunnerSuccess}},
		State:  domain.ClientState{Client: "far-client", LastRunAt: far}}
	b, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, eventlog.EventSubject("far-client"), b); err != nil {
		t.Fatal(err)
	}
	runQueries(t, nc, js, eventlog.NewStore(js), QueryConfig{})
	_, err = client.QueryClient(ctx, nc, client.ClientRequest{Client: "far-client"})
	if err == nil || !strings.Contains(err.Error(), "422") {
		t.Fatalf("query of the year-20983 client: %v, want a 422 answer naming why", err)
	}
}

func TestQueryRejectsAMisspeltField(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runQueries(t, nc, js, eventstore.NewMemoryStore(), QueryConfig{})
	reply, err := nc.RequestWithContext(ctx, "studyd.query.client", []byte(`{"client":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	if code, desc := reply.Header.Get("Nats-Service-Error-Code"), reply.Header.Get("Nats-Service-Error"); code != "400" || !strings.Contains(desc, `unknown field "client"`) {
		t.Errorf("error answer = %s %q, want 400 naming the unknown field", code, desc)
	}
}

// TestServicesNameTheirQueueGroupAndVersion: each micro service answers in a queue
// group named after it, with the build's version (not a fixed 1.0.0, not "q").
func TestServicesNameTheirQueueGroupAndVersion(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	runQueries(t, nc, js, eventlog.NewStore(js), QueryConfig{})
	msg, err := nc.Request("$SRV.INFO."+client.QueryService, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	if info.Version != buildinfo.SemVer() {
		t.Errorf("version %q, want the build's %q", info.Version, buildinfo.SemVer())
	}
	if len(info.Endpoints) != 3 {
		t.Fatalf("endpoints %+v, want study, uptake and client", info.Endpoints)
	}
	for _, e := range info.Endpoints {
		if e.QueueGroup != client.QueryService {
			t.Errorf("endpoint %s in queue group %q, want %q", e.Name, e.QueueGroup, client.QueryService)
		}
	}
}

// runQueries runs a query service until the test ends, and returns once it answers.
func runQueries(t *testing.T, nc *nats.Conn, js jetstream.JetStream, store eventstore.Store, cfg QueryConfig) {
	t.Helper()
	qs := NewQueryService(nc, js, store, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- qs.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("query service: %v", err)
		}
	})
	select {
	case <-qs.Ready():
	case err := <-done:
		t.Fatalf("query service: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("query service not ready after 10s")
	}
}
