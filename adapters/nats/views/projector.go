package views

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/internal/leaderget"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
)

// DefaultFlushInterval is how often the projector writes what it folded. At 100 ms the
// benchmark's publish → visible p99 was 107–120 ms; at 50 ms it is 59–72 ms with no
// measurable cost in end-to-end throughput (docs/BENCHMARKS.md).
const DefaultFlushInterval = 50 * time.Millisecond

// DefaultStallAfter bounds how long a silent tail keeps commits out of the views. In
// the benchmark, one end-to-end run in a few dozen appended 40k commands at 11,879/s
// while they became visible at 3,137/s: about 9 s late, with no CPU spent meanwhile.
// Three waits of 10 s fit that: this bound, as it was; the client library's
// missed-heartbeat reset of the tail's ordered consumer; a view write's WriteTimeout.
// The first two are now this bound, since a tail silent while commits wait is
// re-opened whatever keeps it silent; the third is counted as a fault. A probe costs
// one request to the stream leader per StallAfter of silence.
const DefaultStallAfter = 2 * time.Second

// ProjectorConfig tunes a Projector. The zero value is usable: zero fields take the
// defaults.
type ProjectorConfig struct {
	// FlushInterval bounds how long a folded commit waits before its keys are written
	// (DefaultFlushInterval): the lag a watcher sees.
	FlushInterval time.Duration
	// FlushCommits flushes early after this many commits (default 2000), bounding the
	// work a restart may redo.
	FlushCommits int
	// LeaseTTL is how long the single-writer lease outlives a dead holder (default 5 s;
	// fixed by the first instance that creates the lease bucket).
	LeaseTTL time.Duration
	// WriteTimeout bounds one batch of view writes (default 10 s). JetStream gives no
	// answer at all to a publish lost in a leader change, so without a bound a flush
	// would wait forever while the lease, renewed on its own, kept standbys out.
	WriteTimeout time.Duration
	// StallAfter is how long the log tail may deliver nothing before the projector asks
	// the stream leader whether commits are waiting, and re-opens the tail if they are
	// (default DefaultStallAfter).
	StallAfter time.Duration
	// Replicas of the KV buckets (default 1).
	Replicas int
	// Holder names this projector in the lease and checkpoint (default a random id).
	Holder string
	// Logger receives state changes (default slog.Default()).
	Logger *slog.Logger
	// CommitKey, if set, folds only the commits studyd authenticated with it: a commit
	// someone else wrote on the log is passed over (and logged), never counted in a view.
	CommitKey *audit.CommitKey
}

