package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/intake"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
)

// submitters is how many requests the durable scenario keeps in flight: as many
// simulated clients waiting for their answer at once.
const submitters = 256

// durableSubmit sends cmds to studyd.submit on n as submitters concurrent senders (a
// client's commands by one sender, in order), with the commits written as studyd
// writes them (atomic batches on a --sync always server), and measures until every answer has come (each is sent once its commit is
// stored: on a --sync always server, on disk) and until the projector has folded the
// last commit.
func durableSubmit(ctx context.Context, n *node, cmds []domain.Command, patience time.Duration) (throughput, error) {
	store := eventlog.NewStore(n.js, n.storeOpts...)
	svc := intake.NewSubmitService(n.nc, app.NewHandler(store, app.Config{CacheSize: 100_000}),
		intake.SubmitConfig{Logger: slog.New(slog.DiscardHandler)})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-svc.Ready():
	case err := <-done:
		return throughput{}, err
	}
	pub, _, err := n.client("submitter")
	if err != nil {
		return throughput{}, err
	}
	defer pub.Close()

	queues := make([][]domain.Command, submitters)
	for _, c := range cmds {
		h := fnv.New32a()
		h.Write([]byte(c.ClientID))
		q := h.Sum32() % submitters
		queues[q] = append(queues[q], c)
	}
	var failed atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for _, q := range queues {
		wg.Go(func() {
			for _, c := range q {
				sctx, cancel := context.WithTimeout(ctx, patience)
				out, err := client.Submit(sctx, pub, c)
				cancel()
				if err == nil && out.Status != client.OutcomeApplied && out.Status != client.OutcomeDuplicate {
					err = fmt.Errorf("command %s: %s %s", c.CommandID, out.Status, out.Error)
				}
				if err != nil {
					failed.Add(1)
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	wg.Wait()
	appended := time.Since(start)
	if firstErr != nil {
		return throughput{}, fmt.Errorf("durable submit: %d of %d failed, first: %w", failed.Load(), len(cmds), firstErr)
	}
	last, _, err := n.lastSeq(ctx)
	if err != nil {
		return throughput{}, err
	}
	if err := waitFor(ctx, patience, func() (bool, error) { return n.proj.Seq() >= last, nil }, n.failed); err != nil {
		return throughput{}, fmt.Errorf("durable submit: waiting for the projector to reach %d: %w", last, err)
	}
	visible := time.Since(start)
	c := float64(len(cmds))
	return throughput{Commands: len(cmds), Published: c / appended.Seconds(), Appended: c / appended.Seconds(),
		Visible: c / visible.Seconds(), LastSeq: last}, nil
}
