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

// ListStudyViews returns every materialised study view, sorted by object and key, so
// that a user can find what to ask for without knowing the slugs.
func ListStudyViews(ctx context.Context, js jetstream.JetStream) ([]projections.StudyView, error) {
	var views []projections.StudyView
	err := EachValue(ctx, js, StudiesBucket, ">", func(key string, b []byte) error {
		var v projections.StudyView
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("study view %s: %w", key, err)
		}
		views = append(views, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list studies: %w", err)
	}
	slices.SortFunc(views, func(a, b projections.StudyView) int {
		return cmp.Or(cmp.Compare(a.Object, b.Object), cmp.Compare(a.Key, b.Key))
	})
	return views, nil
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

// ReadViews reads the materialised views back into the projections' types, with the
// checkpoint they reflect at least.
func ReadViews(ctx context.Context, js jetstream.JetStream) (*projections.Uptake, *projections.Studies, uint64, error) {
	uptake, studies := projections.NewUptake(), projections.NewStudies()
	proj, err := js.KeyValue(ctx, ProjectionBucket)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("read views: %w", err)
	}
	cp, _, err := LoadViewCheckpoint(ctx, proj, NearestEntry)
	if err != nil {
		return nil, nil, 0, err
	}
	uptake.Seq, studies.Seq = cp.Seq, cp.Seq
	err = EachValue(ctx, js, UptakeBucket, ">", func(_ string, b []byte) error {
		var v UptakeValue
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		k, err := v.Key()
		if err != nil {
			return err
		}
		uptake.Counts[k] = v.Count
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}
	err = EachValue(ctx, js, StudiesBucket, ">", func(_ string, b []byte) error {
		var v projections.StudyView
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		studies.Views[domain.StudyRef{Object: v.Object, Key: v.Key}] = &v
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}
	return uptake, studies, cp.Seq, nil
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
