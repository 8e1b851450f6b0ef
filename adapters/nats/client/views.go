package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
)

// ViewCheckpoint is the JSON value of studyd_projection's checkpoint key: every view key
// reflects at least Seq.
type ViewCheckpoint struct {
	Seq    uint64 `json:"seq"`
	Holder string `json:"holder,omitempty"` // the projector that wrote it
}

// KeyEntry is a key's latest value and revision. A key that never existed has
// revision 0; a deleted one has its marker's revision and no value.
type KeyEntry struct {
	Value []byte
	Rev   uint64
}

// EntryGetter reads a key's latest entry.
type EntryGetter func(ctx context.Context, kv jetstream.KeyValue, key string) (KeyEntry, error)

// NearestEntry reads a key with KeyValue.Get: a direct get, answered by the nearest
// replica, which may trail the leader by a little. Right for readers, not for a
// compare-and-set: Get reports a deleted key as missing, revision 0.
func NearestEntry(ctx context.Context, kv jetstream.KeyValue, key string) (KeyEntry, error) {
	e, err := kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return KeyEntry{}, nil
	case err != nil:
		return KeyEntry{}, err
	}
	return KeyEntry{Value: e.Value(), Rev: e.Revision()}, nil
}

// LoadViewCheckpoint reads the checkpoint and its revision through get.
func LoadViewCheckpoint(ctx context.Context, kv jetstream.KeyValue, get EntryGetter) (ViewCheckpoint, uint64, error) {
	e, err := get(ctx, kv, CheckpointKey)
	switch {
	case err != nil:
		return ViewCheckpoint{}, 0, fmt.Errorf("load checkpoint: %w", err)
	case e.Value == nil:
		return ViewCheckpoint{}, e.Rev, nil
	}
	var cp ViewCheckpoint
	if err := json.Unmarshal(e.Value, &cp); err != nil {
		return ViewCheckpoint{}, 0, fmt.Errorf("load checkpoint: %w", err)
	}
	return cp, e.Rev, nil
}

// Views is a snapshot of the projector's KV views.
type Views struct {
	Checkpoint uint64                  // every value reflects at least this sequence
	Uptake     []UptakeValue           // in key order
	Studies    []projections.StudyView // sorted by object and key
	Timeline   []projections.StudyBucket
	Rollouts   []projections.RolloutView // sorted by slug
}

// ViewSet selects the buckets ReadViews reads.
type ViewSet uint8

// View sets.
const (
	UptakeViews ViewSet = 1 << iota
	StudyViews
	TimelineViews
	RolloutViews
	AllViews = UptakeViews | StudyViews | TimelineViews | RolloutViews
)

// ReadViews is the one reader of the materialised views (for tools, audits and tests;
// the query service answers single keys itself): the checkpoint and every live value
// of the buckets in set. It reads again, a few times, if the checkpoint moved
// meanwhile, so that the snapshot is of one moment when the projector is idle. A view
// bucket not created yet is empty; ErrNoViews if no projector ever ran.
func ReadViews(ctx context.Context, js jetstream.JetStream, set ViewSet) (Views, error) {
	proj, err := js.KeyValue(ctx, ProjectionBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return Views{}, fmt.Errorf("read views: %w", ErrNoViews)
	}
	if err != nil {
		return Views{}, fmt.Errorf("read views: %w", err)
	}
	var v Views
	for range 5 {
		before, _, err := LoadViewCheckpoint(ctx, proj, NearestEntry)
		if err != nil {
			return Views{}, fmt.Errorf("read views: %w", err)
		}
		v = Views{Checkpoint: before.Seq}
		for _, read := range []struct {
			set    ViewSet
			bucket string
			add    func([]byte) error
		}{
			{UptakeViews, UptakeBucket, appendJSON(&v.Uptake)},
			{StudyViews, StudiesBucket, appendJSON(&v.Studies)},
			{TimelineViews, StudyTimeBucket, appendJSON(&v.Timeline)},
			{RolloutViews, RolloutsBucket, appendJSON(&v.Rollouts)},
		} {
			if set&read.set == 0 {
				continue
			}
			if err := eachLive(ctx, js, read.bucket, read.add); err != nil {
				return Views{}, fmt.Errorf("read views: %w", err)
			}
		}
		after, _, err := LoadViewCheckpoint(ctx, proj, NearestEntry)
		if err != nil {
			return Views{}, fmt.Errorf("read views: %w", err)
		}
		if after.Seq == before.Seq {
			break
		}
	}
	slices.SortFunc(v.Studies, func(a, b projections.StudyView) int {
		return cmp.Or(cmp.Compare(a.Object, b.Object), cmp.Compare(a.Key, b.Key))
	})
	slices.SortFunc(v.Rollouts, func(a, b projections.RolloutView) int { return cmp.Compare(a.Slug, b.Slug) })
	return v, nil
}

// Projections returns the views in the pure projections' types, e.g. to compare them
// with a fold of the log.
func (v Views) Projections() (*projections.Uptake, *projections.Studies, error) {
	uptake, studies := projections.NewUptake(), projections.NewStudies()
	uptake.Seq, studies.Seq = v.Checkpoint, v.Checkpoint
	for _, u := range v.Uptake {
		k, err := u.Key()
		if err != nil {
			return nil, nil, err
		}
		uptake.Counts[k] = u.Count
	}
	for i := range v.Studies {
		sv := v.Studies[i]
		studies.Views[domain.StudyRef{Object: sv.Object, Key: sv.Key}] = &sv
	}
	return uptake, studies, nil
}

// appendJSON returns a function that decodes a JSON value and appends it to *to.
func appendJSON[T any](to *[]T) func([]byte) error {
	return func(b []byte) error {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*to = append(*to, v)
		return nil
	}
}

// eachLive calls fn with the value of every live key of a bucket; a bucket that does
// not exist yet has none.
func eachLive(ctx context.Context, js jetstream.JetStream, bucket string, fn func([]byte) error) error {
	err := EachValue(ctx, js, bucket, ">", func(_ string, b []byte) error { return fn(b) })
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	return err
}

// EachValue calls fn with every live value of the bucket's keys matching pattern.
func EachValue(ctx context.Context, js jetstream.JetStream, bucket, pattern string, fn func(key string, value []byte) error) error {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return fmt.Errorf("open %s: %w", bucket, err)
	}
	w, err := kv.Watch(ctx, pattern, jetstream.IgnoreDeletes())
	if err != nil {
		return fmt.Errorf("read %s: %w", bucket, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("read %s: watcher closed", bucket)
			}
			if e == nil {
				return nil
			}
			if err := fn(e.Key(), e.Value()); err != nil {
				return fmt.Errorf("read %s %s: %w", bucket, e.Key(), err)
			}
		case <-ctx.Done():
			return fmt.Errorf("read %s: %w", bucket, ctx.Err())
		}
	}
}

// ErrNoViews: no projector has written views (its checkpoint bucket does not exist).
var ErrNoViews = errors.New("client: no projection views")

// ListStudyBuckets returns the studyd_study_time buckets of period (hour or day), of
// study ref or, when ref is nil, of every study. A bucket not yet created has none.
func ListStudyBuckets(ctx context.Context, js jetstream.JetStream, period projections.Period, ref *domain.StudyRef) ([]projections.StudyBucket, error) {
	var out []projections.StudyBucket
	err := EachValue(ctx, js, StudyTimeBucket, StudyTimePattern(period, ref), func(key string, b []byte) error {
		var v projections.StudyBucket
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("study bucket %s: %w", key, err)
		}
		out = append(out, v)
		return nil
	})
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list study buckets: %w", err)
	}
	return out, nil
}
