package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// idemWorkers is how many clients are driven at once in the idempotency run.
const idemWorkers = 16

// idemTimed is how many commands per client are timed, after the first
// eventstore.RecentCommands that cost no index operation.
const idemTimed = 2 * eventstore.RecentCommands

// idempotency prices "a command id is applied once per client for ever"
// (docs/commands.md, Idempotency): the handler on the JetStream store, clients past
// their first RecentCommands commands — each new command then costs one index read
// (is the id older?) and one index write (the id leaving the commit's list) — against
// the same run with the index switched off, which is the handler before issue 12
// (ids recognised only among the latest 16 and within the stream's dedup window).
func (b *bencher) idempotency(ctx context.Context) error {
	clients := max(b.cfg.Size/(eventstore.RecentCommands+idemTimed), idemWorkers)
	with, err := idempotencyRun(ctx, clients, nil)
	if err != nil {
		return err
	}
	without, err := idempotencyRun(ctx, clients, noIndex{})
	if err != nil {
		return err
	}
	b.rep.add(row{Scenario: "idempotency", Figure: "handler commands/s, ids kept for ever", Value: with, Unit: "cmds/s",
		Baseline: "ids kept 16 deep", BaseVal: without, Ratio: with / without,
		Note: fmt.Sprintf("%d clients × %d commands timed after their first %d (each: 1 index read + 1 index write), %d at once, JetStream store, no intake",
			clients, idemTimed, eventstore.RecentCommands, idemWorkers)})
	b.rep.add(row{Scenario: "idempotency", Figure: "added per command", Value: float64((time.Second/time.Duration(with) - time.Second/time.Duration(without)).Microseconds()),
		Unit: "µs", Difference: true, Note: "1/rate with the index − 1/rate without, at this concurrency"})
	return nil
}

// noIndex is an AppliedIndex that remembers nothing: the handler as it was before.
type noIndex struct{}

func (noIndex) Applied(context.Context, domain.ClientID, string) (uint64, bool, error) {
	return 0, false, nil
}
func (noIndex) Remember(context.Context, domain.ClientID, string, uint64) error { return nil }

// idempotencyRun applies RecentCommands untimed, then idemTimed timed opt_out commands
// to each of clients, idemWorkers clients at a time, on a fresh node, and returns the
// timed commands per second. index nil is the store's own (the KV bucket).
func idempotencyRun(ctx context.Context, clients int, index app.AppliedIndex) (float64, error) {
	n, err := startNode(ctx, nodeConfig{})
	if err != nil {
		return 0, err
	}
	defer n.stop()
	store := eventlog.NewStore(n.js)
	h := app.NewHandler(store, app.Config{Index: index, CacheSize: clients + 1, CacheBytes: 1 << 40})
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	apply := func(c, from, to int) error {
		id := domain.ClientID(fmt.Sprintf("idem-%d", c))
		for i := from; i < to; i++ {
			cmd := domain.Command{Type: domain.CommandOptOut, CommandID: fmt.Sprintf("cmd-%d", i), ClientID: id,
				At: t0.Add(time.Duration(i) * time.Minute), StudiesEnabled: i%2 == 1}
			if _, err := h.Handle(ctx, cmd, app.Source{}); err != nil {
				return err
			}
		}
		return nil
	}
	each := func(from, to int) error {
		next := make(chan int)
		errs := make(chan error, idemWorkers)
		var wg sync.WaitGroup
		for range idemWorkers {
			wg.Go(func() {
				for c := range next {
					if err := apply(c, from, to); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	feed:
		for c := range clients {
			select {
			case next <- c:
			case err := <-errs:
				close(next)
				wg.Wait()
				return err
			case <-ctx.Done():
				break feed
			}
		}
		close(next)
		wg.Wait()
		select {
		case err := <-errs:
			return err
		default:
			return ctx.Err()
		}
	}
	if err := each(0, eventstore.RecentCommands); err != nil {
		return 0, fmt.Errorf("idempotency warm-up: %w", err)
	}
	start := time.Now()
	if err := each(eventstore.RecentCommands, eventstore.RecentCommands+idemTimed); err != nil {
		return 0, fmt.Errorf("idempotency run: %w", err)
	}
	return float64(clients*idemTimed) / time.Since(start).Seconds(), nil
}
