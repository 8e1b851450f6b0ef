package checkpoint

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

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/audit"
)

// Signed checkpoints live in their own stream rather than in STUDYD_EVENTS: a
// checkpoint is a statement about the events stream, so it must not be one of the
// messages it covers, and a separate stream keeps the events stream's subjects and
// sequence to commits and rejections alone. It is append-only like the log.
const (
	// Stream holds the signed checkpoints of the events stream.
	Stream = "STUDYD_CHECKPOINTS"
	// Subject is the one subject of Stream.
	Subject = "studyd.ckpt"
)

// ErrRace: another writer published a checkpoint first; the caller may retry.
var ErrRace = errors.New("checkpoint: another checkpoint was written concurrently")

// StreamConfig is the configuration EnsureStream creates.
func StreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        Stream,
		Description: "studyd signed checkpoints of " + eventlog.EventsStream + " (running sha256 over every message, ed25519-signed)",
		Subjects:    []string{Subject},
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

// EnsureStream creates STUDYD_CHECKPOINTS if it does not exist.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	st, err := js.Stream(ctx, Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, StreamConfig(replicas))
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = js.Stream(ctx, Stream)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", Stream, err)
	}
	return st, nil
}

// Options name the streams a checkpoint is about and kept in. The zero value is
// usable: eventlog.EventsStream and Stream.
type Options struct {
	Events      string
	Checkpoints string
	Replicas    int
}

func (o Options) withDefaults() Options {
	if o.Events == "" {
		o.Events = eventlog.EventsStream
	}
	if o.Checkpoints == "" {
		o.Checkpoints = Stream
	}
	return o
}

// Write signs and publishes a checkpoint of STUDYD_EVENTS up to its last
// sequence now. It reads only what was appended since the previous checkpoint,
// continuing that checkpoint's digest (whose own correctness the verifier checks). If
// nothing was appended since, it returns the previous checkpoint and writes nothing.
// ErrRace if another writer published one meanwhile. o names the streams.
func Write(ctx context.Context, js jetstream.JetStream, key ed25519.PrivateKey, o Options) (audit.Checkpoint, error) {
	o = o.withDefaults()
	if o.Checkpoints == Stream {
		if _, err := EnsureStream(ctx, js, o.Replicas); err != nil {
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
	_, last, ok, err := eventlog.ReplayBounds(ctx, js, eventlog.ReplayOptions{Stream: o.Events})
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("write checkpoint: %w", err)
	}
	if !ok || last <= digest.Seq {
		return prev, nil
	}
	err = eventlog.Replay(ctx, js, eventlog.ReplayOptions{Stream: o.Events, From: digest.Seq + 1, To: last}, func(e audit.Entry) error {
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
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: Subject, Data: body},
		jetstream.WithExpectStream(o.Checkpoints), jetstream.WithExpectLastSequencePerSubject(prevSeq))
	if eventlog.IsConflict(err) {
		return audit.Checkpoint{}, fmt.Errorf("write checkpoint: %w: %w", ErrRace, err)
	}
	if err != nil {
		return audit.Checkpoint{}, fmt.Errorf("write checkpoint: %w", err)
	}
	return cp, nil
}

// lastCheckpoint returns the newest checkpoint and its sequence in the checkpoints
// stream (0: none yet).
func lastCheckpoint(ctx context.Context, js jetstream.JetStream, o Options) (audit.Checkpoint, uint64, error) {
	st, err := js.Stream(ctx, o.Checkpoints)
	if err != nil {
		return audit.Checkpoint{}, 0, fmt.Errorf("last checkpoint: %w", err)
	}
	m, err := st.GetLastMsgForSubject(ctx, Subject)
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

// Read returns every checkpoint of the events stream named events (all of
// them if ""), in order of the sequence they cover. A missing checkpoints stream
// means none.
func Read(ctx context.Context, js jetstream.JetStream, checkpoints, events string) ([]audit.Checkpoint, error) {
	if checkpoints == "" {
		checkpoints = Stream
	}
	var out []audit.Checkpoint
	err := eventlog.Replay(ctx, js, eventlog.ReplayOptions{Stream: checkpoints, Subjects: []string{Subject}}, func(e audit.Entry) error {
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

// DefaultEvery is how often a Writer writes a checkpoint by default.
const DefaultEvery = time.Minute

// WriterConfig tunes a Writer. The zero value is usable.
type WriterConfig struct {
	Every   time.Duration // between checkpoints; default DefaultEvery
	Streams Options       // the streams; zero: STUDYD_EVENTS into STUDYD_CHECKPOINTS
	Logger  *slog.Logger  // default: discard
}

// Writer writes a checkpoint periodically, for the service to run beside the
// projector.
type Writer struct {
	js  jetstream.JetStream
	key ed25519.PrivateKey
	cfg WriterConfig
}

// NewWriter returns a writer signing with key. It does no I/O: Run writes.
func NewWriter(js jetstream.JetStream, key ed25519.PrivateKey, cfg WriterConfig) *Writer {
	if cfg.Every <= 0 {
		cfg.Every = DefaultEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Writer{js: js, key: key, cfg: cfg}
}

// Run writes a checkpoint every interval until ctx ends, then returns nil. Failures
// are logged and retried at the next tick: a missed checkpoint weakens nothing already
// signed.
func (w *Writer) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			cp, err := Write(ctx, w.js, w.key, w.cfg.Streams)
			if err != nil {
				if ctx.Err() == nil {
					w.cfg.Logger.Warn("checkpoint failed", "err", err)
				}
				continue
			}
			w.cfg.Logger.Debug("checkpoint", "seq", cp.Seq, "count", cp.Count, "digest", cp.Digest)
		}
	}
}
