package eventlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
)

// The event log's stream and subjects.
const (
	// EventsStream holds every commit and every rejection, in one sequence.
	EventsStream = "STUDYD_EVENTS"
	// EventSubjects matches every client's commits.
	EventSubjects = "studyd.evt.>"
	// RejectionSubjects matches every recorded rejection.
	RejectionSubjects = "studyd.rej.>"
	// DefaultDuplicates is the stream's Nats-Msg-Id dedup window: long enough to cover a
	// publisher's retries; older re-sends are caught by the commit's Recent list.
	DefaultDuplicates = 2 * time.Minute

	EventPrefix     = audit.CommitPrefix
	RejectionPrefix = audit.RejectionPrefix
	// noClientToken stands for a rejection whose client is unknown or not a valid token.
	noClientToken = "_"
)

// ErrStreamMismatch: an existing stream has a setting studyd cannot run with. It is
// never "fixed" silently, because the setting may be an operator's deliberate choice.
var ErrStreamMismatch = errors.New("eventlog: stream settings differ")

// EventSubject is the subject of a client's commits: studyd.evt.<client>.
func EventSubject(client domain.ClientID) string { return EventPrefix + string(client) }

// RejectionSubject is the subject of a client's rejections: studyd.rej.<client>, or
// studyd.rej._ when the client is unknown or not a valid subject token.
func RejectionSubject(client domain.ClientID) string {
	if client.Validate() != nil {
		return RejectionPrefix + noClientToken
	}
	return RejectionPrefix + string(client)
}

// EventsStreamConfig is the configuration EnsureEventsStream creates.
func EventsStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        EventsStream,
		Description: "studyd event log: one commit per command on studyd.evt.<client>, rejections on studyd.rej.<client>",
		Subjects:    []string{EventSubjects, RejectionSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		// No limits: history is deleted only deliberately, never as a side effect.
		MaxAge:            0,
		MaxMsgs:           -1,
		MaxBytes:          -1,
		MaxMsgsPerSubject: -1,
		Discard:           jetstream.DiscardNew,
		DenyDelete:        true,
		DenyPurge:         true,
		AllowDirect:       true, // Load is one direct get of the client's last message
		// AppendBatch may write a batch's commits as one atomic batch: one fsync.
		AllowAtomicPublish: true,
		Duplicates:         DefaultDuplicates,
		Replicas:           max(replicas, 1),
	}
}

// EnsureEventsStream creates STUDYD_EVENTS (and its indexes: the applied ids,
// AppliedBucket, and the refusals, RefusedBucket), or checks and updates an existing
// one. It
// returns ErrStreamMismatch, naming the setting with the found and wanted values, if
// the existing stream differs where studyd's guarantees depend on it (storage,
// retention, deny delete/purge, subjects, limits that would drop history); settings
// that only need raising (direct get, atomic batches, dedup window, replicas) are updated.
func EnsureEventsStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	if _, err := EnsureAppliedIndex(ctx, js, replicas); err != nil {
		return nil, err
	}
	if _, err := EnsureRefusalIndex(ctx, js, replicas); err != nil {
		return nil, err
	}
	want := EventsStreamConfig(replicas)
	stream, err := js.Stream(ctx, EventsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		stream, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			stream, err = js.Stream(ctx, EventsStream) // another instance created it first
		} else if err == nil {
			return stream, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", EventsStream, err)
	}
	have := stream.CachedInfo().Config
	if err := checkEventsStream(have, want); err != nil {
		return nil, err
	}
	update := have
	update.AllowDirect = true
	update.AllowAtomicPublish = true
	update.Duplicates = max(have.Duplicates, want.Duplicates)
	update.Replicas = max(have.Replicas, want.Replicas)
	if update.AllowDirect == have.AllowDirect && update.AllowAtomicPublish == have.AllowAtomicPublish &&
		update.Duplicates == have.Duplicates && update.Replicas == have.Replicas {
		return stream, nil
	}
	stream, err = js.UpdateStream(ctx, update)
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: update: %w", EventsStream, err)
	}
	return stream, nil
}

func checkEventsStream(have, want jetstream.StreamConfig) error {
	mismatch := func(setting string, found, wanted any) error {
		return fmt.Errorf("%w: stream %s has %s %v, want %v", ErrStreamMismatch, EventsStream, setting, found, wanted)
	}
	switch {
	case have.Storage != want.Storage:
		return mismatch("storage", have.Storage, want.Storage)
	case have.Retention != want.Retention:
		return mismatch("retention", have.Retention, want.Retention)
	case have.DenyDelete != want.DenyDelete:
		return mismatch("deny_delete", have.DenyDelete, want.DenyDelete)
	case have.DenyPurge != want.DenyPurge:
		return mismatch("deny_purge", have.DenyPurge, want.DenyPurge)
	case have.MaxAge != 0:
		return mismatch("max_age", have.MaxAge, "0 (no limit)")
	case have.MaxMsgs > 0:
		return mismatch("max_msgs", have.MaxMsgs, "-1 (no limit)")
	case have.MaxMsgsPerSubject > 0:
		return mismatch("max_msgs_per_subject", have.MaxMsgsPerSubject, "-1 (no limit)")
	case have.MaxBytes > 0 && have.Discard != jetstream.DiscardNew:
		// A byte cap is tolerable only if it refuses new writes instead of dropping history.
		return mismatch("discard with max_bytes set", have.Discard, jetstream.DiscardNew)
	}
	for _, s := range want.Subjects {
		if !slices.Contains(have.Subjects, s) {
			return mismatch("subjects", have.Subjects, fmt.Sprintf("%v (missing %s)", want.Subjects, s))
		}
	}
	return nil
}
