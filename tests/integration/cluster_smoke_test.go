package integration

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterSmoke checks the fault harness against JetStream alone: an R3 stream on a
// 3-node cluster keeps accepting publishes while a node is stopped, the stream leader is
// paused, and a node is cut off the network, and after healing it holds every
// acknowledged message exactly once, on every replica.
func TestClusterSmoke(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := startCluster(ctx, t)
	f := newFaults(ctx, t, c)
	nc := connect(t, c.URLs())
	js := newJS(t, nc)
	stream := createStreamRetry(ctx, t, js, jetstream.StreamConfig{
		Name: "SMOKE", Subjects: []string{"smoke.>"}, Replicas: 3, Storage: jetstream.FileStorage,
		Duplicates: 2 * time.Minute,
	})

	msgs := make([]outMsg, 200_000)
	for i := range msgs {
		key := strconv.Itoa(i % 64)
		msgs[i] = outMsg{Subject: "smoke." + key, ID: "m-" + strconv.Itoa(i), Key: key, Data: []byte(strconv.Itoa(i))}
	}
	stop := make(chan struct{})
	done := make(chan pubReport, 1)
	go func() {
		done <- publishAll(ctx, js, msgs, pubOptions{Workers: 4, PerMsg: 90 * time.Second, Pace: 5 * time.Millisecond, Stop: stop})
	}()

	type window struct {
		name     string
		from, to time.Time
	}
	var windows []window
	fault := func(name string, inject, heal func()) {
		time.Sleep(3 * time.Second) // steady load between faults
		from := time.Now()
		inject()
		time.Sleep(8 * time.Second) // as long as in TestClusterFaults, so the figures compare
		heal()
		windows = append(windows, window{name, from, time.Now()})
	}
	victim := c.Node(t, "n3")
	fault("stop_node", func() { f.Stop(ctx, t, victim) }, func() { f.Start(ctx, t, victim) })
	leader := c.Node(t, streamLeader(ctx, t, stream))
	t.Logf("pausing stream leader %s", leader.Name)
	fault("pause_leader", func() { f.Pause(ctx, t, leader) }, func() { f.Unpause(ctx, t, leader) })
	victim = c.Node(t, "n2")
	fault("disconnect_node", func() { f.Disconnect(ctx, t, victim) }, func() { f.Connect(ctx, t, victim) })
	time.Sleep(3 * time.Second)
	close(stop)
	rep := <-done

	if len(rep.Failed) != 0 {
		t.Errorf("got %d messages never acknowledged (first %s), want 0", len(rep.Failed), rep.Failed[0])
	}
	if len(rep.Acked) == 0 {
		t.Fatal("got 0 acknowledged messages, want some")
	}
	var seen map[string]int
	retryRead(t, func() error {
		seen = map[string]int{}
		return readStream(ctx, js, "SMOKE", func(m jetstream.Msg) error {
			seen[m.Headers().Get(jetstream.MsgIDHeader)]++
			return nil
		})
	})
	lost, dup := 0, 0
	for _, id := range rep.Acked {
		switch n := seen[id]; {
		case n == 0:
			lost++
		case n > 1:
			dup++
		}
	}
	if lost != 0 || dup != 0 {
		t.Errorf("got %d acknowledged messages lost and %d duplicated, want 0 and 0", lost, dup)
	}
	if len(seen) != len(rep.Acked) {
		t.Errorf("got %d distinct messages in the stream, want %d (the acknowledged ones)", len(seen), len(rep.Acked))
	}
	waitReplicasCurrent(ctx, t, stream)

	t.Logf("FIGURE smoke_acked=%d", len(rep.Acked))
	t.Logf("FIGURE smoke_retries=%d", rep.Retries)
	for _, w := range windows {
		t.Logf("FIGURE smoke_%s_max_ack_gap_ms=%d", w.name, maxGap(rep.AckTimes, w.from, w.to).Milliseconds())
	}
}

// createStreamRetry creates (or updates) a stream, retrying while a fresh cluster's
// JetStream is still settling.
func createStreamRetry(ctx context.Context, t *testing.T, js jetstream.JetStream, cfg jetstream.StreamConfig) jetstream.Stream {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		s, err := js.CreateOrUpdateStream(cctx, cfg)
		cancel()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("create stream %s: %v", cfg.Name, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// streamLeader returns the server name of the stream's current leader.
func streamLeader(ctx context.Context, t *testing.T, s jetstream.Stream) string {
	t.Helper()
	var last error
	for range 50 {
		info, err := s.Info(ctx)
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" {
			return info.Cluster.Leader
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("stream leader: %v", last)
	return ""
}

// waitReplicasCurrent waits until the stream has a leader and two current replicas
// with no lag: every node holds the whole log again after the faults healed.
func waitReplicasCurrent(ctx context.Context, t *testing.T, s jetstream.Stream) {
	t.Helper()
	var last string
	for range 150 {
		info, err := s.Info(ctx)
		if err != nil {
			last = err.Error()
		} else if ci := info.Cluster; ci == nil || ci.Leader == "" {
			last = "no leader"
		} else {
			current := 0
			for _, r := range ci.Replicas {
				if r.Current && r.Lag == 0 && !r.Offline {
					current++
				}
			}
			if current == 2 {
				return
			}
			last = fmt.Sprintf("leader %s, replicas %+v", ci.Leader, ci.Replicas)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("replicas of %s not current: %s", s.CachedInfo().Config.Name, last)
}
