package eventlog

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/domain"
)

// RefusedBucket is the KV bucket of the command ids refused to each client: key
// AppliedKey(client, command id), value the position of the latest recorded rejection
// of that id. It makes finding a command's earlier refusal one get, however often its
// client was refused (docs/commands.md, "Idempotency").
const RefusedBucket = "studyd_refused"

// RefusedConfig is the configuration EnsureRefusalIndex creates: AppliedConfig's
// shape, one value per key (the latest refusal).
func RefusedConfig(replicas int) jetstream.KeyValueConfig {
	cfg := AppliedConfig(replicas)
	cfg.Bucket = RefusedBucket
	cfg.Description = "studyd: the latest recorded refusal of each command id per client"
	return cfg
}

// EnsureRefusalIndex creates the refusal bucket if it does not exist. EnsureEventsStream
// calls it: the index is part of the log.
func EnsureRefusalIndex(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	return ensureBucket(ctx, js, RefusedConfig(replicas))
}

// Refused implements app.RefusalIndex (checked in refused_test.go): one direct get. A
// value this build did not write counts as no refusal: the command is refused anew.
func (s *Store) Refused(ctx context.Context, client domain.ClientID, commandID string) (uint64, bool, error) {
	op := "refused " + string(client)
	if err := client.Validate(); err != nil {
		return 0, false, fmt.Errorf("%s: %w", op, err)
	}
	kv, err := s.index(ctx, RefusedBucket, &s.refused)
	if err != nil {
		return 0, false, err
	}
	v, ok, err := lookUp(ctx, kv, AppliedKey(client, commandID), op)
	if err != nil || !ok {
		return 0, false, err
	}
	pos, err := strconv.ParseUint(string(v), 10, 64)
	if err != nil || pos == 0 {
		return 0, false, nil
	}
	return pos, true, nil
}

// RememberRefusal implements app.RefusalIndex: one put, acknowledged by the server,
// over the id's earlier refusal if any.
func (s *Store) RememberRefusal(ctx context.Context, client domain.ClientID, commandID string, pos uint64) error {
	op := "remember refusal " + string(client)
	if err := client.Validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	kv, err := s.index(ctx, RefusedBucket, &s.refused)
	if err != nil {
		return err
	}
	return putPosition(ctx, kv, AppliedKey(client, commandID), pos, op)
}
