package integration

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/simulate"
)

// TestCrashRecovery kills studyd with SIGKILL at random points of a load of more than
// 50 000 commands and restarts it each time: no acknowledged command is lost, none is
// committed twice, and the views still equal a replay of the log.
func TestCrashRecovery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	n := startSingle(ctx, t, nodeSpec{name: "crash"})
	svc := startStudyd(ctx, t, "crash", n.URL())
	js := newJS(t, connect(t, n.URL()))

	w := newWorkload(t, simulate.Config{Clients: 2100, Days: 7, Seed: 2})
	if len(w.Msgs) < 50_000 {
		t.Fatalf("got a workload of %d commands, want at least 50000", len(w.Msgs))
	}
	done := make(chan pubReport, 1)
	go func() { done <- publishAll(ctx, js, w.Msgs, pubOptions{Workers: 8, PerMsg: 2 * time.Minute}) }()

	seed := uint64(time.Now().UnixNano())
	t.Logf("kill schedule seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	const kills = 5
	var killedAt []time.Time
	var restart time.Duration
	for i := range kills {
		time.Sleep(time.Duration(1500+rng.IntN(3000)) * time.Millisecond)
		queued := queuedCommands(ctx, t, js)
		killedAt = append(killedAt, time.Now())
		svc.Kill(t)
		t.Logf("kill %d: studyd killed with %d commands queued", i+1, queued)
		start := time.Now()
		svc.Restart(ctx, t)
		restart = max(restart, time.Since(start))
	}
	rep := <-done
	if len(rep.Failed) != 0 {
		t.Fatalf("got %d commands never accepted, want 0", len(rep.Failed))
	}
	waitDrained(ctx, t, js, 5*time.Minute)

	a := readAudit(ctx, t, js)
	lost, dup := checkExactlyOnce(t, rep.Acked, a)
	checkTally(t, w, a)
	checkProjections(ctx, t, js, a)

	var stall time.Duration
	for _, k := range killedAt {
		stall = max(stall, commitStall(a, k, k.Add(20*time.Second)))
	}
	t.Logf("FIGURE crash_commands=%d", len(rep.Acked))
	t.Logf("FIGURE crash_kills=%d", kills)
	t.Logf("FIGURE crash_lost=%d", lost)
	t.Logf("FIGURE crash_duplicated=%d", dup)
	t.Logf("FIGURE crash_max_restart_ready_ms=%d", restart.Milliseconds())
	t.Logf("FIGURE crash_max_commit_gap_after_kill_ms=%d", stall.Milliseconds())
}

// queuedCommands is how many commands STUDYD_CMDS holds now (-1 if it cannot say).
func queuedCommands(ctx context.Context, t *testing.T, js jetstream.JetStream) int64 {
	t.Helper()
	s, err := js.Stream(ctx, "STUDYD_CMDS")
	if err != nil {
		return -1
	}
	info, err := s.Info(ctx)
	if err != nil {
		return -1
	}
	return int64(info.State.Msgs)
}
