package views

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/internal/buildinfo"
	"github.com/studyd/studyd/projections"
	"github.com/studyd/studyd/wire"
)

// ErrNotLeader: this projector does not hold the lease, so it may not rebuild.
var ErrNotLeader = errors.New("views: projector is not leading")

type rebuildRequest struct {
	progress func(client.RebuildProgress)
	reply    chan rebuildReply
}

type rebuildReply struct {
	res client.RebuildResult
	err error
}

// Rebuild refolds the whole log into the views. Only the leading projector rebuilds
// (ErrNotLeader otherwise): its live loop flushes, pauses, rebuilds, then resumes from
// the rebuilt checkpoint, so there is never a second writer.
//
// Making it live: the complete fold of sequences 1..S (S = the stream's last sequence
// when the rebuild starts) is written over the live buckets in one pass, every value
// stamped S, keys the fold does not produce are deleted after that, and the checkpoint
// set to S last. Each key goes from one complete value to another — a reader sees
// either the old view or the rebuilt one per key, never an empty or half-counted one,
// and no key the fold produces disappears. Building into versioned buckets and
// switching was rejected: every watcher (including `nats kv watch`) would have to
// follow the switch, and the old bucket's keys would vanish for them.
func (p *Projector) Rebuild(ctx context.Context, progress func(client.RebuildProgress)) (client.RebuildResult, error) {
	if !p.Leading() {
		return client.RebuildResult{}, ErrNotLeader
	}
	if progress == nil {
		progress = func(client.RebuildProgress) {}
	}
	req := rebuildRequest{progress: progress, reply: make(chan rebuildReply, 1)}
	select {
	case p.rebuild <- req:
	case <-ctx.Done():
		return client.RebuildResult{}, fmt.Errorf("rebuild: %w", ctx.Err())
	}
	select {
	case r := <-req.reply:
		return r.res, r.err
	case <-ctx.Done():
		return client.RebuildResult{}, fmt.Errorf("rebuild: %w", ctx.Err())
	}
}

