package main

import (
	"context"
	"fmt"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/domain"
)

// throughput is what one end-to-end run measured.
type throughput struct {
	Commands  int     `json:"commands"`
	Published float64 `json:"published_per_s"` // PubAcks from STUDYD_CMDS per second
	Appended  float64 `json:"appended_per_s"`  // commands decided and appended per second
	Visible   float64 `json:"visible_per_s"`   // ... and folded into the KV views per second
	// Reopens and Faults count the projector's silent tails re-opened and its terms
	// ended by a fault during the run: each holds the views back for a while, so a
	// run whose visible rate trails its appended rate says which.
	Reopens uint64 `json:"projector_tail_reopens"`
	Faults  uint64 `json:"projector_faults"`
	LastSeq uint64 `json:"last_seq"`
}

// projectorNote says what held the views back during the run, if anything.
func (t throughput) projectorNote() string {
	return fmt.Sprintf("projector: %d tails re-opened, %d terms ended by a fault", t.Reopens, t.Faults)
}

// endToEnd publishes cmds as simulated clients do (client.PublishCommands) to a
// node running studyd, and measures until every command is decided, appended, and
// visible in the projections (the projector's checkpoint reaches the last commit),
// waiting at most patience for each.
func endToEnd(ctx context.Context, n *node, cmds []domain.Command, patience time.Duration) (throughput, error) {
	pub, _, err := n.client("publisher")
	if err != nil {
		return throughput{}, err
	}
	defer pub.Close()
	_, base, err := n.lastSeq(ctx)
	if err != nil {
		return throughput{}, err
	}
	want := base + uint64(len(cmds))
	i := 0
	next := func() (domain.Command, bool) {
		if i == len(cmds) {
			return domain.Command{}, false
		}
		i++
		return cmds[i-1], true
	}
	reopens, faults := n.proj.Reopens(), n.proj.Faults()
	start := time.Now()
	stats, err := client.PublishCommands(ctx, pub, next, client.PublishOptions{})
	if err != nil {
		return throughput{}, fmt.Errorf("end to end: %w", err)
	}
	published := time.Since(start)
	var last uint64
	if err := waitForEvery(ctx, patience, infoPoll, func() (bool, error) {
		l, msgs, err := n.lastSeq(ctx)
		last = l
		return msgs >= want, err
	}, n.failed); err != nil {
		return throughput{}, fmt.Errorf("end to end: waiting for %d commits: %w", len(cmds), err)
	}
	appended := time.Since(start)
	if err := waitFor(ctx, patience, func() (bool, error) { return n.proj.Seq() >= last, nil }, n.failed); err != nil {
		return throughput{}, fmt.Errorf("end to end: waiting for the projector to reach %d: %w", last, err)
	}
	visible := time.Since(start)
	c := float64(len(cmds))
	return throughput{Commands: stats.Acked, Published: c / published.Seconds(), Appended: c / appended.Seconds(),
		Visible: c / visible.Seconds(), LastSeq: last,
		Reopens: n.proj.Reopens() - reopens, Faults: n.proj.Faults() - faults}, nil
}

// How often a scenario checks whether the system caught up: small against the runs'
// length (seconds), so it adds little to the measured time. Reading the stream's info
// is a JetStream API request, which at 5 ms would itself take a few percent of the
// CPU being measured; the projector's sequence is an in-process read.
const (
	pollEvery = 2 * time.Millisecond
	infoPoll  = 25 * time.Millisecond
)

// waitFor polls done every pollEvery until it holds, fails, failed reports a stopped
// part, or timeout.
func waitFor(ctx context.Context, timeout time.Duration, done func() (bool, error), failed func() error) error {
	return waitForEvery(ctx, timeout, pollEvery, done, failed)
}

// waitForEvery is waitFor polling every every.
func waitForEvery(ctx context.Context, timeout, every time.Duration, done func() (bool, error), failed func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if err := failed(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}
