// Package pagesource feeds the live study page (adapters/http/page) from JetStream:
// the materialised views in their KV buckets, the projection checkpoint and its KV
// watch, and the state of the log and the command partitions.
package pagesource

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/http/page"
	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
)

// Source reads what the page shows. It is safe for concurrent use.
type Source struct {
	js jetstream.JetStream
}

// Compile-time checks: Source is everything the page reads.
var (
	_ page.Views       = (*Source)(nil)
	_ page.Checkpoints = (*Source)(nil)
	_ page.Fleet       = (*Source)(nil)
)

// New returns a Source reading through js.
func New(js jetstream.JetStream) *Source { return &Source{js: js} }

// Studies returns every study view; none before the projector's first flush.
func (s *Source) Studies(ctx context.Context) ([]projections.StudyView, error) {
	v, err := client.ReadViews(ctx, s.js, client.StudyViews)
	if errors.Is(err, client.ErrNoViews) {
		return nil, nil
	}
	return v.Studies, err
}

// Timeline returns the hour or day buckets of one study, or of all.
func (s *Source) Timeline(ctx context.Context, ref *domain.StudyRef, period projections.Period) ([]projections.StudyBucket, error) {
	return client.ListStudyBuckets(ctx, s.js, period, ref)
}

// uptakePatterns selects the studyd_uptake keys of each period.
var uptakePatterns = map[projections.Period][]string{
	projections.PeriodTotal: {"runner.>", "action.>", "recipe.>", "other.>"},
	projections.PeriodHour:  {"hour.>"},
	projections.PeriodDay:   {"day.>"},
}

// Uptake returns the uptake tallies of period, of the sources named or of all.
func (s *Source) Uptake(ctx context.Context, period projections.Period, sources ...string) (map[projections.UptakeKey]uint64, error) {
	out := map[projections.UptakeKey]uint64{}
	patterns := uptakePatterns[period]
	if len(sources) > 0 {
		patterns = nil
		for _, src := range sources {
			patterns = append(patterns, client.UptakeSourcePattern(period, src))
		}
	}
	for _, pattern := range patterns {
		err := client.EachValue(ctx, s.js, client.UptakeBucket, pattern, func(key string, b []byte) error {
			var v client.UptakeValue
			if err := json.Unmarshal(b, &v); err != nil {
				return err
			}
			k, err := v.Key()
			if err != nil {
				return err
			}
			out[k] = v.Count
			return nil
		})
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Checkpoint returns the projection checkpoint, 0 before the first flush.
func (s *Source) Checkpoint(ctx context.Context) (uint64, error) {
	kv, err := s.js.KeyValue(ctx, client.ProjectionBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("checkpoint: %w", err)
	}
	cp, _, err := client.LoadViewCheckpoint(ctx, kv, client.NearestEntry)
	return cp.Seq, err
}

// Watch follows the checkpoint key with a KV watch: each flush of the projector
// writes it once. The channel holds only the latest checkpoint not yet read.
func (s *Source) Watch(ctx context.Context) (<-chan uint64, error) {
	kv, err := s.js.KeyValue(ctx, client.ProjectionBucket)
	if err != nil {
		return nil, fmt.Errorf("watch checkpoint: %w", err)
	}
	w, err := kv.Watch(ctx, client.CheckpointKey, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("watch checkpoint: %w", err)
	}
	out := make(chan uint64, 1)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil { // the initial value is delivered; updates follow
					continue
				}
				var cp client.ViewCheckpoint
				if json.Unmarshal(e.Value(), &cp) != nil {
					continue
				}
				select { // keep only the latest
				case <-out:
				default:
				}
				out <- cp.Seq
			}
		}
	}()
	return out, nil
}

// FleetStatus reads the log's last commit, the recorded rejections, the checkpoint,
// the parked commands and every command partition's consumer.
func (s *Source) FleetStatus(ctx context.Context) (page.FleetStatus, error) {
	var st page.FleetStatus
	var err error
	if st.ProjectionSeq, err = s.Checkpoint(ctx); err != nil {
		return st, err
	}
	events, err := s.js.Stream(ctx, eventlog.EventsStream)
	if err != nil {
		return st, fmt.Errorf("fleet status: %w", err)
	}
	last, err := events.GetLastMsgForSubject(ctx, eventlog.EventSubjects)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return st, fmt.Errorf("fleet status: last commit: %w", err)
	default:
		st.LogSeq = last.Sequence
	}
	info, err := events.Info(ctx, jetstream.WithSubjectFilter(eventlog.RejectionSubjects))
	if err != nil {
		return st, fmt.Errorf("fleet status: rejections: %w", err)
	}
	for _, n := range info.State.Subjects {
		st.Rejections += n
	}
	switch n, err := client.ParkedCount(ctx, s.js); {
	case errors.Is(err, jetstream.ErrStreamNotFound): // nothing was ever parked
	case err != nil:
		return st, fmt.Errorf("fleet status: %w", err)
	default:
		st.Parked = n
	}
	cmds, err := s.js.Stream(ctx, client.CommandsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("fleet status: %w", err)
	}
	lister := cmds.ListConsumers(ctx)
	for ci := range lister.Info() {
		st.Partitions = append(st.Partitions, page.Partition{Name: ci.Name, Pending: ci.NumPending,
			AckPending: uint64(max(ci.NumAckPending, 0)), Redelivered: uint64(max(ci.NumRedelivered, 0))})
	}
	if err := lister.Err(); err != nil {
		return st, fmt.Errorf("fleet status: partitions: %w", err)
	}
	slices.SortFunc(st.Partitions, func(a, b page.Partition) int { return cmp.Compare(a.Name, b.Name) })
	return st, nil
}