func (o ProjectorConfig) withDefaults() ProjectorConfig {
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.FlushCommits <= 0 {
		o.FlushCommits = 2000
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.StallAfter <= 0 {
		o.StallAfter = DefaultStallAfter
	}
	if o.Holder == "" {
		o.Holder = nuid.Next()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Projector folds STUDYD_EVENTS into the studyd_uptake, studyd_studies,
// studyd_study_time and studyd_rollouts KV buckets.
//
// Single writer: any number of studyd instances may run a Projector; only the holder
// of the lease key in studyd_projection_lease writes. The lease is a KV Create (fails
// if the key exists), renewed by compare-and-set Update on its revision, and it lapses
// by itself through the bucket's TTL if its holder dies, so no clock is compared across
// machines. The lease alone cannot fence a holder that stalled past its TTL, so every
// view write and the checkpoint are compare-and-set too (expected last subject
// sequence = the revision this projector read or wrote): a stale holder's next write
// fails, and it drops its state and competes again (ErrLeaseLost).
//
// Restart anywhere: a flush writes the dirty keys, each stamped with the sequence S
// folded so far, then the checkpoint S. On start the projector reads from the
// checkpoint + 1 and, for each key it touches, loads the stored value and skips
// commits at or below that value's stamp, so keys written by a flush whose checkpoint
// never landed are not counted twice.
type Projector struct {
	js   jetstream.JetStream
	opts ProjectorConfig
	log  *slog.Logger

	uptake, studies, proj, lease jetstream.KeyValue
	studyTime, rollouts          jetstream.KeyValue

	seq     atomic.Uint64 // the latest flushed sequence
	leading atomic.Bool
	rebuild chan rebuildRequest
	// faults counts terms ended by a fault (a lost lease, a failed write or read);
	// reopens counts tails found stalled and re-opened. Both are exported as metrics.
	faults, reopens atomic.Uint64
	// unfoldable counts records the projector could not fold whole: undecodable ones,
	// passed over, and commits of a time no view can render, folded into totals only.
	unfoldable atomic.Uint64
	// afterKeys, set by tests, runs between a flush's key writes and its checkpoint; an
	// error there is a crash at the worst moment.
	afterKeys func() error
	// openTail reads the log from a sequence on: tailLog, or a test's stand-in.
	openTail func(ctx context.Context, js jetstream.JetStream, from uint64) (<-chan tailMsg, func(), error)
}

// NewProjector returns a projector on js. It does no I/O: Run opens the buckets.
func NewProjector(js jetstream.JetStream, cfg ProjectorConfig) *Projector {
	cfg = cfg.withDefaults()
	return &Projector{js: js, opts: cfg, log: cfg.Logger.With("component", "projector", "holder", cfg.Holder),
		rebuild: make(chan rebuildRequest), openTail: tailLogFunc(cfg.CommitKey)}
}

// open opens (creating if needed) the projection buckets and reads the checkpoint.
func (p *Projector) open(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	p.uptake, p.studies, p.studyTime, p.rollouts, p.proj, p.lease, err = viewBuckets(ctx, p.js, p.opts.Replicas, p.opts.LeaseTTL)
	if err != nil {
		return fmt.Errorf("projector: %w", err)
	}
	if cp, _, err := client.LoadViewCheckpoint(ctx, p.proj, client.NearestEntry); err == nil {
		p.seq.Store(cp.Seq)
	}
	return nil
}

// Seq returns the latest sequence this projector knows flushed (its own flushes, or
// the checkpoint it found when it started or took over).
func (p *Projector) Seq() uint64 { return p.seq.Load() }

// Leading reports whether this projector holds the lease now.
func (p *Projector) Leading() bool { return p.leading.Load() }

// Faults is how many of this instance's terms ended by a fault
// (studyd_projector_faults_total).
func (p *Projector) Faults() uint64 { return p.faults.Load() }

// Reopens is how many times a silent tail was re-opened while commits waited
// (studyd_projector_tail_reopens_total).
func (p *Projector) Reopens() uint64 { return p.reopens.Load() }

// Run opens the buckets, competes for the lease and, while holding it, folds the log
// into the views. It blocks until ctx is done, then flushes what it folded, releases
// the lease (so a standby takes over at once) and returns nil. It returns an error only
// for a fault it cannot ride out: buckets it cannot open, or an undecodable commit
// (ErrUndecodable). Run may be called again after it returned.
func (p *Projector) Run(ctx context.Context) error {
	if err := p.open(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	for ctx.Err() == nil {
		rev, err := p.acquire(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			p.log.Warn("projector lease", "err", err)
			sleep(ctx, p.opts.LeaseTTL/4)
			continue
		}
		p.leading.Store(true)
		p.log.Info("projector leading")
		stopAdmin, aerr := p.serveRebuild(p.js.Conn())
		if aerr != nil {
			p.log.Warn("projector admin endpoint", "err", aerr)
			stopAdmin = func() {}
		}
		l := &leader{p: p, leaseRev: rev}
		err = l.run(ctx)
		p.leading.Store(false)
		stopAdmin()
		l.release()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, ErrUndecodable):
			return err
		case errors.Is(err, errRestart):
			p.log.Info("projector restarting from its checkpoint")
		default:
			p.faults.Add(1)
			p.log.Warn("projector stopped leading", "err", err)
			sleep(ctx, max(p.opts.FlushInterval, p.opts.LeaseTTL/4))
		}
	}
	return nil
}

// errRestart asks Run to reload from the checkpoint (after a rebuild).
var errRestart = errors.New("views: projector restart")

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

type leaseValue struct {
	Holder string `json:"holder"`
}

// acquire blocks until this projector holds the lease, and returns its revision.
func (p *Projector) acquire(ctx context.Context) (uint64, error) {
	val, _ := json.Marshal(leaseValue{Holder: p.opts.Holder})
	for {
		rev, err := p.lease.Create(ctx, client.LeaseKey, val)
		if err == nil {
			return rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, fmt.Errorf("acquire lease: %w", err)
		}
		// Someone else leads; its lease lapses LeaseTTL after its last renewal.
		sleep(ctx, p.opts.LeaseTTL/4)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
	}
}

// uptakeEntry and studyEntry are a view key as this leader knows it: its value, the
// sequence stamped on the stored value (commits at or below it are already counted),
// and the revision to compare-and-set against.
type uptakeEntry struct {
	key   projections.UptakeKey
	count uint64
	stamp uint64
	rev   uint64
	dirty bool
}

type studyEntry struct {
	view  projections.StudyView
	rev   uint64
	dirty bool
}

// timeEntry is a studyd_study_time key as this leader knows it; its stamp is the
// bucket's Seq.
type timeEntry struct {
	bucket projections.StudyBucket
	rev    uint64
	dirty  bool
}

// rolloutEntry is a studyd_rollouts key as this leader knows it; its stamp is the
// view's Seq.
type rolloutEntry struct {
	view  projections.RolloutView
	rev   uint64
	dirty bool
}

// leader is one term of holding the lease: the in-memory views it folded since its
// checkpoint, and what it has yet to flush.
type leader struct {
	p        *Projector
	leaseRev uint64

	cp, cpRev uint64 // the checkpoint as last written or read
	applied   uint64 // the last sequence folded
	pending   int    // commits folded since the last flush

	uptake  map[projections.UptakeKey]*uptakeEntry
	studies map[domain.StudyRef]*studyEntry
	dirtyU  []*uptakeEntry
	dirtyS  []*studyEntry
	// timeline is the studyd_study_time keys touched this term.
	timeline map[projections.StudyBucketKey]*timeEntry
	dirtyT   []*timeEntry
	// rollouts is the studyd_rollouts keys touched this term.
	rollouts map[string]*rolloutEntry
	dirtyR   []*rolloutEntry
	// emptyU/emptyS/emptyT/emptyR: the bucket held nothing when this term began, so a
	// key not yet in memory does not exist and need not be read.
	emptyU, emptyS, emptyT, emptyR bool
}

func (l *leader) run(parent context.Context) error {
	// The lease is renewed by its own goroutine, so that a long flush or rebuild does
	// not let it lapse; losing it cancels the term.
	ctx, lost := context.WithCancelCause(parent)
	renewerDone := make(chan struct{})
	go func() {
		defer close(renewerDone)
		l.keepLease(ctx, lost)
	}()
	defer func() {
		lost(nil)
		<-renewerDone
	}()
	return l.termErr(ctx, l.loop(parent, ctx))
}

// loop folds and flushes until the term ends.
func (l *leader) loop(parent, ctx context.Context) error {
	p := l.p
	if err := l.load(ctx); err != nil {
		return err
	}
	tl, err := l.tail(ctx, l.cp+1)
	if err != nil {
		return err
	}
	defer func() { tl.stop() }()
	tick := time.NewTicker(p.opts.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if parent.Err() == nil {
				return context.Cause(ctx) // the lease was lost
			}
			// Flush what was folded, with a fresh deadline: shutdown drains.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			return l.flush(fctx)
		case m, ok := <-tl.msgs:
			if !ok {
				return fmt.Errorf("projector: event stream consumer stopped")
			}
			if m.err != nil {
				return m.err
			}
			tl.heard = time.Now()
			if m.corrupt != nil {
				p.unfoldable.Add(1)
				p.log.Error("projector: passing over a record it cannot fold (studyctl verify lists it)", "seq", m.seq, "err", m.corrupt)
				l.applied = m.seq
				l.pending++
				continue
			}
			if err := projections.CheckTime(&m.commit); err != nil {
				p.unfoldable.Add(1)
				p.log.Error("projector: folding a commit into totals only (studyctl verify lists it)", "seq", m.seq,
					"client", m.commit.Client, "err", err)
			}
			if err := l.apply(ctx, m.seq, &m.commit); err != nil {
				return err
			}
			if l.pending >= p.opts.FlushCommits {
				if err := l.flush(ctx); err != nil {
					return err
				}
			}
		case <-tick.C:
			if err := l.flush(ctx); err != nil {
				return err
			}
			if err := l.watchTail(ctx, &tl); err != nil {
				return err
			}
		case req := <-p.rebuild:
			if err := l.flush(ctx); err != nil {
				req.reply <- rebuildReply{err: err}
				return err
			}
			res, err := p.rebuildViews(ctx, l, req.progress)
			req.reply <- rebuildReply{res: res, err: err}
			if err != nil {
				return err
			}
			return errRestart
		}
	}
}

// tail is the log as this term reads it.
type tail struct {
	msgs  <-chan tailMsg
	stop  func()
	heard time.Time // the last delivery, or when the tail was opened or last probed
}

func (l *leader) tail(ctx context.Context, from uint64) (tail, error) {
	msgs, stop, err := l.p.openTail(ctx, l.p.js, from)
	return tail{msgs: msgs, stop: stop, heard: time.Now()}, err
}

// watchTail re-opens a tail that has delivered nothing for StallAfter while the stream
// leader holds commits past the last one folded. A stalled tail would otherwise go
// unnoticed for good: its projector keeps renewing the lease, so no standby takes over.
// Commits waiting in the tail's buffer mean it is not stalled, only behind a slow flush.
func (l *leader) watchTail(ctx context.Context, tl *tail) error {
	if len(tl.msgs) > 0 || time.Since(tl.heard) < l.p.opts.StallAfter {
		return nil
	}
	tl.heard = time.Now() // probe at most once per StallAfter
	last, err := lastCommitSeq(ctx, l.p.js.Conn())
	if err != nil {
		l.p.log.Warn("projector: probe the log for a stalled tail", "err", err)
		return nil
	}
	if last <= l.applied {
		return nil
	}
	l.p.reopens.Add(1)
	l.p.log.Warn("projector: tail stalled; re-opening it", "folded", l.applied, "log", last)
	tl.stop()
	next, err := l.tail(ctx, l.applied+1)
	if err != nil {
		return err
	}
	*tl = next
	return nil
}

// lastCommitSeq asks the stream leader for the sequence of the log's last commit (0 if
// there is none).
func lastCommitSeq(ctx context.Context, nc *nats.Conn) (uint64, error) {
	m, err := leaderget.Last(ctx, nc, eventlog.EventsStream, eventlog.EventSubjects)
	if err != nil {
		return 0, fmt.Errorf("last commit: %w", err)
	}
	return m.Seq, nil
}

// load reads the checkpoint and whether each view bucket is empty.
func (l *leader) load(ctx context.Context) error {
	p := l.p
	cp, rev, err := client.LoadViewCheckpoint(ctx, p.proj, p.leaderEntry)
	if err != nil {
		return err
	}
	l.cp, l.cpRev, l.applied = cp.Seq, rev, cp.Seq
	p.seq.Store(cp.Seq)
	l.uptake = make(map[projections.UptakeKey]*uptakeEntry)
	l.studies = make(map[domain.StudyRef]*studyEntry)
	l.timeline = make(map[projections.StudyBucketKey]*timeEntry)
	l.rollouts = make(map[string]*rolloutEntry)
	for _, b := range []struct {
		kv    jetstream.KeyValue
		empty *bool
	}{{p.uptake, &l.emptyU}, {p.studies, &l.emptyS}, {p.studyTime, &l.emptyT}, {p.rollouts, &l.emptyR}} {
		st, err := b.kv.Status(ctx)
		if err != nil {
			return fmt.Errorf("projector: status of %s: %w", b.kv.Bucket(), err)
		}
		*b.empty = st.Values() == 0
	}
	p.log.Info("projector resuming", "seq", cp.Seq)
	return nil
}

// tailMsg is one decoded commit from the log, or the error that ended the tail.
type tailMsg struct {
	seq    uint64
	commit eventstore.Commit
	err    error
	// corrupt: the message at seq is not a commit (eventstore.ErrCorrupt). It is
	// reported and passed over, as verify's fold passes over it, so that one bad record
	// never stops the views.
	corrupt error
}

// tailLog follows the commits from sequence from on (eventlog.Replay, following),
// decoded. Decoding happens in the pump goroutine so that it overlaps with folding.
// The pump runs until stop (idempotent; it waits for the pump), not until ctx: the
// leader's loop tells a shutdown from a dead tail by its own ctx.
func tailLog(ctx context.Context, js jetstream.JetStream, from uint64) (<-chan tailMsg, func(), error) {
	return tailLogKeyed(ctx, js, from, nil)
}

// tailLogFunc is tailLog checking each commit's authorship with key (nil: none).
func tailLogFunc(key *audit.CommitKey) func(context.Context, jetstream.JetStream, uint64) (<-chan tailMsg, func(), error) {
	return func(ctx context.Context, js jetstream.JetStream, from uint64) (<-chan tailMsg, func(), error) {
		return tailLogKeyed(ctx, js, from, key)
	}
}

func tailLogKeyed(ctx context.Context, js jetstream.JetStream, from uint64, key *audit.CommitKey) (<-chan tailMsg, func(), error) {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	out := make(chan tailMsg, 256)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		defer close(out)
		err := eventlog.Replay(pctx, js, eventlog.ReplayOptions{Subjects: []string{eventlog.EventSubjects}, From: from, Follow: true},
			func(e audit.Entry) error {
				tm := decodeTail(e, key)
				select {
				case out <- tm:
				case <-pctx.Done():
					return pctx.Err()
				}
				return tm.err // an undecodable commit ends the tail
			})
		if err != nil && pctx.Err() == nil && !errors.Is(err, ErrUndecodable) {
			select {
			case out <- tailMsg{err: fmt.Errorf("projector: tail %s from %d: %w", eventlog.EventsStream, from, err)}:
			case <-pctx.Done():
			}
		}
	}()
	return out, sync.OnceFunc(func() { cancel(); <-exited }), nil
}

