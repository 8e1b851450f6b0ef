package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/domain"
)

// latencyResult is the latency of commands published at a steady rate.
type latencyResult struct {
	Rate       float64       `json:"rate_per_s"` // the rate asked for
	Achieved   float64       `json:"achieved_per_s"`
	Commands   int           `json:"commands"`
	AppendP50  time.Duration `json:"append_p50_ns"`
	AppendP99  time.Duration `json:"append_p99_ns"`
	VisibleP50 time.Duration `json:"visible_p50_ns"`
	VisibleP99 time.Duration `json:"visible_p99_ns"`
}

// sent is a command in flight: when it was published, and its commit's sequence once
// its outcome came back.
type sent struct {
	at  time.Time
	seq uint64
}

// latencyUnderLoad publishes cmds at rate per second, each asking for its outcome
// (header Studyd-Reply-To), and measures publish → outcome (the commit is appended;
// the outcome is sent right after the append) and publish → the projector's
// checkpoint covering the commit (visible in the KV views). The checkpoint is polled
// every visiblePoll, which bounds the error of the second figure.
func latencyUnderLoad(ctx context.Context, n *node, cmds []domain.Command, rate float64) (latencyResult, error) {
	pub, _, err := n.client("latency-publisher")
	if err != nil {
		return latencyResult{}, err
	}
	defer pub.Close()
	js, err := jetstream.New(pub, jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		return latencyResult{}, fmt.Errorf("latency: %w", err)
	}

	var (
		mu       sync.Mutex
		inflight = make(map[string]time.Time, 1024)
		waiting  []sent // appended, not yet visible
		appendL  = make([]time.Duration, 0, len(cmds))
		visibleL = make([]time.Duration, 0, len(cmds))
		bad      error
		done     = make(chan struct{})
	)
	// An inbox: studyd answers nowhere else (app.ReplyPolicy).
	outcomes := pub.NewInbox()
	sub, err := pub.Subscribe(outcomes, func(m *nats.Msg) {
		now := time.Now()
		var out client.Outcome
		err := json.Unmarshal(m.Data, &out)
		mu.Lock()
		defer mu.Unlock()
		if err == nil && out.Status != client.OutcomeApplied {
			err = fmt.Errorf("command %s: %s %s %s", out.CommandID, out.Status, out.Code, out.Error)
		}
		if err != nil {
			if bad == nil {
				bad = err
			}
			return
		}
		t0, ok := inflight[out.CommandID]
		if !ok {
			return
		}
		delete(inflight, out.CommandID)
		appendL = append(appendL, now.Sub(t0))
		waiting = append(waiting, sent{at: t0, seq: out.Seq})
		if len(appendL) == len(cmds) {
			close(done)
		}
	})
	if err != nil {
		return latencyResult{}, fmt.Errorf("latency: subscribe: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	pollCtx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	polled := make(chan struct{})
	go func() { // resolves appended commands as the checkpoint passes them
		defer close(polled)
		t := time.NewTicker(visiblePoll)
		defer t.Stop()
		for {
			select {
			case <-pollCtx.Done():
				return
			case <-t.C:
			}
			cp, now := n.proj.Seq(), time.Now()
			mu.Lock()
			waiting = slices.DeleteFunc(waiting, func(s sent) bool {
				if s.seq > cp {
					return false
				}
				visibleL = append(visibleL, now.Sub(s.at))
				return true
			})
			mu.Unlock()
		}
	}()

	pace := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i, cmd := range cmds {
		if d := time.Until(start.Add(time.Duration(i) * pace)); d > 0 {
			time.Sleep(d)
		}
		data, err := client.EncodeCommand(cmd)
		if err != nil {
			return latencyResult{}, fmt.Errorf("latency: %w", err)
		}
		msg := nats.NewMsg(client.CommandSubject(cmd.ClientID))
		msg.Data = data
		msg.Header.Set(client.HeaderReplyTo, outcomes)
		mu.Lock()
		inflight[cmd.CommandID] = time.Now()
		mu.Unlock()
		if _, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(client.CommandMsgID(cmd))); err != nil {
			return latencyResult{}, fmt.Errorf("latency: publish: %w", err)
		}
	}
	sentFor := time.Since(start)
	select {
	case <-done:
	case <-time.After(time.Minute):
		return latencyResult{}, fmt.Errorf("latency: %d outcomes missing after a minute", len(inflight))
	case <-ctx.Done():
		return latencyResult{}, ctx.Err()
	}
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(visibleL) == len(cmds), nil
	}, n.failed); err != nil {
		return latencyResult{}, fmt.Errorf("latency: waiting for the projector: %w", err)
	}
	stopPoll()
	<-polled
	mu.Lock()
	defer mu.Unlock()
	if bad != nil {
		return latencyResult{}, fmt.Errorf("latency: %w", bad)
	}
	return latencyResult{
		Rate: rate, Achieved: float64(len(cmds)) / sentFor.Seconds(), Commands: len(cmds),
		AppendP50: percentile(appendL, 0.50), AppendP99: percentile(appendL, 0.99),
		VisibleP50: percentile(visibleL, 0.50), VisibleP99: percentile(visibleL, 0.99),
	}, nil
}

// visiblePoll is how often the latency run reads the projector's checkpoint.
const visiblePoll = time.Millisecond

// percentile sorts ds and returns its p-quantile (nearest rank).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[min(len(ds)-1, int(p*float64(len(ds))))]
}
