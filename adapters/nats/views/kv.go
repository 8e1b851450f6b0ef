package views

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/internal/leaderget"
)

// Errors of the projections' KV layer.
var (
	// ErrLeaseLost: another projector holds the single-writer lease, or wrote a key this
	// one thought it owned. The projector drops its state and competes again.
	ErrLeaseLost = errors.New("views: projector lease lost")
	// ErrUndecodable: a commit in the log could not be decoded; the projector stops
	// rather than silently skip it and publish a wrong view.
	ErrUndecodable = errors.New("views: undecodable commit in the log")
)

// DefaultLeaseTTL is how long a projector's lease outlives its last renewal.
const DefaultLeaseTTL = 5 * time.Second

// viewBuckets creates (or opens) the projection buckets. The lease bucket's TTL is
// fixed when it is first created; later instances use the bucket as it is.
func viewBuckets(ctx context.Context, js jetstream.JetStream, replicas int, leaseTTL time.Duration) (uptake, studies, studyTime, rollouts, proj, lease jetstream.KeyValue, err error) {
	for _, b := range []struct {
		kv   *jetstream.KeyValue
		name string
	}{{&uptake, client.UptakeBucket}, {&studies, client.StudiesBucket}, {&studyTime, client.StudyTimeBucket},
		{&rollouts, client.RolloutsBucket}, {&proj, client.ProjectionBucket}} {
		if *b.kv, err = client.OpenViewBucket(ctx, js, b.name, replicas); err != nil {
			return
		}
	}
	cfg := jetstream.KeyValueConfig{Bucket: client.LeaseBucket, Description: "studyd projector single-writer lease",
		Storage: jetstream.MemoryStorage, TTL: leaseTTL, Replicas: max(replicas, 1)}
	lease, err = js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		lease, err = js.KeyValue(ctx, cfg.Bucket)
	}
	if err != nil {
		err = fmt.Errorf("open kv bucket %s: %w", cfg.Bucket, err)
	}
	return
}

// leaderEntry reads a view key from its bucket's stream leader: the revision a
// compare-and-set write must name. KeyValue.Get is a direct get, answered by a replica
// (NATS prefers one on the client's own server) that may trail the leader; every write
// based on its stale revision would fail and restart the term, for as long as that
// replica lagged.
func (p *Projector) leaderEntry(ctx context.Context, kv jetstream.KeyValue, key string) (client.KeyEntry, error) {
	m, err := leaderget.Last(ctx, p.js.Conn(), "KV_"+kv.Bucket(), "$KV."+kv.Bucket()+"."+key)
	if err != nil || m.Seq == 0 {
		return client.KeyEntry{}, err
	}
	deleted, err := leaderget.KVDeleted(m)
	switch {
	case err != nil:
		return client.KeyEntry{}, fmt.Errorf("%s %s: %w", kv.Bucket(), key, err)
	case deleted:
		return client.KeyEntry{Rev: m.Seq}, nil
	}
	return client.KeyEntry{Value: m.Data, Rev: m.Seq}, nil
}

// kvWrite is one compare-and-set write of a view key.
type kvWrite struct {
	bucket jetstream.KeyValue
	key    string
	value  []byte
	rev    uint64 // the revision the writer last saw; 0 = the key must not exist
	del    bool   // write a delete marker instead of a value
	done   func(newRev uint64)
}

// writeAll publishes every write concurrently (async publishes with the expected
// last-subject-sequence header, i.e. KeyValue.Update pipelined) and waits for all the
// acks. A revision mismatch on any key means another writer touched it: ErrLeaseLost.
// Keys whose write succeeded get their new revision through done. Acks not back
// within timeout fail the batch: a write may still land later, which the stamps on
// the keys make harmless to whoever folds next.
func writeAll(ctx context.Context, js jetstream.JetStream, writes []kvWrite, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(writes))
	for i := range writes {
		w := &writes[i]
		m := nats.NewMsg("$KV." + w.bucket.Bucket() + "." + w.key)
		m.Data = w.value
		if w.del {
			m.Header.Set("KV-Operation", "DEL")
		}
		f, err := js.PublishMsgAsync(m, jetstream.WithExpectLastSequencePerSubject(w.rev))
		if err != nil {
			return fmt.Errorf("write %s %s: %w", w.bucket.Bucket(), w.key, err)
		}
		futures = append(futures, f)
	}
	var first error
	for i, f := range futures {
		select {
		case ack := <-f.Ok():
			if writes[i].done != nil {
				writes[i].done(ack.Sequence)
			}
		case err := <-f.Err():
			if eventlog.IsConflict(err) {
				err = fmt.Errorf("%w: %s %s changed under us: %w", ErrLeaseLost, writes[i].bucket.Bucket(), writes[i].key, err)
			} else {
				err = fmt.Errorf("write %s %s: %w", writes[i].bucket.Bucket(), writes[i].key, err)
			}
			first = cmpErr(first, err)
		case <-ctx.Done():
			return fmt.Errorf("write views: %d of %d acks missing: %w", len(futures)-i, len(futures), ctx.Err())
		}
	}
	return first
}

func cmpErr(first, err error) error {
	if first == nil || (errors.Is(err, ErrLeaseLost) && !errors.Is(first, ErrLeaseLost)) {
		return err
	}
	return first
}
