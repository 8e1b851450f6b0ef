package eventlog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/domain"
)

// AppliedBucket is the KV bucket of command ids applied to each client beyond the
// eventstore.RecentCommands a commit carries: key <client>.<32 hex of sha256(command
// id)>, value the position of the commit that applied it. With the commits' Recent
// lists it makes a command id applicable once per client for ever (docs/commands.md,
// "Idempotency").
const AppliedBucket = "studyd_applied"

// AppliedConfig is the configuration EnsureAppliedIndex creates: file storage, one
// value per key, no age, direct gets.
func AppliedConfig(replicas int) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      AppliedBucket,
		Description: "studyd: command ids applied per client beyond those the latest commit carries",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(replicas, 1),
	}
}

// EnsureAppliedIndex creates the applied-id bucket if it does not exist. EnsureEventsStream
// calls it: the index is part of the log.
func EnsureAppliedIndex(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	return ensureBucket(ctx, js, AppliedConfig(replicas))
}

// AppliedKey is the index key of a client's command id. The id is hashed: a command id
// may hold bytes a key may not.
func AppliedKey(client domain.ClientID, commandID string) string {
	sum := sha256.Sum256([]byte(commandID))
	return string(client) + "." + hex.EncodeToString(sum[:16])
}

// Applied implements app.AppliedIndex (checked in applied_test.go: studyctl links this
// package and must not link the command handler): one direct get, which a replica may
// answer from behind (AppliedLatest does not).
func (s *Store) Applied(ctx context.Context, client domain.ClientID, commandID string) (uint64, bool, error) {
	kv, err := s.index(ctx, AppliedBucket, &s.applied)
	if err != nil {
		return 0, false, err
	}
	v, ok, err := lookUp(ctx, kv, AppliedKey(client, commandID), "applied "+string(client))
	return appliedAt(v, ok, err)
}

// AppliedLatest is Applied read from the bucket's leader: app.Handler asks it before a
// refusal and for a redelivered command, either of which may have been applied where
// a lagging replica has not seen it yet.
func (s *Store) AppliedLatest(ctx context.Context, client domain.ClientID, commandID string) (uint64, bool, error) {
	return appliedAt(s.lookUpLatest(ctx, AppliedBucket, AppliedKey(client, commandID), "applied latest "+string(client)))
}

// appliedAt is an index value as Applied returns it.
func appliedAt(v []byte, ok bool, err error) (uint64, bool, error) {
	if err != nil || !ok {
		return 0, false, err
	}
	pos, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil {
		return 0, true, nil // applied; its commit unknown (a value this build did not write)
	}
	return pos, true, nil
}

// Remember implements app.AppliedIndex: one put, acknowledged by the server.
func (s *Store) Remember(ctx context.Context, client domain.ClientID, commandID string, pos uint64) error {
	kv, err := s.index(ctx, AppliedBucket, &s.applied)
	if err != nil {
		return err
	}
	return putPosition(ctx, kv, AppliedKey(client, commandID), pos, "remember "+string(client))
}
