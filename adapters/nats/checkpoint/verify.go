package checkpoint

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/audit"
)

// liveViews reads every live view with the stream sequence it reflects, for
// audit.ViewCheck.
func liveViews(ctx context.Context, js jetstream.JetStream) (audit.LiveViews, error) {
	v, err := client.ReadViews(ctx, js, client.AllViews)
	if err != nil {
		return audit.LiveViews{}, err
	}
	live := audit.LiveViews{Checkpoint: v.Checkpoint, Studies: v.Studies, Timeline: v.Timeline, Rollouts: v.Rollouts}
	for _, u := range v.Uptake {
		k, err := u.Key()
		if err != nil {
			return audit.LiveViews{}, fmt.Errorf("read views: uptake %s %s: %w", u.Source, u.Period, err)
		}
		live.Uptake = append(live.Uptake, audit.LiveUptake{Key: k, Count: u.Count, Seq: u.Seq})
	}
	return live, nil
}

// VerifyConfig configures VerifyLog.
type VerifyConfig struct {
	// Replay selects what to verify. A replay of the whole stream checks everything; one
	// client's subject from the start checks that client's chain and transitions; a
	// window takes each client's first commit in it on trust.
	Replay eventlog.ReplayOptions
	// CheckpointsStream holds the signed checkpoints (default Stream);
	// CheckpointsOf is the stream name they must be about (default EventsStream), so a
	// copy of the log under another name is verified against the original's.
	CheckpointsStream, CheckpointsOf string
	// PublicKey verifies the checkpoints' signatures; nil leaves them unchecked.
	PublicKey ed25519.PublicKey
	// CommitKey proves studyd wrote every commit and rejection; nil leaves authorship
	// unchecked.
	CommitKey *audit.CommitKey
	// Views compares the live KV views with the fold of the log (whole-stream replays);
	// if no projector ever wrote views the comparison is skipped (Report.Views nil).
	Views bool
	// ViewsWait is how long the views may take to reach the log's last commit (as it
	// was when verify started) before they count as behind; 0 means 5s.
	ViewsWait time.Duration
	// Progress, if set, is called with each sequence verified.
	Progress func(seq uint64)
}

// VerifyLog gathers what audit.Verify needs (the coverage of the selection, the
// checkpoints, the live views) and replays the selected log through it: legal transitions,
// per-client hash chains, signed checkpoints and (optionally) the live views. The
// report lists every fault; the error is for the replay itself failing.
func VerifyLog(ctx context.Context, js jetstream.JetStream, cfg VerifyConfig) (audit.Report, error) {
	o := cfg.Replay
	first, _, _, err := eventlog.ReplayBounds(ctx, js, eventlog.ReplayOptions{Stream: o.StreamName()})
	if err != nil {
		return audit.Report{}, fmt.Errorf("verify: %w", err)
	}
	opts := audit.VerifyOptions{PublicKey: cfg.PublicKey, CommitKey: cfg.CommitKey}
	opts.Complete, opts.Anchored = audit.Coverage(o.Range(), first)
	if opts.Complete {
		of := cfg.CheckpointsOf
		if of == "" {
			of = eventlog.EventsStream
		}
		if opts.Checkpoints, err = Read(ctx, js, cfg.CheckpointsStream, of); err != nil {
			return audit.Report{}, fmt.Errorf("verify: %w", err)
		}
		if o.To != 0 {
			opts.Checkpoints = slices.DeleteFunc(opts.Checkpoints, func(c audit.Checkpoint) bool { return c.Seq > o.To })
		}
	}
	if cfg.Views {
		if !opts.Complete {
			return audit.Report{}, fmt.Errorf("verify: comparing views needs a replay of the whole stream (no client, time or start selection)")
		}
		live, err := readLiveViewsCaughtUp(ctx, js, cfg.ViewsWait)
		switch {
		case errors.Is(err, client.ErrNoViews):
		case err != nil:
			return audit.Report{}, fmt.Errorf("verify: %w", err)
		default:
			opts.Views = audit.NewViewCheck(live)
		}
	}
	r, err := audit.Verify(ctx, eventlog.NewLog(js, o.Stream, o.Batch), o.Range(), opts, cfg.Progress)
	if err != nil {
		return audit.Report{}, fmt.Errorf("verify: %w", err)
	}
	return r, nil
}

// readLiveViewsCaughtUp reads the live views once they reflect the log's last commit
// as it is now, waiting up to wait (default 5s) for a busy projector; after that it
// returns them as they are, with Head set, so that views behind the log (a stalled
// projector) are a fault rather than "equal at their own sequence".
func readLiveViewsCaughtUp(ctx context.Context, js jetstream.JetStream, wait time.Duration) (audit.LiveViews, error) {
	if wait <= 0 {
		wait = 5 * time.Second
	}
	head, err := lastCommit(ctx, js)
	if err != nil {
		return audit.LiveViews{}, fmt.Errorf("read live views: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		live, err := liveViews(ctx, js)
		if err != nil {
			return live, err
		}
		live.Head = head
		if audit.NewViewCheck(live).Target() >= head || time.Now().After(deadline) {
			return live, nil
		}
		select {
		case <-ctx.Done():
			return live, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// lastCommit is the sequence of the log's last commit (0: none).
func lastCommit(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	st, err := js.Stream(ctx, eventlog.EventsStream)
	if err != nil {
		return 0, fmt.Errorf("last commit: %w", err)
	}
	m, err := st.GetLastMsgForSubject(ctx, eventlog.EventSubjects)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("last commit: %w", err)
	}
	return m.Sequence, nil
}