// decodeTail decodes one commit of the tail: the commit alone (its hash is not needed
// to fold it). With a commit key, a commit studyd did not write is passed over like a
// corrupt record: never counted in a view, and listed by verify --commit-key.
func decodeTail(e audit.Entry, key *audit.CommitKey) tailMsg {
	if key != nil {
		if err := key.Verify(e.Subject, e.Data, e.MAC); err != nil {
			return tailMsg{seq: e.Seq, corrupt: fmt.Errorf("seq %d on %s: %w", e.Seq, e.Subject, err)}
		}
	}
	c, err := eventstore.DecodeCommit(e.Data)
	if errors.Is(err, eventstore.ErrCorrupt) {
		return tailMsg{seq: e.Seq, corrupt: fmt.Errorf("seq %d on %s: %w", e.Seq, e.Subject, err)}
	}
	if err != nil {
		// A schema this build cannot read (a newer build's): stop, so that an instance
		// that can read it takes the views over, rather than fold around it.
		return tailMsg{seq: e.Seq, err: fmt.Errorf("%w: seq %d on %s: %w", ErrUndecodable, e.Seq, e.Subject, err)}
	}
	return tailMsg{seq: e.Seq, commit: c}
}

// apply folds the commit at seq into the keys it touches, each under its own stamp.
func (l *leader) apply(ctx context.Context, seq uint64, c *eventstore.Commit) error {
	var err error
	projections.EachUptake(c, func(k projections.UptakeKey) {
		if err != nil {
			return
		}
		var e *uptakeEntry
		if e, err = l.uptakeEntry(ctx, k); err != nil || seq <= e.stamp {
			return
		}
		e.count++
		if !e.dirty {
			e.dirty = true
			l.dirtyU = append(l.dirtyU, e)
		}
	})
	if err != nil {
		return err
	}
	for i := range c.Events {
		ev := &c.Events[i]
		if projections.IsRolloutEvent(ev) {
			e, err := l.rolloutEntry(ctx, ev.Key)
			if err != nil {
				return err
			}
			if seq > e.view.Seq {
				e.view.Apply(ev)
				if !e.dirty {
					e.dirty = true
					l.dirtyR = append(l.dirtyR, e)
				}
			}
		}
		if !projections.IsStudyEvent(ev) {
			continue
		}
		e, err := l.studyEntry(ctx, ev.Study())
		if err != nil {
			return err
		}
		if seq <= e.view.Seq {
			continue
		}
		e.view.Apply(ev)
		if !e.dirty {
			e.dirty = true
			l.dirtyS = append(l.dirtyS, e)
		}
	}
	projections.EachStudyBucket(c, func(k projections.StudyBucketKey, ev *domain.Event) {
		if err != nil {
			return
		}
		var e *timeEntry
		if e, err = l.timeEntry(ctx, k); err != nil || seq <= e.bucket.Seq {
			return
		}
		e.bucket.Apply(c, ev)
		if !e.dirty {
			e.dirty = true
			l.dirtyT = append(l.dirtyT, e)
		}
	})
	if err != nil {
		return err
	}
	l.applied = seq
	l.pending++
	return nil
}

