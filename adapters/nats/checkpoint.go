package natsadapter

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/audit"
)

// Signed checkpoints live in their own stream rather than in STUDYD_EVENTS: a
// checkpoint is a statement about the events stream, so it must not be one of the
// messages it covers, and a separate stream keeps the events stream's subjects and
// sequence to commits and rejections alone. It is append-only like the log.
const (
	// CheckpointsStream holds the signed checkpoints of the events stream.
	CheckpointsStream = "STUDYD_CHECKPOINTS"
	// CheckpointSubject is the one subject of CheckpointsStream.
	CheckpointSubject = "studyd.ckpt"
)

// ErrCheckpointRace: another writer published a checkpoint first; the caller may retry.
var ErrCheckpointRace = errors.New("natsadapter: another checkpoint was written concurrently")

// CheckpointsStreamConfig is the configuration EnsureCheckpointsStream creates.
func CheckpointsStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        CheckpointsStream,
		Description: "studyd signed checkpoints of " + EventsStream + " (running sha256 over every message, ed25519-signed)",
		Subjects:    []string{CheckpointSubject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxMsgs:     -1,
		MaxBytes:    -1,
		Discard:     jetstream.DiscardNew,
		DenyDelete:  true,
		DenyPurge:   true,
		AllowDirect: true,
		Replicas:    max(replicas, 1),
	}
}

// EnsureCheckpointsStream creates STUDYD_CHECKPOINTS if it does not exist.
func EnsureCheckpointsStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, CheckpointsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, CheckpointsStreamConfig(replicas))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = js.Stream(ctx, CheckpointsStream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", CheckpointsStream, err)
	}
	return st, nil
}

// CheckpointOptions name the streams a checkpoint is about and kept in; zero values
// are EventsStream and CheckpointsStream.
type CheckpointOptions struct {
	Events      string
	Checkpoints string
	Replicas    int
}

func (o CheckpointOptions) withDefaults() CheckpointOptions {
	if o.Events == "" {
		o.Events = EventsStream
	}
	if o.Checkpoints == "" {
		o.Checkpoints = CheckpointsStream
	}
	return o
}

// WriteCheckpoint signs and publishes a checkpoint of STUDYD_EVENTS up to its last
// sequence now. It reads only what was appended since the previous checkpoint,
// continuing that checkpoint's digest (whose own correctness the verifier checks). If
// nothing was appended since, it returns the previous checkpoint and writes nothing.
// ErrCheckpointRace if another writer published one meanwhile.
func WriteCheckpoint(ctx context.Context, js jetstream.JetStream, key ed25519.PrivateKey) (audit.Checkpoint, error) {
	return WriteCheckpointWith(ctx, js, key, CheckpointOptions{})
}

// WriteCheckpointWith is WriteCheckpoint on the streams o names.
func WriteCheckpointWith(ctx context.Context, js jetstream.JetStream, key ed25519.PrivateKey, o CheckpointOptions) (audit.Checkpoint, error) {
	o = o.withDefaults()
	if o.Checkpoints == CheckpointsStream {
		if _, err := EnsureCheckpointsStream(ctx, js, o.Replicas); err != nil {
			return audit.Checkpoint{}, err
		}
	}
	prev, prevSeq, err := lastCheckpoint(ctx, js, o)
	if err != nil {
		return audit.Checkpoint{}, err
	}
	digest := &audit.LogDigest{}
	if prevSeq != 0 {
		if digest, err = audit.ResumeDigest(prev); err != nil {
			return audit.Checkpoint{}, fmt.Errorf("write checkpoint: %w", err)
		}
	}
	_, last, ok, err := ReplayBounds(ctx, js, ReplayOptions{Stream: o.Events})
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("write checkpoint: %w", err)
	}
	if !ok || last <= digest.Seq {
		return prev, nil
	}
	err = Replay(ctx, js, ReplayOptions{Stream: o.Events, From: digest.Seq + 1, To: last}, func(e audit.Entry) error {
		digest.Add(e.Seq, e.Subject, sha256.Sum256(e.Data))
		return nil
	})
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("write checkpoint: %w", err)
	}
	cp := audit.Checkpoint{Stream: o.Events, Seq: digest.Seq, Count: digest.Count, Digest: digest.Hex(),
		At: time.Now().UTC()}.Sign(key)
	body, err := json.Marshal(cp)
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("write checkpoint: %w", err)
	}
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: CheckpointSubject, Data: body},
		jetstream.WithExpectStream(o.Checkpoints), jetstream.WithExpectLastSequencePerSubject(prevSeq))
	if isSequenceConflict(err) {
		return audit.Checkpoint{}, fmt.Errorf("write checkpoint: %w: %w", ErrCheckpointRace, err)
	}
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("write checkpoint: %w", err)
	}
	return cp, nil
}

// lastCheckpoint returns the newest checkpoint and its sequence in the checkpoints
// stream (0: none yet).
func lastCheckpoint(ctx context.Context, js jetstream.JetStream, o CheckpointOptions) (audit.Checkpoint, uint64, error) {
	st, err := js.Stream(ctx, o.Checkpoints)
	if err != nil {
		return audit.Checkpoint{}, 0, fmt.Errorf("last checkpoint: %w", err)
	}
	m, err := st.GetLastMsgForSubject(ctx, CheckpointSubject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return audit.Checkpoint{}, 0, nil
	}
	if err != nil {
		return audit.Checkpoint{}, 0, fmt.Errorf("last checkpoint: %w", err)
	}
	var cp audit.Checkpoint
	if err := json.Unmarshal(m.Data, &cp); err != nil {
		return audit.Checkpoint{}, 0, fmt.Errorf("last checkpoint at seq %d: %w", m.Sequence, err)
	}
	return cp, m.Sequence, nil
}

// ReadCheckpoints returns every checkpoint of the events stream named events (all of
// them if ""), in order of the sequence they cover. A missing checkpoints stream
// means none.
func ReadCheckpoints(ctx context.Context, js jetstream.JetStream, checkpoints, events string) ([]audit.Checkpoint, error) {
	if checkpoints == "" {
		checkpoints = CheckpointsStream
	}
	var out []audit.Checkpoint
	err := Replay(ctx, js, ReplayOptions{Stream: checkpoints, Subjects: []string{CheckpointSubject}}, func(e audit.Entry) error {
		var cp audit.Checkpoint
		if err := json.Unmarshal(e.Data, &cp); err != nil {
			return fmt.Errorf("checkpoint at seq %d of %s: %w", e.Seq, checkpoints, err)
		}
		if events == "" || cp.Stream == events {
			out = append(out, cp)
		}
		return nil
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoints: %w", err)
	}
	slices.SortStableFunc(out, func(a, b audit.Checkpoint) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	return out, nil
}

// RunCheckpoints writes a checkpoint every interval until ctx ends, for the service to
// run beside the projector. Failures are logged and retried at the next tick: a
// missed checkpoint weakens nothing already signed.
func RunCheckpoints(ctx context.Context, js jetstream.JetStream, key ed25519.PrivateKey, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			cp, err := WriteCheckpoint(ctx, js, key)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("checkpoint failed", "err", err)
				}
				continue
			}
			log.Debug("checkpoint", "seq", cp.Seq, "count", cp.Count, "digest", cp.Digest)
		}
	}
}
