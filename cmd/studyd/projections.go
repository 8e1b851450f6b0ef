package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	natsadapter "github.com/studyd/studyd/adapters/nats"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/eventstore"
)

// startProjections runs the projector (only one instance's writes at a time: it holds
// a lease), serves the query endpoints, and, when a signing key is configured, writes
// signed audit checkpoints periodically. Everything it starts stops when ctx ends.
func startProjections(ctx context.Context, cfg config, wg *sync.WaitGroup, errs chan<- error, nc *natsadapter.Conn,
	js jetstream.JetStream, store eventstore.Store, log *slog.Logger) error {
	proj, err := natsadapter.NewProjector(js, natsadapter.ProjectorOptions{Replicas: cfg.Replicas, Logger: log})
	if err != nil {
		return err
	}
	wg.Go(func() {
		if err := proj.Run(ctx); err != nil {
			errs <- fmt.Errorf("projector: %w", err)
		}
	})
	stopQueries, err := natsadapter.StartQueryService(ctx, nc, js, store)
	if err != nil {
		return err
	}
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
	wg.Go(func() { natsadapter.RunCheckpoints(ctx, js, key, cfg.CheckpointEvery, log) })
	return nil
}