func (l *leader) uptakeEntry(ctx context.Context, k projections.UptakeKey) (*uptakeEntry, error) {
	if e, ok := l.uptake[k]; ok {
		return e, nil
	}
	e := &uptakeEntry{key: k}
	if !l.emptyU {
		kve, err := l.p.leaderEntry(ctx, l.p.uptake, client.UptakeKey(k))
		if err != nil {
			return nil, fmt.Errorf("projector: load %s %s: %w", client.UptakeBucket, client.UptakeKey(k), err)
		}
		e.rev = kve.Rev
		if kve.Value != nil {
			var v client.UptakeValue
			if err := json.Unmarshal(kve.Value, &v); err != nil {
				return nil, fmt.Errorf("projector: load %s %s: %w", client.UptakeBucket, client.UptakeKey(k), err)
			}
			e.count, e.stamp = v.Count, v.Seq
		}
	}
	l.uptake[k] = e
	return e, nil
}

func (l *leader) studyEntry(ctx context.Context, ref domain.StudyRef) (*studyEntry, error) {
	if e, ok := l.studies[ref]; ok {
		return e, nil
	}
	e := &studyEntry{view: projections.StudyView{Object: ref.Object, Key: ref.Key}}
	if !l.emptyS {
		kve, err := l.p.leaderEntry(ctx, l.p.studies, client.StudyKey(ref))
		if err != nil {
			return nil, fmt.Errorf("projector: load %s %s: %w", client.StudiesBucket, client.StudyKey(ref), err)
		}
		e.rev = kve.Rev
		if kve.Value != nil {
			if err := json.Unmarshal(kve.Value, &e.view); err != nil {
				return nil, fmt.Errorf("projector: load %s %s: %w", client.StudiesBucket, client.StudyKey(ref), err)
			}
		}
	}
	l.studies[ref] = e
	return e, nil
}

