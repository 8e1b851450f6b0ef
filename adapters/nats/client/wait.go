package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// waitPoll is how often the waits below look again.
const waitPoll = 100 * time.Millisecond

// ViewsSeq returns the log sequence every view reflects: the projector's checkpoint
// (0 before its first flush).
func ViewsSeq(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	kv, err := js.KeyValue(ctx, ProjectionBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("views checkpoint: %w", err)
	}
	cp, _, err := LoadViewCheckpoint(ctx, kv, NearestEntry)
	if err != nil {
		return 0, fmt.Errorf("views: %w", err)
	}
	return cp.Seq, nil
}

// WaitViews waits until the views reflect at least minSeq and returns the sequence
// they reflect; it returns at once when minSeq is 0. It gives up when ctx ends.
func WaitViews(ctx context.Context, js jetstream.JetStream, minSeq uint64) (uint64, error) {
	for {
		seq, err := ViewsSeq(ctx, js)
		if err != nil || seq >= minSeq {
			return seq, err
		}
		select {
		case <-ctx.Done():
			return seq, fmt.Errorf("the views reflect seq %d, not yet %d: %w", seq, minSeq, ctx.Err())
		case <-time.After(waitPoll):
		}
	}
}

// Backlog is what studyd has yet to do: the commands waiting in STUDYD_CMDS, and the
// log sequences the views have yet to fold.
type Backlog struct {
	Commands  uint64 `json:"commands"`  // messages in STUDYD_CMDS: received, not yet decided
	LastSeq   uint64 `json:"last_seq"`  // STUDYD_EVENTS' last sequence
	ViewsSeq  uint64 `json:"views_seq"` // the sequence the views reflect
	ViewsLag  uint64 `json:"views_lag"` // LastSeq - ViewsSeq
	Decided   bool   `json:"decided"`   // no command waits
	Reflected bool   `json:"reflected"` // the views reflect the whole log
}

// ReadBacklog reads the backlog once; events names the log's stream (STUDYD_EVENTS).
func ReadBacklog(ctx context.Context, js jetstream.JetStream, events string) (Backlog, error) {
	var b Backlog
	cmds, err := js.Stream(ctx, CommandsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return b, ErrNoCommandsStream
	}
	if err != nil {
		return b, fmt.Errorf("backlog: %w", err)
	}
	ci, err := cmds.Info(ctx)
	if err != nil {
		return b, fmt.Errorf("backlog: %w", err)
	}
	b.Commands = ci.State.Msgs
	evs, err := js.Stream(ctx, events)
	if err != nil {
		return b, fmt.Errorf("backlog: %w", err)
	}
	ei, err := evs.Info(ctx)
	if err != nil {
		return b, fmt.Errorf("backlog: %w", err)
	}
	b.LastSeq = ei.State.LastSeq
	if b.ViewsSeq, err = ViewsSeq(ctx, js); err != nil {
		return b, err
	}
	if b.LastSeq > b.ViewsSeq {
		b.ViewsLag = b.LastSeq - b.ViewsSeq
	}
	b.Decided, b.Reflected = b.Commands == 0, b.ViewsLag == 0
	return b, nil
}

// WaitDone waits until studyd has decided every command in STUDYD_CMDS and the views
// reflect every commit that made, calling progress (if set) after each look. stall
// bounds the time without any progress (the backlog neither shrinking nor the views
// advancing); 0 means no bound but ctx.
func WaitDone(ctx context.Context, js jetstream.JetStream, events string, stall time.Duration, progress func(Backlog)) (Backlog, error) {
	var last Backlog
	lastMove := time.Now()
	for first := true; ; first = false {
		b, err := ReadBacklog(ctx, js, events)
		if err != nil {
			return b, err
		}
		if progress != nil {
			progress(b)
		}
		if b.Decided && b.Reflected {
			return b, nil
		}
		if first || b.Commands != last.Commands || b.ViewsSeq != last.ViewsSeq {
			last, lastMove = b, time.Now()
		} else if stall > 0 && time.Since(lastMove) > stall {
			return b, fmt.Errorf("no progress for %s: %d commands waiting, views at seq %d of %d (is studyd running?)",
				stall, b.Commands, b.ViewsSeq, b.LastSeq)
		}
		select {
		case <-ctx.Done():
			return b, fmt.Errorf("%d commands waiting, views at seq %d of %d: %w", b.Commands, b.ViewsSeq, b.LastSeq, ctx.Err())
		case <-time.After(waitPoll):
		}
	}
}
