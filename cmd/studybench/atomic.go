package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/studyd/studyd/adapters/nats/eventlog"
)

// The headers of a JetStream atomic batch (nats-server 2.12+). nats.go 1.55.0 has no
// client for them, so the baseline speaks the protocol itself.
const (
	batchIDHeader     = "Nats-Batch-Id"       // ≤ 64 characters, unique per batch
	batchSeqHeader    = "Nats-Batch-Sequence" // 1..n
	batchCommitHeader = "Nats-Batch-Commit"   // "1" on the last message
)

const (
	// atomicBatch is the messages of one atomic batch: the size the issue measured
	// with `nats bench` (the server takes at most 1000).
	atomicBatch = 500
	// atomicInFlight is how many batches the publisher keeps open at once (the server
	// allows 50 per stream), as a pipelined intake committing several partitions'
	// batches would. On the 2-core machine 1, 2, 4, 8 and 16 measured the same within
	// the noise (27–34k msgs/s with `sync always`, 36–38k without): the server's CPU,
	// not the round trip or the fsync, bounds it there.
	atomicInFlight = 4
	// atomicWait bounds the wait for one batch's commit acknowledgement: a batch of
	// 500 on a slow disk, behind the other batches in flight, is seconds at worst.
	atomicWait = 30 * time.Second
)

// enableAtomicPublish lets STUDYD_EVENTS take atomic batches (AllowAtomicPublish)
// if studyd's own stream configuration has not already: the baseline measures what the
// engine offers, whatever studyd currently asks of it.
func enableAtomicPublish(ctx context.Context, js jetstream.JetStream) error {
	st, err := js.Stream(ctx, eventlog.EventsStream)
	if err != nil {
		return fmt.Errorf("allow atomic publish: %w", err)
	}
	cfg := st.CachedInfo().Config
	if cfg.AllowAtomicPublish {
		return nil
	}
	cfg.AllowAtomicPublish = true
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("allow atomic publish on %s: %w", eventlog.EventsStream, err)
	}
	return nil
}

// rawAtomicPublish publishes n messages (cycling through ps) to the events stream as
// atomic batches of size, inFlight batches open at a time, and returns msgs/s from the
// first publish to the last batch's acknowledgement: the ceiling of an append path
// that writes its commits in batches (one store write, and on a `sync always` server
// one fsync, per batch). A batch the server does not commit whole is an error.
func rawAtomicPublish(ctx context.Context, nc *nats.Conn, ps []payload, n, size, inFlight int) (float64, error) {
	batches := (n + size - 1) / size
	var next atomic.Int64
	var (
		mu    sync.Mutex
		first error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range inFlight {
		wg.Go(func() {
			for b := int(next.Add(1) - 1); b < batches && ctx.Err() == nil; b = int(next.Add(1) - 1) {
				lo := b * size
				if err := publishBatch(ctx, nc, ps, lo, min(lo+size, n)); err != nil {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("raw atomic publish, batch %d of %d: %w", b+1, batches, err)
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return 0, first
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// publishBatch publishes messages lo..hi-1 (cycling through ps) as one atomic batch:
// all but the last fire-and-forget, the last (carrying the commit header) as a request
// answered once the server has stored the whole batch, or rejected it.
func publishBatch(ctx context.Context, nc *nats.Conn, ps []payload, lo, hi int) error {
	id := nuid.Next()
	for i := lo; i < hi; i++ {
		p := ps[i%len(ps)]
		m := nats.NewMsg(p.subject)
		m.Data = p.data
		m.Header.Set(batchIDHeader, id)
		m.Header.Set(batchSeqHeader, strconv.Itoa(i-lo+1))
		if i < hi-1 {
			if err := nc.PublishMsg(m); err != nil {
				return err
			}
			continue
		}
		m.Header.Set(batchCommitHeader, "1")
		wait, cancel := context.WithTimeout(ctx, atomicWait)
		resp, err := nc.RequestMsgWithContext(wait, m)
		cancel()
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return checkBatchAck(resp.Data, id, hi-lo)
	}
	return errors.New("empty batch")
}

// batchAck is the server's answer to a batch's commit: where it stored the batch, or
// the JetStream API error that rejected it.
type batchAck struct {
	Stream string `json:"stream"`
	Seq    uint64 `json:"seq"`
	Batch  string `json:"batch"`
	Count  int    `json:"count"`
	Error  *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// checkBatchAck accepts an acknowledgement of batch id holding count messages.
func checkBatchAck(data []byte, id string, count int) error {
	var ack batchAck
	if err := json.Unmarshal(data, &ack); err != nil {
		return fmt.Errorf("commit acknowledgement %q: %w", data, err)
	}
	switch {
	case ack.Error != nil:
		return fmt.Errorf("batch rejected: %s (code %d, error code %d)", ack.Error.Description, ack.Error.Code, ack.Error.ErrCode)
	case ack.Stream != eventlog.EventsStream || ack.Batch != id || ack.Count != count:
		return fmt.Errorf("commit acknowledgement %s: want stream %s, batch %s, count %d", data, eventlog.EventsStream, id, count)
	}
	return nil
}
