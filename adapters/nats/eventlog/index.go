package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/internal/leaderget"
)

// The log's indexes (the applied ids, the refusals) are KV buckets of stream
// positions by key: written by studyd beside the log, read with one direct get (or,
// where a replica's lag must not count, from the bucket's leader: lookUpLatest).

// ensureBucket creates the bucket cfg describes if it does not exist.
func ensureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			kv, err = js.KeyValue(ctx, cfg.Bucket) // another instance created it first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// index returns the bucket name, looked up on first use and kept in *cached.
func (s *Store) index(ctx context.Context, name string, cached *jetstream.KeyValue) (jetstream.KeyValue, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if *cached != nil {
		return *cached, nil
	}
	kv, err := s.js.KeyValue(ctx, name)
	if err != nil {
		return nil, storeError("look up bucket "+name, err)
	}
	*cached = kv
	return kv, nil
}

// lookUp reads key's value from kv; ok is false if kv has no such key.
func lookUp(ctx context.Context, kv jetstream.KeyValue, key, op string) (value []byte, ok bool, err error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, storeError(op, err)
	}
	return e.Value(), true, nil
}

// lookUpLatest is lookUp read from the bucket's stream leader, which has every
// acknowledged write.
func (s *Store) lookUpLatest(ctx context.Context, bucket, key, op string) (value []byte, ok bool, err error) {
	m, err := leaderget.Last(ctx, s.js.Conn(), "KV_"+bucket, "$KV."+bucket+"."+key)
	if err != nil {
		return nil, false, storeError(op, err)
	}
	if m.Seq == 0 {
		return nil, false, nil
	}
	if deleted, err := leaderget.KVDeleted(m); err != nil || deleted {
		return nil, false, err
	}
	return m.Data, true, nil
}

// putPosition sets key to pos in kv: one put, acknowledged by the server.
func putPosition(ctx context.Context, kv jetstream.KeyValue, key string, pos uint64, op string) error {
	if _, err := kv.Put(ctx, key, strconv.AppendUint(nil, pos, 10)); err != nil {
		return storeError(op, err)
	}
	return nil
}
