package integration

import (
	"context"
	"testing"
	"time"

	"github.com/studyd/studyd/simulate"
)

// faultWindow is when one fault was injected and healed.
type faultWindow struct {
	name     string
	from, to time.Time
}

// TestClusterFaults runs studyd with R3 streams on a 3-node cluster while a node is
// stopped, the event stream's leader is paused, and a node is cut off the network:
// nothing acknowledged is lost, and the service keeps going. How long commits stalled
// in each fault is written as a figure.
func TestClusterFaults(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := startCluster(ctx, t)
	f := newFaults(ctx, t, c)
	svc := startStudyd(ctx, t, "r3", c.URLs(), "--replicas", "3")
	js := newJS(t, connect(t, c.URLs()))
	events, err := js.Stream(ctx, "STUDYD_EVENTS")
	if err != nil {
		t.Fatal(err)
	}

	// Paced so that the load spans the whole fault schedule (about a minute).
	w := newWorkload(t, simulate.Config{Clients: 450, Days: 14, Seed: 3})
	done := make(chan pubReport, 1)
	go func() {
		done <- publishAll(ctx, js, w.Msgs, pubOptions{Workers: 4, PerMsg: 2 * time.Minute, Pace: 8 * time.Millisecond})
	}()

	var windows []faultWindow
	fault := func(name string, inject, heal func()) {
		time.Sleep(4 * time.Second)
		from := time.Now()
		inject()
		time.Sleep(8 * time.Second)
		heal()
		windows = append(windows, faultWindow{name, from, time.Now()})
	}
	victim := c.Node(t, "n3")
	fault("stop_node", func() { f.Stop(ctx, t, victim) }, func() { f.Start(ctx, t, victim) })
	leader := c.Node(t, streamLeader(ctx, t, events))
	t.Logf("pausing the STUDYD_EVENTS leader %s", leader.Name)
	fault("pause_leader", func() { f.Pause(ctx, t, leader) }, func() { f.Unpause(ctx, t, leader) })
	victim = c.Node(t, "n2")
	fault("disconnect_node", func() { f.Disconnect(ctx, t, victim) }, func() { f.Connect(ctx, t, victim) })

	rep := <-done
	if len(rep.Failed) != 0 {
		t.Fatalf("got %d commands never accepted, want 0", len(rep.Failed))
	}
	if last := windows[len(windows)-1].to; rep.AckTimes[len(rep.AckTimes)-1].Before(last) {
		t.Logf("note: the load ended before the last fault healed")
	}
	waitDrained(ctx, t, js, 3*time.Minute)
	waitReplicasCurrent(ctx, t, events)
	a := readAudit(ctx, t, js)
	lost, dup := checkExactlyOnce(t, rep.Acked, a)
	checkTally(t, w, a)
	checkProjections(ctx, t, js, a)

	t.Logf("FIGURE cluster_commands=%d", len(rep.Acked))
	t.Logf("FIGURE cluster_lost=%d", lost)
	t.Logf("FIGURE cluster_duplicated=%d", dup)
	t.Logf("FIGURE cluster_publish_retries=%d", rep.Retries)
	t.Logf("FIGURE cluster_projector_faults=%.0f", svc.Metric(t, "studyd_projector_faults_total"))
	t.Logf("FIGURE cluster_projector_tail_reopens=%.0f", svc.Metric(t, "studyd_projector_tail_reopens_total"))
	if !t.Failed() { // a failure prints them anyway
		svc.logProjector(t)
	}
	for _, win := range windows {
		t.Logf("FIGURE cluster_%s_commit_stall_ms=%d", win.name, commitStall(a, win.from, win.to.Add(5*time.Second)).Milliseconds())
		t.Logf("FIGURE cluster_%s_publish_stall_ms=%d", win.name, maxGap(rep.AckTimes, win.from, win.to.Add(5*time.Second)).Milliseconds())
	}
}

// TestTakeover runs three studyd instances sharing the partitions of an R3 command
// stream; one is killed mid-load and not restarted. The others take its partitions
// over: nothing is lost or applied twice. How long the takeover took is written as a
// figure: the longest time from a command's acceptance to its commit, among commands
// accepted around the kill, against the same measure before it.
func TestTakeover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := startCluster(ctx, t)
	var svcs []*studydProc
	for _, name := range []string{"a", "b", "c"} {
		svcs = append(svcs, startStudyd(ctx, t, name, c.URLs(), "--replicas", "3"))
	}
	js := newJS(t, connect(t, c.URLs()))

	w := newWorkload(t, simulate.Config{Clients: 300, Days: 14, Seed: 4})
	done := make(chan pubReport, 1)
	go func() {
		done <- publishAll(ctx, js, w.Msgs, pubOptions{Workers: 4, PerMsg: 2 * time.Minute, Pace: 4 * time.Millisecond})
	}()
	time.Sleep(8 * time.Second)
	killedAt := time.Now()
	svcs[0].Kill(t)
	t.Logf("killed at %s", killedAt.Format("15:04:05.000"))
	t.Logf("killed studyd %s with %d commands queued", svcs[0].Name, queuedCommands(ctx, t, js))

	rep := <-done
	if len(rep.Failed) != 0 {
		t.Fatalf("got %d commands never accepted, want 0", len(rep.Failed))
	}
	if rep.AckTimes[len(rep.AckTimes)-1].Before(killedAt.Add(10 * time.Second)) {
		t.Logf("note: the load ended less than 10 s after the kill")
	}
	waitDrained(ctx, t, js, 3*time.Minute)
	a := readAudit(ctx, t, js)
	lost, dup := checkExactlyOnce(t, rep.Acked, a)
	checkTally(t, w, a)
	checkProjections(ctx, t, js, a)

	latency := func(from, to time.Time) time.Duration {
		var worst time.Duration
		for i, id := range rep.Acked {
			if at := rep.AckTimes[i]; !at.Before(from) && at.Before(to) {
				worst = max(worst, a.CommitAt[id].Sub(at))
			}
		}
		return worst
	}
	before := latency(killedAt.Add(-6*time.Second), killedAt.Add(-time.Second))
	after := latency(killedAt.Add(-time.Second), killedAt.Add(15*time.Second))
	for _, s := range svcs[1:] {
		t.Logf("FIGURE takeover_applied_by_%s=%.0f", s.Name, s.Metric(t, "studyd_commands_total", `outcome="applied"`))
	}
	t.Logf("FIGURE takeover_commands=%d", len(rep.Acked))
	t.Logf("FIGURE takeover_lost=%d", lost)
	t.Logf("FIGURE takeover_duplicated=%d", dup)
	t.Logf("FIGURE takeover_max_latency_before_kill_ms=%d", before.Milliseconds())
	t.Logf("FIGURE takeover_max_latency_around_kill_ms=%d", after.Milliseconds())
	t.Logf("FIGURE takeover_commit_stall_ms=%d", commitStall(a, killedAt, killedAt.Add(15*time.Second)).Milliseconds())
}
