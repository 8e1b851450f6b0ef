package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/eventlog"
)

// payload is one encoded commit on its subject, as studyd would append it.
type payload struct {
	subject string
	data    []byte
}

// samplePayloads returns n commits of a simulated fleet (the real handler on a sink
// store), with their average size and events per commit.
func samplePayloads(ctx context.Context, n, clients, days int, seed uint64) ([]payload, error) {
	g, err := newGenerator(clients, days, seed, false)
	if err != nil {
		return nil, err
	}
	out := make([]payload, 0, n)
	g.store.sink = func(subject string, raw []byte) error {
		out = append(out, payload{subject: subject, data: raw})
		return nil
	}
	if err := g.until(ctx, func(s *sinkStore) bool { return len(out) >= n }); err != nil {
		return nil, err
	}
	return out, nil
}

// asyncPending bounds the raw publisher's unacknowledged publishes.
const asyncPending = 4096

// rawPublish publishes n messages (cycling through ps) to the events stream with
// asynchronous JetStream publishes, no headers and no checks, and returns msgs/s from
// the first publish to the last ack: the ceiling studyd's append path is compared with.
func rawPublish(ctx context.Context, js jetstream.JetStream, ps []payload, n int) (float64, error) {
	start := time.Now()
	if err := publishAll(ctx, js, n, func(i int) payload { return ps[i%len(ps)] }); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// publishAll publishes n messages with asynchronous publishes and waits for every ack;
// a failed publish is an error (a benchmark must not count lost messages).
func publishAll(ctx context.Context, js jetstream.JetStream, n int, at func(i int) payload) error {
	var failed error
	for i := range n {
		p := at(i)
		// A slow disk (--sync always) may hold the acks back longer than the default
		// 200ms stall: wait for them rather than fail.
		if _, err := js.PublishAsync(p.subject, p.data, jetstream.WithStallWait(30*time.Second)); err != nil {
			return fmt.Errorf("raw publish %d: %w", i, err)
		}
		if i%asyncPending == asyncPending-1 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(2 * time.Minute):
		return errors.New("raw publish: acks missing after 2 minutes")
	}
	if k := js.PublishAsyncPending(); k != 0 {
		failed = fmt.Errorf("raw publish: %d publishes unacknowledged", k)
	}
	return failed
}

// rawRead reads the events stream from its first message to last through an ordered
// consumer (the same pull batch as eventlog.Replay) doing nothing with the messages,
// and returns msgs/s: the ceiling of any replay.
func rawRead(ctx context.Context, js jetstream.JetStream, last uint64) (float64, error) {
	start := time.Now()
	cons, err := js.OrderedConsumer(ctx, eventlog.EventsStream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, fmt.Errorf("raw read: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return 0, fmt.Errorf("raw read: %w", err)
	}
	defer it.Stop()
	var n, bytes int
	for {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return 0, fmt.Errorf("raw read after %d messages: %w", n, err)
		}
		n++
		bytes += len(m.Data())
		meta, err := m.Metadata()
		if err != nil {
			return 0, fmt.Errorf("raw read: %w", err)
		}
		if meta.Sequence.Stream >= last {
			break
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
