package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/eventstore"
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

// auditReplay replays the whole events stream the way an audit does: every message
// through an ordered consumer (eventlog.Replay, or eventlog.ReplayLean when parallel,
// which decodes on GOMAXPROCS workers and verifies in order) into the audit verifier
// (the lean decode audit.Verify reads with, hash chains, legality of every transition under the FSM table, state
// continuity, running digest), and every commit into all the projections' folds
// (uptake tallies, study views). A fault in a benchmark's log is an error: the figures
// would not be of a valid replay.
func auditReplay(ctx context.Context, js jetstream.JetStream, parallel bool) (replayResult, error) {
	v := audit.NewVerifier(audit.VerifyOptions{Anchored: true})
	uptake, studies := projections.NewUptake(), projections.NewStudies()
	fold := func(r eventstore.Record, ok bool) {
		if ok {
			uptake.Apply(r.Position, &r.Commit)
			studies.Apply(r.Position, &r.Commit)
		}
	}
	start := time.Now()
	var err error
	if parallel {
		err = eventlog.ReplayLean(ctx, js, eventlog.ReplayOptions{}, 0, func(d audit.Decoded) error {
			fold(v.AddDecoded(d))
			return nil
		})
	} else {
		var lean audit.LeanDecoder
		err = eventlog.Replay(ctx, js, eventlog.ReplayOptions{}, func(e audit.Entry) error {
			fold(v.AddDecoded(lean.Decode(e)))
			return nil
		})
	}
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

// cpuPerMessage runs repeatRate over measure, whose every call reads msgs messages,
// and also returns the process CPU time spent per message read. On a machine other
// work shares, the CPU per message moves much less than the rates: it prices a
// replay against the raw read when their wall-clock ratio says more about the load.
func cpuPerMessage(msgs uint64, measure func() (float64, error)) (float64, time.Duration, error) {
	runs := uint64(0)
	start := processCPU()
	rate, err := repeatRate(func() (float64, error) {
		runs++
		return measure()
	})
	if err != nil || runs*msgs == 0 {
		return rate, 0, err
	}
	return rate, (processCPU() - start) / time.Duration(runs*msgs), nil
}

// micros is d in microseconds, for the CPU per message in the notes.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
