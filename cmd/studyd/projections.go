package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/studyd/studyd/adapters/nats/checkpoint"
	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/views"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/eventstore"
)

// projectorRetry is how long a failed projector waits before it tries again.
const projectorRetry = 5 * time.Second

// runProjector keeps the projector running. A projector that fails — e.g. on a commit
// this build cannot decode, after a newer studyd wrote it — stops only the views: the
// intake keeps applying commands, the error is logged, and the projector retries from
// its checkpoint, so the views converge once the cause is gone (say, this instance is
// upgraded too).
func runProjector(ctx context.Context, proj *views.Projector, log *slog.Logger) {
	for {
		err := proj.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		log.Error("projector stopped; views are not advancing", "err", err, "retry_in", projectorRetry)
		select {
		case <-ctx.Done():
			return
		case <-time.After(projectorRetry):
		}
	}
}

// startProjections runs the projector (only one instance's writes at a time: it holds
// a lease), serves the query endpoints, and, when a signing key is configured, writes
// signed audit checkpoints periodically. Everything it starts stops when ctx ends.
func startProjections(ctx context.Context, cfg config, wg *sync.WaitGroup, nc *client.Conn,
	js jetstream.JetStream, store eventstore.Store, reg prometheus.Registerer, rd *readiness, log *slog.Logger) error {
	var proj *views.Projector
	err := retry(ctx, rd, log, "view buckets", func(context.Context) error {
		var err error
		proj, err = views.NewProjector(js, views.ProjectorOptions{Replicas: cfg.Replicas, Logger: log})
		return err
	})
	if err != nil {
		return err
	}
	var stopQueries func() error
	err = retry(ctx, rd, log, "query endpoints", func(context.Context) error {
		var err error
		stopQueries, err = views.StartQueryService(ctx, nc, js, store)
		return err
	})
	if err != nil {
		return err
	}
	reg.MustRegister(views.ProjectorCollectors(proj)...)
	wg.Go(func() { runProjector(ctx, proj, log) })
	wg.Go(func() {
		<-ctx.Done()
		if err := stopQueries(); err != nil {
			log.Warn("stop query service", "err", err)
		}
	})
	if cfg.CheckpointKey == "" {
		return nil
	}
	pem, err := os.ReadFile(cfg.CheckpointKey)
	if err != nil {
		return fmt.Errorf("--checkpoint-key: %w", err)
	}
	key, err := audit.ParsePrivateKey(pem)
	if err != nil {
		return fmt.Errorf("--checkpoint-key %s: %w", cfg.CheckpointKey, err)
	}
	wg.Go(func() { checkpoint.Run(ctx, js, key, cfg.CheckpointEvery, log) })
	return nil
}
