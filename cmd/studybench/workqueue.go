package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/intake"
)

// workQueueDrain measures the intake's consumption pattern with no work: n commands
// queued on STUDYD_CMDS (partitions partitions), then drained by one pull consumer per
// partition as the intake configures them, acknowledging each message as soon as it
// arrives. maxAckPending 1 with pulls of one message is the intake's setting (one
// command in flight per partition); a larger window shows what the pattern costs.
//
// A drain that stops making progress for drainStall is cut short: the rate is that of
// the messages drained until the stall began, and stalled says how many were left.
// (Pull consumers with MaxAckPending 1 and immediate acks have been seen to stop
// delivering for good on nats-server 2.15.3 / nats.go 1.55.0; see docs/BENCHMARKS.md.)
func workQueueDrain(ctx context.Context, ps []payload, n, partitions, maxAckPending int) (rate float64, stalled int, err error) {
	nd, err := startNode(ctx, nodeConfig{})
	if err != nil {
		return 0, 0, err
	}
	defer nd.stop()
	if _, err := intake.EnsureCommandsStream(ctx, nd.js, partitions, 1); err != nil {
		return 0, 0, err
	}
	_, js, err := nd.client("queue")
	if err != nil {
		return 0, 0, err
	}
	defer js.Conn().Close()
	// Payloads of commit size on the clients' command subjects; the content is not read.
	if err := publishAll(ctx, js, n, func(i int) payload {
		p := ps[i%len(ps)]
		return payload{subject: "studyd.cmd.c" + strconv.Itoa(i%5000), data: p.data[:min(len(p.data), 600)]}
	}); err != nil {
		return 0, 0, err
	}
	var got atomic.Int64
	var wg sync.WaitGroup
	var iters []jetstream.MessagesContext
	start := time.Now()
	for p := range partitions {
		cons, err := nd.js.CreateOrUpdateConsumer(ctx, client.CommandsStream, jetstream.ConsumerConfig{
			Durable: intake.PartitionConsumer(p), FilterSubject: fmt.Sprintf("studyd.part.%d.*", p),
			AckPolicy: jetstream.AckExplicitPolicy, AckWait: 5 * time.Second, MaxAckPending: maxAckPending, MaxDeliver: -1,
		})
		if err != nil {
			return 0, 0, fmt.Errorf("work queue: %w", err)
		}
		it, err := cons.Messages(jetstream.PullMaxMessages(maxAckPending))
		if err != nil {
			return 0, 0, fmt.Errorf("work queue: %w", err)
		}
		iters = append(iters, it)
		wg.Go(func() {
			for {
				m, err := it.Next()
				if err != nil {
					return
				}
				_ = m.Ack()
				got.Add(1)
			}
		})
	}
	var (
		seen     int64
		progress = time.Now()
	)
	err = waitFor(ctx, 5*time.Minute, func() (bool, error) {
		if g := got.Load(); g != seen {
			seen, progress = g, time.Now()
		}
		return seen >= int64(n) || time.Since(progress) > drainStall, nil
	}, func() error { return nil })
	took := progress.Sub(start)
	for _, it := range iters {
		it.Stop()
	}
	wg.Wait()
	if err != nil {
		return 0, 0, fmt.Errorf("work queue: %w", err)
	}
	return float64(seen) / took.Seconds(), n - int(seen), nil
}

// drainStall is how long a drain may make no progress before it counts as stalled.
const drainStall = 3 * time.Second