// rebuildViews runs inside the leader's loop (so nothing else writes) while the term's
// renewer keeps the lease.
func (p *Projector) rebuildViews(ctx context.Context, l *leader, progress func(client.RebuildProgress)) (client.RebuildResult, error) {
	start := time.Now()
	stream, err := p.js.Stream(ctx, eventlog.EventsStream)
	if err != nil {
		return client.RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return client.RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}
	last := info.State.LastSeq
	f, err := foldLog(ctx, p.js, last, p.opts.CommitKey, func(done, total uint64) error {
		progress(client.RebuildProgress{Phase: "fold", Done: done, Total: total})
		return nil
	})
	if err != nil {
		return client.RebuildResult{}, err
	}
	uptake, studies, timeline, rollouts := f.uptake, f.studies, f.timeline, f.rollouts
	res := client.RebuildResult{Seq: last, Commits: f.commits, UptakeKeys: len(uptake.Counts), StudyKeys: len(studies.Views),
		StudyTimeKeys: len(timeline.Buckets), RolloutKeys: len(rollouts.Views)}

	liveU, err := keyRevisions(ctx, p.uptake)
	if err != nil {
		return res, err
	}
	liveS, err := keyRevisions(ctx, p.studies)
	if err != nil {
		return res, err
	}
	liveT, err := keyRevisions(ctx, p.studyTime)
	if err != nil {
		return res, err
	}
	liveR, err := keyRevisions(ctx, p.rollouts)
	if err != nil {
		return res, err
	}
	total := uint64(len(uptake.Counts) + len(studies.Views) + len(timeline.Buckets) + len(rollouts.Views))
	var writes []kvWrite
	var written uint64
	flushWrites := func(force bool) error {
		if len(writes) == 0 || (!force && len(writes) < writeChunk) {
			return nil
		}
		if err := writeAll(ctx, p.js, writes, p.opts.WriteTimeout); err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
		written += uint64(len(writes))
		writes = writes[:0]
		progress(client.RebuildProgress{Phase: "write", Done: min(written, total), Total: total})
		return nil
	}
	for k, n := range uptake.Counts {
		key := client.UptakeKey(k)
		val, err := json.Marshal(client.NewUptakeValue(k, n, last))
		if err != nil {
			return res, fmt.Errorf("rebuild: encode uptake: %w", err)
		}
		writes = append(writes, kvWrite{bucket: p.uptake, key: key, value: val, rev: liveU[key].rev})
		delete(liveU, key)
		if err := flushWrites(false); err != nil {
			return res, err
		}
	}
	for ref, v := range studies.Views {
		key := client.StudyKey(ref)
		v.Seq = last
		val, err := json.Marshal(v)
		if err != nil {
			return res, fmt.Errorf("rebuild: encode study view: %w", err)
		}
		writes = append(writes, kvWrite{bucket: p.studies, key: key, value: val, rev: liveS[key].rev})
		delete(liveS, key)
		if err := flushWrites(false); err != nil {
			return res, err
		}
	}
	for k, b := range timeline.Buckets {
		key := client.StudyTimeKey(k)
		b.Seq = last
		val, err := json.Marshal(b)
		if err != nil {
			return res, fmt.Errorf("rebuild: encode study bucket: %w", err)
		}
		writes = append(writes, kvWrite{bucket: p.studyTime, key: key, value: val, rev: liveT[key].rev})
		delete(liveT, key)
		if err := flushWrites(false); err != nil {
			return res, err
		}
	}
	for slug, v := range rollouts.Views {
		key := client.RolloutKey(slug)
		v.Seq = last
		val, err := json.Marshal(v)
		if err != nil {
			return res, fmt.Errorf("rebuild: encode rollout view: %w", err)
		}
		writes = append(writes, kvWrite{bucket: p.rollouts, key: key, value: val, rev: liveR[key].rev})
		delete(liveR, key)
		if err := flushWrites(false); err != nil {
			return res, err
		}
	}
	if err := flushWrites(true); err != nil {
		return res, err
	}
	// Only now remove what the log no longer produces (e.g. keys of a bug since fixed).
	for _, b := range []struct {
		kv   jetstream.KeyValue
		keys map[string]liveKey
	}{{p.uptake, liveU}, {p.studies, liveS}, {p.studyTime, liveT}, {p.rollouts, liveR}} {
		for key, lk := range b.keys {
			if lk.deleted {
				continue
			}
			writes = append(writes, kvWrite{bucket: b.kv, key: key, rev: lk.rev, del: true})
			res.Deleted++
		}
	}
	if len(writes) > 0 {
		total += uint64(len(writes))
	}
	if err := flushWrites(true); err != nil {
		return res, err
	}
	if err := l.writeCheckpoint(ctx, last); err != nil {
		return res, fmt.Errorf("rebuild: %w", err)
	}
	res.Took = time.Since(start)
	p.log.Info("projector rebuilt views", "seq", last, "commits", f.commits, "uptake_keys", res.UptakeKeys,
		"study_keys", res.StudyKeys, "study_time_keys", res.StudyTimeKeys, "rollout_keys", res.RolloutKeys, "deleted", res.Deleted, "took", res.Took)
	return res, nil
}

type liveKey struct {
	rev     uint64
	deleted bool
}

// keyRevisions lists every key of a bucket with its latest revision, deleted ones too
// (a key is re-created on its delete marker's revision).
func keyRevisions(ctx context.Context, kv jetstream.KeyValue) (map[string]liveKey, error) {
	w, err := kv.WatchAll(ctx, jetstream.MetaOnly())
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	out := make(map[string]liveKey)
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("list %s: watcher closed", kv.Bucket())
			}
			if e == nil { // the initial values are done
				return out, nil
			}
			out[e.Key()] = liveKey{rev: e.Revision(), deleted: e.Operation() != jetstream.KeyValuePut}
		case <-ctx.Done():
			return nil, fmt.Errorf("list %s: %w", kv.Bucket(), ctx.Err())
		}
	}
}

// FoldLog folds the commits of STUDYD_EVENTS up to sequence to (0 = the stream's last
// sequence now) with the pure projections, as an audit or a test compares them with
// the materialised views.
func FoldLog(ctx context.Context, js jetstream.JetStream, to uint64) (*projections.Uptake, *projections.Studies, error) {
	if to == 0 {
		stream, err := js.Stream(ctx, eventlog.EventsStream)
		if err != nil {
			return nil, nil, fmt.Errorf("fold log: %w", err)
		}
		info, err := stream.Info(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("fold log: %w", err)
		}
		to = info.State.LastSeq
	}
	f, err := foldLog(ctx, js, to, nil, nil)
	return f.uptake, f.studies, err
}

// FoldTimeline is FoldLog for the study timeline (studyd_study_time).
func FoldTimeline(ctx context.Context, js jetstream.JetStream, to uint64) (*projections.StudyTimeline, error) {
	if to == 0 {
		stream, err := js.Stream(ctx, eventlog.EventsStream)
		if err != nil {
			return nil, fmt.Errorf("fold log: %w", err)
		}
		info, err := stream.Info(ctx)
		if err != nil {
			return nil, fmt.Errorf("fold log: %w", err)
		}
		to = info.State.LastSeq
	}
	f, err := foldLog(ctx, js, to, nil, nil)
	return f.timeline, err
}

