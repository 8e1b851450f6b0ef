package integration

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// outMsg is one message to publish with JetStream deduplication.
type outMsg struct {
	Subject string
	ID      string // Nats-Msg-Id: a retry after a lost ack is deduplicated by the stream
	Name    string // what the report calls it (a command id); "" means ID
	Key     string // messages with one key are published in order, by one worker
	Data    []byte
	Header  nats.Header
}

func (m outMsg) name() string {
	if m.Name != "" {
		return m.Name
	}
	return m.ID
}

// pubReport is what a publishAll saw.
type pubReport struct {
	Acked    []string    // ids the stream acknowledged (accepted)
	AckTimes []time.Time // when each ack came back, in the order of Acked
	Failed   []string    // ids never acknowledged before their deadline
	Retries  int         // publish attempts that failed and were retried
	Elapsed  time.Duration
}

// pubOptions tune publishAll.
type pubOptions struct {
	Workers int             // concurrent publishers; messages of one Key share one
	PerMsg  time.Duration   // give up on a message after this long
	Pace    time.Duration   // pause between two messages of one worker
	Stop    <-chan struct{} // once closed, no new message is started
}

// publishAll publishes msgs, messages of one key by one worker in order, each retried
// with the same id until acked or until PerMsg has passed. It keeps going through
// server faults; a message counts as accepted only once a PubAck came back.
func publishAll(ctx context.Context, js jetstream.JetStream, msgs []outMsg, o pubOptions) pubReport {
	shards := make([][]outMsg, o.Workers)
	for _, m := range msgs {
		h := fnv.New32a()
		h.Write([]byte(m.Key))
		k := int(h.Sum32() % uint32(o.Workers))
		shards[k] = append(shards[k], m)
	}
	var (
		mu  sync.Mutex
		rep pubReport
	)
	start := time.Now()
	var wg sync.WaitGroup
	for _, shard := range shards {
		wg.Go(func() {
			for _, m := range shard {
				select {
				case <-o.Stop:
					return
				default:
				}
				retries, err := publishOne(ctx, js, m, o.PerMsg)
				now := time.Now()
				mu.Lock()
				rep.Retries += retries
				if err != nil {
					rep.Failed = append(rep.Failed, m.name())
				} else {
					rep.Acked = append(rep.Acked, m.name())
					rep.AckTimes = append(rep.AckTimes, now)
				}
				mu.Unlock()
				if o.Pace > 0 {
					time.Sleep(o.Pace)
				}
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	return rep
}

// maxGap is the longest interval between consecutive times within [from, to], counting
// from `from` to the first time and from the last time to `to`: how long nothing got
// through. times need not be sorted.
func maxGap(times []time.Time, from, to time.Time) time.Duration {
	in := make([]time.Time, 0, len(times))
	for _, tm := range times {
		if !tm.Before(from) && !tm.After(to) {
			in = append(in, tm)
		}
	}
	slices.SortFunc(in, func(a, b time.Time) int { return a.Compare(b) })
	prev, gap := from, time.Duration(0)
	for _, tm := range in {
		gap = max(gap, tm.Sub(prev))
		prev = tm
	}
	return max(gap, to.Sub(prev))
}

// publishOne publishes m until it is acked or deadline passes, and returns how many
// attempts failed.
func publishOne(ctx context.Context, js jetstream.JetStream, m outMsg, deadline time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	msg := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: nats.Header{}}
	for k, v := range m.Header {
		msg.Header[k] = v
	}
	failed := 0
	backoff := 50 * time.Millisecond
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.PublishMsg(actx, msg, jetstream.WithMsgID(m.ID))
		acancel()
		if err == nil {
			return failed, nil
		}
		failed++
		select {
		case <-ctx.Done():
			return failed, fmt.Errorf("publish %s: %w (last error: %w)", m.ID, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}
