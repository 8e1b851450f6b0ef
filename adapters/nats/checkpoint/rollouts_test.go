package checkpoint_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/studyd/studyd/adapters/nats/checkpoint"
	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/adapters/nats/views"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
)

// TestVerifyComparesRolloutViews: verify's view check covers studyd_rollouts: the
// projector's keys compare equal, and a rollout view edited in KV (its seq stamp kept)
// or deleted from it is a view fault naming the rollout.
func TestVerifyComparesRolloutViews(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	store := eventlog.NewStore(js)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var last uint64
	for i, cl := range []domain.ClientID{"alice", "bob", "carol"} {
		slug := []string{"rollout-a", "rollout-b", "rollout-a"}[i]
		en := domain.Enrollment{Object: domain.PreferenceRollout, Key: slug, Slug: slug, State: domain.StateActive, EnrolledAt: at}
		rec, err := store.Append(ctx, eventstore.Commit{CommitID: "c-" + string(cl), CommandID: "c-" + string(cl),
			CommandType: domain.CommandRecipeRun, Client: cl, At: at,
			State: domain.ClientState{Client: cl, LastRunAt: at, Enrollments: []domain.Enrollment{en}},
			Events: []domain.Event{{Type: domain.EventEnrolled, Object: domain.PreferenceRollout, Key: slug, Slug: slug,
				From: domain.StateNone, To: domain.StateActive}}}, 0)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		last = rec.Position
	}
	pctx, pcancel := context.WithCancel(ctx)
	p := views.NewProjector(js, views.ProjectorConfig{FlushInterval: 10 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- p.Run(pctx) }()
	for p.Seq() < last && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	pcancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	verify := func() audit.Report {
		t.Helper()
		r, err := checkpoint.VerifyLog(ctx, js, checkpoint.VerifyConfig{Views: true})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := verify(); r.Err() != nil || r.Views == nil || !r.Views.Equal() || r.Views.Keys == 0 {
		t.Fatalf("verify with views: %v, views %+v; want equal and no fault", r.Err(), r.Views)
	}

	kv, err := js.KeyValue(ctx, client.RolloutsBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(ctx, client.RolloutKey("rollout-a"))
	if err != nil {
		t.Fatalf("rollout-a: %v", err)
	}
	var v projections.RolloutView
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		t.Fatal(err)
	}
	if v.Enrolled != 2 || v.States[domain.StateActive] != 2 || v.Seq < last-1 {
		t.Fatalf("rollout-a view %+v, want 2 enrolled, 2 active, stamped", v)
	}
	good := e.Value()
	v.Enrolled += 3
	b, _ := json.Marshal(v)
	if _, err := kv.Put(ctx, client.RolloutKey("rollout-a"), b); err != nil {
		t.Fatal(err)
	}
	r := verify()
	f, ok := r.Err().(*audit.Fault)
	if !ok || f.Kind != audit.FaultView || !strings.Contains(f.Detail, "rollout rollout-a") {
		t.Errorf("after editing rollout-a: got %v, want a view mismatch naming it", f)
	}

	if _, err := kv.Put(ctx, client.RolloutKey("rollout-a"), good); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, client.RolloutKey("rollout-b")); err != nil {
		t.Fatal(err)
	}
	r = verify()
	f, ok = r.Err().(*audit.Fault)
	if !ok || f.Kind != audit.FaultView || !strings.Contains(f.Detail, "rollout rollout-b is missing from KV") {
		t.Errorf("after deleting rollout-b: got %v, want a view fault saying it is missing", f)
	}
}
