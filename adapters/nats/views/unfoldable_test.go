package views

import (
	"context"
	"testing"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// Issue 12, case 3: a commit of year 20983 (older builds accepted it from msgpack)
// made the projector fail to encode its uptake buckets and restart for ever: views
// frozen, rebuild unanswered, the client's query unanswered. Such a commit now folds
// into the totals only, an undecodable message is passed over, both are counted and
// logged, the views move on past them and equal a fold of the log, and the client
// query answers.
func TestProjectorMovesPastRecordsItCannotFold(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g := newLogGen(12)
	publishCommits(t, js, g, 5)
	far := time.Date(20983, 1, 1, 0, 0, 0, 0, time.UTC)
	c := eventstore.Commit{CommitID: "far", CommandID: "far", CommandType: domain.CommandRecipeRun, Client: "far-client", At: far,
		Events: []domain.Event{{Type: domain.EventUptakeReported, Source: domain.SourceRunner, Status: domain.RunnerSuccess},
			{Type: domain.EventEnrolled, Object: domain.PreferenceStudy, Key: "pref-0", Slug: "pref-0", Branch: "control",
				From: domain.StateNone, To: domain.StateEnrolled, ExperimentType: domain.ExperimentTypeExp}},
		State: domain.ClientState{Client: "far-client", LastRunAt: far}}
	b, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, eventlog.EventSubject("far-client"), b); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, eventlog.EventSubject("garbage"), []byte("\x81\xa6schema\x02not a commit")); err != nil {
		t.Fatal(err)
	}
	last := publishCommits(t, js, g, 5)

	p := NewProjector(js, testOptions())
	stop := runProjector(p)
	waitSeq(t, p, last)
	// studyctl rebuild was answered by nobody while the projector restarted for ever.
	rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
	defer rcancel()
	for !p.Leading() && rctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	res, err := client.RequestRebuild(rctx, js.Conn(), nil)
	if err != nil || res.Seq != last {
		t.Fatalf("rebuild: %+v, %v; want it folded up to seq %d", res, err, last)
	}
	if err := stop(); err != nil {
		t.Fatalf("projector Run: %v", err)
	}
	if n := p.unfoldable.Load(); n < 2 {
		t.Errorf("unfoldable records counted: %d, want at least 2 (once per pass over them)", n)
	}
	if p.faults.Load() != 0 {
		t.Errorf("projector faults: %d, want 0", p.faults.Load())
	}
	assertViewsMatchFold(t, js)
	// The query service's answer for far-client: adapters/nats/query's
	// TestQueryClientOfAnUnrenderableCommit.
}
