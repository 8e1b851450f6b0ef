package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/checkpoint"
	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/query"
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

// readSide is what serves the views: the projector (only one instance's writes at a
// time: it holds a lease), the query endpoints and, when a signing key is configured,
// the periodic signed audit checkpoints.
type readSide struct {
	projector   *views.Projector
	queries     *query.QueryService
	checkpoints *checkpoint.Writer // nil without --checkpoint-key
}

// newReadSide builds the read side; it reads the checkpoint key, nothing else.
func newReadSide(cfg config, nc *client.Conn, js jetstream.JetStream, store eventstore.Store, commitKey *audit.CommitKey, log *slog.Logger) (readSide, error) {
	rs := readSide{
		projector: views.NewProjector(js, views.ProjectorConfig{Replicas: cfg.Replicas, Logger: log, CommitKey: commitKey}),
		queries:   query.NewQueryService(nc, js, store, query.QueryConfig{}),
	}
	if cfg.CheckpointKey == "" {
		return rs, nil
	}
	pem, err := os.ReadFile(cfg.CheckpointKey)
	if err != nil {
		return readSide{}, fmt.Errorf("--checkpoint-key: %w", err)
	}
	key, err := audit.ParsePrivateKey(pem)
	if err != nil {
		return readSide{}, fmt.Errorf("--checkpoint-key %s: %w", cfg.CheckpointKey, err)
	}
	rs.checkpoints = checkpoint.NewWriter(js, key, checkpoint.WriterConfig{Every: cfg.CheckpointEvery, Logger: log})
	return rs, nil
}
