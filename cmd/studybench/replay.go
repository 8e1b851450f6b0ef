package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	natsadapter "github.com/studyd/studyd/adapters/nats"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/projections"
)

// replayResult is one audit replay of a whole log.
type replayResult struct {
	Messages uint64  `json:"messages"`
	Events   uint64  `json:"events"`
	MsgsPerS float64 `json:"msgs_per_s"`
	EvtsPerS float64 `json:"events_per_s"`
	Faults   int     `json:"faults"`
}

// auditReplay replays the whole events stream the way `studyctl audit` does: every
// message through natsadapter.Replay (an ordered consumer) into the audit verifier
// (decode, hash chains, legality of every transition under the FSM table, state
// continuity, running digest), and every commit into all the projections' folds
// (uptake tallies, study views). A fault in a benchmark's log is an error: the figures
// would not be of a valid replay.
func auditReplay(ctx context.Context, js jetstream.JetStream) (replayResult, error) {
	v := audit.NewVerifier(audit.VerifyOptions{Anchored: true})
	uptake, studies := projections.NewUptake(), projections.NewStudies()
	start := time.Now()
	err := natsadapter.Replay(ctx, js, natsadapter.ReplayOptions{}, func(e audit.Entry) error {
		r, ok := v.Add(e)
		if ok {
			uptake.Apply(r.Position, &r.Commit)
			studies.Apply(r.Position, &r.Commit)
		}
		return nil
	})
	took := time.Since(start)
	if err != nil {
		return replayResult{}, fmt.Errorf("audit replay: %w", err)
	}
	rep := v.Finish()
	if rep.FaultCount > 0 {
		return replayResult{}, fmt.Errorf("audit replay: %d faults, the first: %w", rep.FaultCount, rep.Err())
	}
	return replayResult{Messages: rep.Messages, Events: rep.Events,
		MsgsPerS: float64(rep.Messages) / took.Seconds(), EvtsPerS: float64(rep.Events) / took.Seconds()}, nil
}