func (l *leader) timeEntry(ctx context.Context, k projections.StudyBucketKey) (*timeEntry, error) {
	if e, ok := l.timeline[k]; ok {
		return e, nil
	}
	e := &timeEntry{bucket: projections.NewStudyBucket(k)}
	if !l.emptyT {
		key := client.StudyTimeKey(k)
		kve, err := l.p.leaderEntry(ctx, l.p.studyTime, key)
		if err != nil {
			return nil, fmt.Errorf("projector: load %s %s: %w", client.StudyTimeBucket, key, err)
		}
		e.rev = kve.Rev
		if kve.Value != nil {
			if err := json.Unmarshal(kve.Value, &e.bucket); err != nil {
				return nil, fmt.Errorf("projector: load %s %s: %w", client.StudyTimeBucket, key, err)
			}
		}
	}
	l.timeline[k] = e
	return e, nil
}

func (l *leader) rolloutEntry(ctx context.Context, slug string) (*rolloutEntry, error) {
	if e, ok := l.rollouts[slug]; ok {
		return e, nil
	}
	e := &rolloutEntry{view: projections.RolloutView{Slug: slug}}
	if !l.emptyR {
		key := client.RolloutKey(slug)
		kve, err := l.p.leaderEntry(ctx, l.p.rollouts, key)
		if err != nil {
			return nil, fmt.Errorf("projector: load %s %s: %w", client.RolloutsBucket, key, err)
		}
		e.rev = kve.Rev
		if kve.Value != nil {
			if err := json.Unmarshal(kve.Value, &e.view); err != nil {
				return nil, fmt.Errorf("projector: load %s %s: %w", client.RolloutsBucket, key, err)
			}
		}
	}
	l.rollouts[slug] = e
	return e, nil
}

