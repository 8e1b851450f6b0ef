package views

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
)

// ErrLogLost: STUDYD_EVENTS is not the log the views were folded from — it is missing,
// was deleted and re-created, or ends before the views' checkpoint. studyd refuses to
// run on it rather than start a new log under views of the old one.
var ErrLogLost = errors.New("views: the event log lost its history")

// logIdentityKey is the projection bucket's record of which log the views fold: the
// first message's sequence and the sha256 of its subject and bytes. DenyDelete keeps
// that message for the log's life; a re-created stream has another (or none).
const logIdentityKey = "log"

// LogIdentity is the JSON value of logIdentityKey.
type LogIdentity struct {
	FirstSeq  uint64 `json:"first_seq"`
	FirstHash string `json:"first_hash"`
}

// recovery is what ErrLogLost's message tells an operator.
const recovery = "restore STUDYD_EVENTS from a backup (a copy of the data directory on the embedded default; " +
	"nats stream restore, as admin, on a cluster), or, to continue on the log as it is, start studyd once with " +
	"--reset-views: it deletes the views (" + client.ProjectionBucket + ", " + client.UptakeBucket + ", " +
	client.StudiesBucket + ", " + client.StudyTimeBucket + ", " + client.RolloutsBucket + ") and rebuilds them from that log; see README, Security"

// ResetViews deletes the view buckets, so that the projector rebuilds them from the
// log as it is: the deliberate way past ErrLogLost.
func ResetViews(ctx context.Context, js jetstream.JetStream) error {
	for _, b := range []string{client.ProjectionBucket, client.UptakeBucket, client.StudiesBucket, client.StudyTimeBucket, client.RolloutsBucket} {
		if err := js.DeleteKeyValue(ctx, b); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
			return fmt.Errorf("reset views: delete %s: %w", b, err)
		}
	}
	return nil
}

// CheckLog compares STUDYD_EVENTS with what the views record of it, before studyd
// creates or uses the stream: if views exist, the log must exist, reach their
// checkpoint, and begin with the message they recorded. The first time the log has a
// message, CheckLog records it. A fresh install (no views) passes.
func CheckLog(ctx context.Context, js jetstream.JetStream) error {
	proj, err := js.KeyValue(ctx, client.ProjectionBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check log: %w", err)
	}
	cp, _, err := client.LoadViewCheckpoint(ctx, proj, client.NearestEntry)
	if err != nil {
		return fmt.Errorf("check log: %w", err)
	}
	var id *LogIdentity
	switch e, err := proj.Get(ctx, logIdentityKey); {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return fmt.Errorf("check log: %w", err)
	default:
		id = new(LogIdentity)
		if err := json.Unmarshal(e.Value(), id); err != nil {
			return fmt.Errorf("check log: %s %s: %w", client.ProjectionBucket, logIdentityKey, err)
		}
	}
	stream, err := js.Stream(ctx, eventlog.EventsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if cp.Seq == 0 && id == nil {
			return nil // views made, nothing folded yet: nothing to lose
		}
		return fmt.Errorf("%w: %s is missing, but the views reflect it up to seq %d; %s", ErrLogLost, eventlog.EventsStream, cp.Seq, recovery)
	}
	if err != nil {
		return fmt.Errorf("check log: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("check log: %w", err)
	}
	if info.State.LastSeq < cp.Seq {
		return fmt.Errorf("%w: %s ends at seq %d, before the views' checkpoint at seq %d (deleted and re-created?); %s",
			ErrLogLost, eventlog.EventsStream, info.State.LastSeq, cp.Seq, recovery)
	}
	if info.State.Msgs == 0 {
		if id != nil {
			return fmt.Errorf("%w: %s is empty, but its first message was seq %d; %s", ErrLogLost, eventlog.EventsStream, id.FirstSeq, recovery)
		}
		return nil
	}
	first, err := stream.GetMsg(ctx, info.State.FirstSeq)
	if err != nil {
		return fmt.Errorf("check log: first message: %w", err)
	}
	have := LogIdentity{FirstSeq: first.Sequence, FirstHash: firstHash(first.Subject, first.Data)}
	if id == nil {
		b, _ := json.Marshal(have)
		if _, err := proj.Create(ctx, logIdentityKey, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("check log: record identity: %w", err)
		}
		return nil
	}
	if have != *id {
		return fmt.Errorf("%w: %s begins with another message than the log the views were folded from (seq %d, %.12s; the views recorded seq %d, %.12s): it was re-created; %s",
			ErrLogLost, eventlog.EventsStream, have.FirstSeq, have.FirstHash, id.FirstSeq, id.FirstHash, recovery)
	}
	return nil
}

func firstHash(subject string, data []byte) string {
	h := sha256.New()
	h.Write([]byte(subject))
	h.Write([]byte{0})
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}
