package integration

import (
	"context"
	"testing"
	"time"

	"github.com/studyd/studyd/simulate"
)

// TestSingleNode runs a realistic simulated fleet through studyd against one containerised
// nats-server: every accepted command is committed exactly once, the log records
// exactly what the simulation decided, and the views equal a replay of the log.
func TestSingleNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	n := startSingle(ctx, t, nodeSpec{name: "single"})
	svc := startStudyd(ctx, t, "single", n.URL())
	js := newJS(t, connect(t, n.URL()))

	w := newWorkload(t, simulate.Config{Clients: 200, Days: 14, Seed: 1})
	rep := publishAll(ctx, js, w.Msgs, pubOptions{Workers: 8, PerMsg: time.Minute})
	if len(rep.Failed) != 0 {
		t.Fatalf("got %d commands never accepted, want 0", len(rep.Failed))
	}
	waitDrained(ctx, t, js, 3*time.Minute)
	a := readAudit(ctx, t, js)
	checkExactlyOnce(t, rep.Acked, a)
	checkTally(t, w, a)
	checkProjections(ctx, t, js, a)

	applied := svc.Metric(t, "studyd_commands_total", `outcome="applied"`)
	if int(applied) != len(a.Commits) {
		t.Errorf("got studyd_commands_total{outcome=applied} %v, want %d (the commits in the log)", applied, len(a.Commits))
	}
	t.Logf("FIGURE single_commands=%d", len(rep.Acked))
	t.Logf("FIGURE single_publish_per_s=%.0f", float64(len(rep.Acked))/rep.Elapsed.Seconds())
	if len(a.CommitTimes) > 1 {
		span := a.CommitTimes[len(a.CommitTimes)-1].Sub(a.CommitTimes[0])
		t.Logf("FIGURE single_applied_per_s=%.0f", float64(len(a.CommitTimes))/span.Seconds())
	}
}