// writeChunk bounds the async publishes in flight in one flush.
const writeChunk = 512

// flush writes the dirty keys stamped with the sequence folded so
// far, then the checkpoint. Keys first: a crash in between leaves keys ahead of the
// checkpoint, which their stamps make harmless.
func (l *leader) flush(ctx context.Context) error {
	p := l.p
	if l.applied == l.cp {
		return nil
	}
	seq := l.applied
	writes := make([]kvWrite, 0, min(len(l.dirtyU)+len(l.dirtyS)+len(l.dirtyT)+len(l.dirtyR), writeChunk))
	send := func(force bool) error {
		if len(writes) == 0 || (!force && len(writes) < writeChunk) {
			return nil
		}
		err := writeAll(ctx, p.js, writes, p.opts.WriteTimeout)
		writes = writes[:0]
		return err
	}
	for _, e := range l.dirtyU {
		val, err := json.Marshal(client.NewUptakeValue(e.key, e.count, seq))
		if err != nil {
			return fmt.Errorf("projector: encode uptake: %w", err)
		}
		e := e
		writes = append(writes, kvWrite{bucket: p.uptake, key: client.UptakeKey(e.key), value: val, rev: e.rev,
			done: func(rev uint64) { e.rev, e.stamp, e.dirty = rev, seq, false }})
		if err := send(false); err != nil {
			return err
		}
	}
	for _, e := range l.dirtyS {
		e.view.Seq = seq
		val, err := json.Marshal(&e.view)
		if err != nil {
			return fmt.Errorf("projector: encode study view: %w", err)
		}
		e := e
		writes = append(writes, kvWrite{bucket: p.studies, key: client.StudyKey(e.view.Study()), value: val, rev: e.rev,
			done: func(rev uint64) { e.rev, e.dirty = rev, false }})
		if err := send(false); err != nil {
			return err
		}
	}
	for _, e := range l.dirtyT {
		e.bucket.Seq = seq
		val, err := json.Marshal(&e.bucket)
		if err != nil {
			return fmt.Errorf("projector: encode study bucket: %w", err)
		}
		e := e
		writes = append(writes, kvWrite{bucket: p.studyTime, key: client.StudyTimeKey(e.bucket.BucketKey()), value: val, rev: e.rev,
			done: func(rev uint64) { e.rev, e.dirty = rev, false }})
		if err := send(false); err != nil {
			return err
		}
	}
	for _, e := range l.dirtyR {
		e.view.Seq = seq
		val, err := json.Marshal(&e.view)
		if err != nil {
			return fmt.Errorf("projector: encode rollout view: %w", err)
		}
		e := e
		writes = append(writes, kvWrite{bucket: p.rollouts, key: client.RolloutKey(e.view.Slug), value: val, rev: e.rev,
			done: func(rev uint64) { e.rev, e.dirty = rev, false }})
		if err := send(false); err != nil {
			return err
		}
	}
	if err := send(true); err != nil {
		return err
	}
	l.dirtyU, l.dirtyS, l.dirtyT, l.dirtyR = l.dirtyU[:0], l.dirtyS[:0], l.dirtyT[:0], l.dirtyR[:0]
	if p.afterKeys != nil {
		if err := p.afterKeys(); err != nil {
			return err
		}
	}
	if err := l.writeCheckpoint(ctx, seq); err != nil {
		return err
	}
	l.pending = 0
	if len(l.uptake)+len(l.studies)+len(l.timeline)+len(l.rollouts) > maxCachedKeys {
		// Every entry is clean now; forget them all rather than grow with every new
		// hour bucket. A key touched again is read back from KV.
		l.uptake = make(map[projections.UptakeKey]*uptakeEntry)
		l.studies = make(map[domain.StudyRef]*studyEntry)
		l.timeline = make(map[projections.StudyBucketKey]*timeEntry)
		l.rollouts = make(map[string]*rolloutEntry)
		l.emptyU, l.emptyS, l.emptyT, l.emptyR = false, false, false, false
	}
	return nil
}

