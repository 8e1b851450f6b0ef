package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// readStream calls fn for every message of stream, in stream order, up to the stream's
// last sequence at the time of the call.
func readStream(ctx context.Context, js jetstream.JetStream, stream string, fn func(jetstream.Msg) error) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	info, err := s.Info(ctx) // answered by the stream leader
	if err != nil {
		return fmt.Errorf("read %s: info: %w", stream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	// The ordered consumer may be placed on a replica that is still catching up after a
	// fault; its NumPending then says 0 early. Read until the leader's last sequence
	// instead, and give up (so that the caller retries) only after several empty fetches.
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("read %s: consumer: %w", stream, err)
	}
	var seq uint64
	for empty := 0; empty < 10; {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return fmt.Errorf("read %s: fetch: %w", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return fmt.Errorf("read %s: metadata: %w", stream, err)
			}
			if err := fn(m); err != nil {
				return err
			}
			if seq = md.Sequence.Stream; seq >= last {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fmt.Errorf("read %s: batch: %w", stream, err)
		}
		if n == 0 {
			empty++
		}
	}
	return fmt.Errorf("read %s: stopped at sequence %d of %d", stream, seq, last)
}

// retryRead runs read until it succeeds (for up to readRetryFor): a cluster that just healed
// may answer "no responders" for a moment, and a read is repeatable (read must reset
// whatever it accumulates).
func retryRead(t *testing.T, read func() error) {
	t.Helper()
	// A node that has just rejoined may answer "no responders" until its routes and
	// JetStream are current again; seen lasting over 10 s on a loaded 2-core machine.
	deadline := time.Now().Add(readRetryFor)
	for {
		err := read()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("read: %v (still failing after %s)", err, readRetryFor)
		}
		t.Logf("read: %v (retrying)", err)
		time.Sleep(2 * time.Second)
	}
}

// readRetryFor bounds how long a read of the log is retried after a heal.
const readRetryFor = 60 * time.Second