// FoldRollouts folds the rollout views (studyd_rollouts) of the commits up to sequence
// to, as FoldLog does the others.
func FoldRollouts(ctx context.Context, js jetstream.JetStream, to uint64) (*projections.Rollouts, error) {
	f, err := foldLog(ctx, js, to, nil, nil)
	return f.rollouts, err
}

// folded is the pure folds of a stretch of the log.
type folded struct {
	uptake   *projections.Uptake
	studies  *projections.Studies
	timeline *projections.StudyTimeline
	rollouts *projections.Rollouts
	commits  uint64
}

// foldLog folds the commits at sequences 1..to. progress (optional) is called every
// few thousand commits with how many were folded of those pending.
func foldLog(ctx context.Context, js jetstream.JetStream, to uint64, key *audit.CommitKey, progress func(done, total uint64) error) (folded, error) {
	f := folded{uptake: projections.NewUptake(), studies: projections.NewStudies(), timeline: projections.NewStudyTimeline(),
		rollouts: projections.NewRollouts()}
	if to == 0 {
		return f, nil
	}
	stream, err := js.Stream(ctx, eventlog.EventsStream)
	if err != nil {
		return folded{}, fmt.Errorf("fold log: %w", err)
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(eventlog.EventSubjects))
	if err != nil {
		return folded{}, fmt.Errorf("fold log: %w", err)
	}
	if info.State.Msgs == 0 {
		return f, nil
	}
	total := info.State.Msgs
	err = eventlog.Replay(ctx, js, eventlog.ReplayOptions{Subjects: []string{eventlog.EventSubjects}, To: to}, func(e audit.Entry) error {
		var c eventstore.Commit
		var err error
		if key != nil && key.Verify(e.Subject, e.Data, e.MAC) != nil {
			err = eventstore.ErrCorrupt // not studyd's: passed over, as the projector passes over it
		} else {
			c, err = eventstore.DecodeCommit(e.Data)
		}
		switch {
		case errors.Is(err, eventstore.ErrCorrupt):
			// passed over, as the projector and verify pass over it
		case err != nil:
			return fmt.Errorf("%w: seq %d on %s: %w", ErrUndecodable, e.Seq, e.Subject, err)
		default:
			f.uptake.Apply(e.Seq, &c)
			f.studies.Apply(e.Seq, &c)
			f.timeline.Apply(e.Seq, &c)
			f.rollouts.Apply(e.Seq, &c)
		}
		f.commits++
		if progress != nil && f.commits%4096 == 0 {
			return progress(f.commits, max(total, f.commits))
		}
		return nil
	})
	if err != nil {
		return folded{}, fmt.Errorf("fold log: %w", err)
	}
	if progress != nil {
		if err := progress(f.commits, max(total, f.commits)); err != nil {
			return folded{}, err
		}
	}
	return f, nil
}

// serveRebuild serves RebuildSubject while this projector leads; stop removes it.
func (p *Projector) serveRebuild(nc *nats.Conn) (stop func(), err error) {
	svc, err := micro.AddService(nc, micro.Config{Name: client.AdminService, Version: buildinfo.SemVer(),
		Description: "studyd projector administration (served by the leading projector)", QueueGroup: client.AdminService})
	if err != nil {
		return nil, fmt.Errorf("serve rebuild: %w", err)
	}
	err = svc.AddEndpoint("rebuild", micro.HandlerFunc(func(req micro.Request) {
		var body client.RebuildRequest
		if len(req.Data()) > 0 {
			err := wire.CheckJSON(req.Data())
			if err == nil {
				err = json.Unmarshal(req.Data(), &body)
			}
			if err != nil {
				_ = req.Error("400", "rebuild request is not JSON: "+err.Error(), nil)
				return
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
		defer cancel()
		res, err := p.Rebuild(ctx, func(pr client.RebuildProgress) {
			if body.ProgressSubject != "" {
				b, _ := json.Marshal(pr)
				_ = nc.Publish(body.ProgressSubject, b)
			}
		})
		if err != nil {
			code := "500"
			if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrLeaseLost) {
				code = "503"
			}
			_ = req.Error(code, "rebuild failed: "+err.Error(), nil)
			return
		}
		respondJSON(req, res)
	}), micro.WithEndpointSubject(client.RebuildSubject))
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("serve rebuild: %w", err)
	}
	return func() { _ = svc.Stop() }, nil
}