// maxCachedKeys bounds the view keys a leader keeps in memory between flushes.
const maxCachedKeys = 100_000

func (l *leader) writeCheckpoint(ctx context.Context, seq uint64) error {
	val, _ := json.Marshal(client.ViewCheckpoint{Seq: seq, Holder: l.p.opts.Holder})
	rev, err := l.p.proj.Update(ctx, client.CheckpointKey, val, l.cpRev)
	if err != nil {
		if eventlog.IsConflict(err) {
			return fmt.Errorf("%w: checkpoint changed under us: %w", ErrLeaseLost, err)
		}
		return fmt.Errorf("projector: write checkpoint %d: %w", seq, err)
	}
	l.cp, l.cpRev = seq, rev
	l.p.seq.Store(seq)
	return nil
}

// termErr prefers the reason the term ended (a lost lease) over the error it caused.
func (l *leader) termErr(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, ErrLeaseLost) {
		return cause
	}
	return err
}

// keepLease renews the lease every third of its TTL until ctx ends, and calls lost
// when another projector has it.
func (l *leader) keepLease(ctx context.Context, lost context.CancelCauseFunc) {
	t := time.NewTicker(l.p.opts.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.renew(ctx); err != nil {
				if errors.Is(err, ErrLeaseLost) {
					lost(err)
					return
				}
				if ctx.Err() == nil {
					l.p.log.Warn("projector lease renewal", "err", err)
				}
			}
		}
	}
}

// renew extends the lease by rewriting it on its revision. Only keepLease calls it
// while a term runs (release runs after), so leaseRev needs no lock.
func (l *leader) renew(ctx context.Context) error {
	val, _ := json.Marshal(leaseValue{Holder: l.p.opts.Holder})
	rev, err := l.p.lease.Update(ctx, client.LeaseKey, val, l.leaseRev)
	if err != nil {
		if eventlog.IsConflict(err) || errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: %w", ErrLeaseLost, err)
		}
		return fmt.Errorf("projector: renew lease: %w", err)
	}
	l.leaseRev = rev
	return nil
}

// release deletes the lease if this projector still holds it, so a standby need not
// wait for the TTL.
func (l *leader) release() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.p.lease.Delete(ctx, client.LeaseKey, jetstream.LastRevision(l.leaseRev))
}
