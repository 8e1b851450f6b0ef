package views

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/projections"
)

// logGen makes well-formed commits with a mix of uptake and enrollment events.
type logGen struct {
	rng *rand.Rand
	n   int
	at  time.Time
}

func newLogGen(seed uint64) *logGen {
	return &logGen{rng: rand.New(rand.NewPCG(seed, 1)), at: time.Date(2018, 7, 14, 0, 0, 0, 0, time.UTC)}
}

func (g *logGen) pick(n int) int { return g.rng.IntN(n) }

func (g *logGen) commit() eventstore.Commit {
	g.n++
	g.at = g.at.Add(time.Duration(g.pick(3*3600)) * time.Second)
	client := domain.ClientID(fmt.Sprintf("client-%d", g.pick(5)))
	var events []domain.Event
	for range 1 + g.pick(4) {
		switch g.pick(3) {
		case 0:
			events = append(events, domain.Event{Type: domain.EventUptakeReported, Source: domain.SourceRunner,
				Status: domain.RunnerStatuses[g.pick(len(domain.RunnerStatuses))]})
		case 1:
			events = append(events, domain.Event{Type: domain.EventUptakeReported,
				Source: domain.RecipeSource(domain.RecipeID(g.pick(3))),
				Status: domain.RecipeStatuses[g.pick(len(domain.RecipeStatuses))]})
		default:
			slug := fmt.Sprintf("pref-%d", g.pick(3))
			e := domain.Event{Object: domain.PreferenceStudy, Key: slug, Slug: slug,
				Branch: []string{"control", "treatment"}[g.pick(2)], ExperimentType: domain.ExperimentTypeExp}
			switch g.pick(3) {
			case 0:
				e.Type, e.From, e.To = domain.EventEnrolled, domain.StateNone, domain.StateEnrolled
			case 1:
				e.Type, e.From, e.To = domain.EventUnenrolled, domain.StateEnrolled, domain.StateUnenrolled
				e.Reason, e.ResetValue = string(domain.ReasonRecipeNotSeen), g.pick(2) == 0
			default:
				e.Type, e.From, e.To = domain.EventEnrollFailed, domain.StateNone, domain.StateEnrollFailed
				e.Reason = "name-conflict"
			}
			events = append(events, e)
		}
	}
	if g.n%5 == 0 { // a preference rollout's event, without drawing from rng
		slug := fmt.Sprintf("rollout-%d", g.n%2)
		e := domain.Event{Object: domain.PreferenceRollout, Key: slug, Slug: slug}
		switch (g.n / 5) % 3 {
		case 0:
			e.Type, e.From, e.To = domain.EventEnrolled, domain.StateNone, domain.StateActive
		case 1:
			e.Type, e.From, e.To, e.Reason = domain.EventGraduated, domain.StateActive, domain.StateGraduated, "in-graduation-set"
		default:
			e.Type, e.From, e.To, e.Reason = domain.EventUnenrolled, domain.StateActive, domain.StateRolledBack, "rollback"
		}
		events = append(events, e)
	}
	return eventstore.Commit{CommitID: fmt.Sprintf("commit-%d", g.n), CommandID: fmt.Sprintf("cmd-%d", g.n),
		CommandType: domain.CommandRecipeRun, Client: client, At: g.at, Events: events,
		State: domain.ClientState{Client: client}}
}

// publishCommits appends n generated commits as raw publishes and returns the last
// sequence.
func publishCommits(t testing.TB, js jetstream.JetStream, g *logGen, n int) uint64 {
	t.Helper()
	ctx := context.Background()
	var last uint64
	for range n {
		c := g.commit()
		b, err := eventstore.EncodeCommit(c)
		if err != nil {
			t.Fatalf("encode commit: %v", err)
		}
		ack, err := js.Publish(ctx, "studyd.evt."+string(c.Client), b)
		if err != nil {
			t.Fatalf("publish commit: %v", err)
		}
		last = ack.Sequence
	}
	return last
}

func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, _, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatalf("EnsureEventsStream: %v", err)
	}
	return js
}

// runProjector runs p until the returned stop is called; stop (idempotent) returns Run's error.
func runProjector(p *Projector) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
}

func waitSeq(t *testing.T, p *Projector, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for p.Seq() < seq {
		if time.Now().After(deadline) {
			t.Fatalf("projector at seq %d, want %d (timed out)", p.Seq(), seq)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// assertViewsMatchFold compares the KV views with a pure fold of the whole log.
func assertViewsMatchFold(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	wantU, wantS, err := FoldLog(ctx, js, 0)
	if err != nil {
		t.Fatalf("FoldLog: %v", err)
	}
	v, err := client.ReadViews(ctx, js, client.AllViews)
	if err != nil {
		t.Fatalf("ReadViews: %v", err)
	}
	gotU, gotS, err := v.Projections()
	if err != nil {
		t.Fatalf("ReadViews: %v", err)
	}
	if diff := cmp.Diff(wantU.Counts, gotU.Counts); diff != "" {
		t.Errorf("uptake views differ from the fold of the log (-fold +kv):\n%s", diff)
	}
	ignoreSeq := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Seq" }, cmp.Ignore())
	if diff := cmp.Diff(wantS.Views, gotS.Views, ignoreSeq); diff != "" {
		t.Errorf("study views differ from the fold of the log (-fold +kv):\n%s", diff)
	}
	wantT, err := FoldTimeline(ctx, js, 0)
	if err != nil {
		t.Fatalf("FoldTimeline: %v", err)
	}
	gotT := map[projections.StudyBucketKey]*projections.StudyBucket{}
	for _, period := range []projections.Period{projections.PeriodHour, projections.PeriodDay} {
		buckets, err := client.ListStudyBuckets(ctx, js, period, nil)
		if err != nil {
			t.Fatalf("ListStudyBuckets: %v", err)
		}
		for i := range buckets {
			gotT[buckets[i].BucketKey()] = &buckets[i]
		}
	}
	if diff := cmp.Diff(wantT.Buckets, gotT, ignoreSeq); diff != "" {
		t.Errorf("study hour/day buckets differ from the fold of the log (-fold +kv):\n%s", diff)
	}
	wantR, err := FoldRollouts(ctx, js, v.Checkpoint)
	if err != nil {
		t.Fatalf("FoldRollouts: %v", err)
	}
	gotR := map[string]*projections.RolloutView{}
	for i := range v.Rollouts {
		gotR[v.Rollouts[i].Slug] = &v.Rollouts[i]
	}
	if diff := cmp.Diff(wantR.Views, gotR, ignoreSeq); diff != "" {
		t.Errorf("rollout views differ from the fold of the log (-fold +kv):\n%s", diff)
	}
	if len(wantU.Counts) == 0 || len(wantS.Views) == 0 || len(wantT.Buckets) == 0 || len(wantR.Views) == 0 {
		t.Errorf("fold has %d uptake keys and %d studies; the test log should produce both", len(wantU.Counts), len(wantS.Views))
	}
}

func testOptions() ProjectorConfig {
	return ProjectorConfig{FlushInterval: 10 * time.Millisecond, FlushCommits: 7, LeaseTTL: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func TestProjectorRestartAnywhereConverges(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	g := newLogGen(1)
	rng := rand.New(rand.NewPCG(2, 3))
	var last uint64
	var crashes atomic.Int64
	for round := range 8 {
		last = publishCommits(t, js, g, 40)
		p := NewProjector(js, testOptions())
		// Crash at the worst moment now and then (always at the first flush of the
		// first round): keys written, checkpoint not.
		var mu sync.Mutex
		p.afterKeys = func() error {
			mu.Lock()
			defer mu.Unlock()
			if crashes.Load() == 0 || rng.IntN(3) == 0 {
				crashes.Add(1)
				return errors.New("simulated crash between keys and checkpoint")
			}
			return nil
		}
		stop := runProjector(p)
		for deadline := time.Now().Add(10 * time.Second); crashes.Load() == 0 && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		mu.Lock()
		pause := time.Duration(rng.IntN(40)) * time.Millisecond
		mu.Unlock()
		time.Sleep(pause)
		if err := stop(); err != nil {
			t.Fatalf("round %d: Run: %v", round, err)
		}
	}
	p := NewProjector(js, testOptions())
	stop := runProjector(p)
	waitSeq(t, p, last)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if crashes.Load() == 0 {
		t.Errorf("no simulated crash happened; the test did not exercise recovery")
	}
	assertViewsMatchFold(t, js)
}

func TestProjectorSingleWriterFailover(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	g := newLogGen(4)
	optsA, optsB := testOptions(), testOptions()
	optsA.Holder, optsB.Holder = "a", "b"
	a := NewProjector(js, optsA)
	b := NewProjector(js, optsB)
	stopA, stopB := runProjector(a), runProjector(b)
	defer stopB()

	var both atomic.Bool
	var wg sync.WaitGroup
	watch, cancelWatch := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		for watch.Err() == nil {
			if a.Leading() && b.Leading() {
				both.Store(true)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	last := publishCommits(t, js, g, 100)
	// Run opens the buckets and competes for the lease on its own: wait for a leader.
	for deadline := time.Now().Add(10 * time.Second); !a.Leading() && !b.Leading(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no projector leading after 10s")
		}
	}
	first := a
	if b.Leading() {
		first = b
	}
	waitSeq(t, first, last)
	// The leader goes away; the other takes over and carries on.
	if first == a {
		_ = stopA()
	} else {
		_ = stopB()
	}
	defer stopA()
	second := b
	if first == b {
		second = a
	}
	last = publishCommits(t, js, g, 100)
	waitSeq(t, second, last)
	cancelWatch()
	wg.Wait()
	if both.Load() {
		t.Errorf("both projectors reported leading at once")
	}
	if !second.Leading() {
		t.Errorf("second projector is not leading after the first stopped")
	}
	assertViewsMatchFold(t, js)
}

func TestKVWatchSeesAppendedEvent(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.Start(t)
	if _, err := eventlog.EnsureEventsStream(context.Background(), js, 1); err != nil {
		t.Fatalf("EnsureEventsStream: %v", err)
	}
	p := NewProjector(js, testOptions())
	mustOpen(t, p) // the bucket to watch exists before the watch starts
	stop := runProjector(p)
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	updates := make(chan client.WatchUpdate, 16)
	go func() {
		_ = client.WatchView(ctx, nc, client.StudiesBucket, "preference_study.>", true, func(u client.WatchUpdate) error {
			updates <- u
			return nil
		})
	}()
	time.Sleep(50 * time.Millisecond) // let the watcher subscribe before the append
	c := eventstore.Commit{CommitID: "w1", CommandID: "w1", CommandType: domain.CommandRecipeRun, Client: "watcher",
		At: time.Date(2018, 7, 14, 0, 0, 0, 0, time.UTC), State: domain.ClientState{Client: "watcher"},
		Events: []domain.Event{{Type: domain.EventEnrolled, Object: domain.PreferenceStudy, Key: "watched", Slug: "watched",
			Branch: "control", From: domain.StateNone, To: domain.StateEnrolled}}}
	raw, err := eventstore.EncodeCommit(c)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	ack, err := js.Publish(ctx, "studyd.evt.watcher", raw)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	select {
	case u := <-updates:
		if u.Key != "preference_study.watched" || u.Op != "put" {
			t.Fatalf("update key %q op %q, want preference_study.watched put", u.Key, u.Op)
		}
		var v projections.StudyView
		if err := json.Unmarshal(u.Value, &v); err != nil {
			t.Fatalf("decode update: %v", err)
		}
		if v.Enrolled != 1 || v.Active != 1 || v.Seq != ack.Sequence {
			t.Errorf("view enrolled=%d active=%d seq=%d, want 1, 1, %d", v.Enrolled, v.Active, v.Seq, ack.Sequence)
		}
	case <-ctx.Done():
		t.Fatalf("no watch update for the appended enrollment")
	}
}

// TestProjectorReopensStalledTail: a tail that stops delivering while the log grows
// must not stall the views for good. The first tail here delivers nothing at all.
func TestProjectorReopensStalledTail(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	opts := testOptions()
	opts.StallAfter = 200 * time.Millisecond
	p := NewProjector(js, opts)
	opens := stallFirstTail(p)
	stop := runProjector(p)
	defer stop()
	last := publishCommits(t, js, newLogGen(5), 50)
	waitSeq(t, p, last)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := opens.Load(); n != 2 {
		t.Errorf("tail opened %d times, want 2 (the stalled one, then its replacement)", n)
	}
	assertViewsMatchFold(t, js)
}

// TestProjectorReopensStalledTailByDefault: with the default StallAfter a silent tail
// keeps the commits waiting out of the views for a couple of seconds, not ten (in one
// benchmark run the views trailed the appends by about nine seconds).
func TestProjectorReopensStalledTailByDefault(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	p := NewProjector(js, testOptions()) // StallAfter: the default
	stallFirstTail(p)
	stop := runProjector(p)
	defer stop()
	last := publishCommits(t, js, newLogGen(6), 20)
	bound := 2*DefaultStallAfter + time.Second // one probe may come just before the commits
	deadline := time.Now().Add(bound)
	for p.Seq() < last {
		if time.Now().After(deadline) {
			t.Fatalf("views at seq %d of %d after %s: a silent tail holds them back too long", p.Seq(), last, bound)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p.Reopens() != 1 {
		t.Errorf("Reopens = %d, want 1", p.Reopens())
	}
}

// stallFirstTail makes p's first tail deliver nothing at all, and its later ones read
// the log; it returns the count of tails opened.
func stallFirstTail(p *Projector) *atomic.Int64 {
	var opens atomic.Int64
	p.openTail = func(ctx context.Context, js jetstream.JetStream, from uint64) (<-chan tailMsg, func(), error) {
		if opens.Add(1) == 1 {
			return make(chan tailMsg), func() {}, nil // stalled from the start
		}
		return tailLog(ctx, js, from)
	}
	return &opens
}

// TestLastCommitSeq: the probe behind the stall check names the last commit, not a
// rejection recorded after it, and 0 for a log without commits.
func TestLastCommitSeq(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := lastCommitSeq(ctx, js.Conn()); err != nil || got != 0 {
		t.Fatalf("lastCommitSeq of an empty log = %d, %v; want 0, nil", got, err)
	}
	last := publishCommits(t, js, newLogGen(6), 3)
	if _, err := js.Publish(ctx, "studyd.rej.c1", []byte("a rejection")); err != nil {
		t.Fatalf("publish rejection: %v", err)
	}
	if got, err := lastCommitSeq(ctx, js.Conn()); err != nil || got != last {
		t.Errorf("lastCommitSeq = %d, %v; want %d, nil", got, err, last)
	}
}

// TestProjectorCarriesOnAfterAKeyIsDeleted: an operator deleting a view key (say with
// `nats kv del`) leaves a delete marker; the projector must write the key afresh on
// the marker's revision, not wedge on a compare-and-set it can never win. (KeyValue.Get
// reports a deleted key as never having existed, revision 0.)
func TestProjectorCarriesOnAfterAKeyIsDeleted(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	g := newLogGen(7)
	p := NewProjector(js, testOptions())
	stop := runProjector(p)
	defer stop()
	waitSeq(t, p, publishCommits(t, js, g, 60))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for slug := range 3 {
		key := client.StudyKey(domain.StudyRef{Object: domain.PreferenceStudy, Key: fmt.Sprintf("pref-%d", slug)})
		if err := p.studies.Delete(ctx, key); err != nil {
			t.Fatalf("delete %s: %v", key, err)
		}
	}
	waitSeq(t, p, publishCommits(t, js, g, 60))
	for slug := range 3 {
		key := client.StudyKey(domain.StudyRef{Object: domain.PreferenceStudy, Key: fmt.Sprintf("pref-%d", slug)})
		if _, err := p.studies.Get(ctx, key); err != nil {
			t.Errorf("study key %s after new commits: %v, want it written again", key, err)
		}
	}
}

// TestProjectorSkipsForgedCommits: with a commit key, a commit studyd did not write —
// here one enrolling clients in a study nobody runs — passes through the projector
// without touching a view, and the views equal the fold of the authentic commits.
func TestProjectorSkipsForgedCommits(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	ctx := context.Background()
	raw, err := audit.GenerateCommitKey(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.ParseCommitKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	g := newLogGen(9)
	publish := func(c eventstore.Commit, sign bool) uint64 {
		b, err := eventstore.EncodeCommit(c)
		if err != nil {
			t.Fatal(err)
		}
		msg := &nats.Msg{Subject: "studyd.evt." + string(c.Client), Data: b, Header: nats.Header{}}
		if sign {
			msg.Header.Set(audit.HeaderMAC, key.Sign(msg.Subject, b))
		}
		ack, err := js.PublishMsg(ctx, msg)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Sequence
	}
	for range 30 {
		publish(g.commit(), true)
	}
	forged := g.commit()
	forged.Events = []domain.Event{{Type: domain.EventEnrolled, Object: domain.PreferenceStudy, Key: "forged-study", Slug: "forged-study",
		Branch: "control", ExperimentType: domain.ExperimentTypeExp, From: domain.StateNone, To: domain.StateEnrolled}}
	publish(forged, false)
	var last uint64
	for range 30 {
		last = publish(g.commit(), true)
	}
	opts := testOptions()
	opts.CommitKey = key
	p := NewProjector(js, opts)
	stop := runProjector(p)
	waitSeq(t, p, last)
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	v, err := client.ReadViews(ctx, js, client.AllViews)
	if err != nil {
		t.Fatal(err)
	}
	gotU, gotS, err := v.Projections()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range gotS.Views {
		if v.Key == "forged-study" {
			t.Errorf("the forged commit's study is in the views: %+v", v)
		}
	}
	f, err := foldLog(ctx, js, last, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantU, wantS := f.uptake, f.studies
	if diff := cmp.Diff(wantU.Counts, gotU.Counts); diff != "" {
		t.Errorf("uptake views differ from the fold of the authentic commits (-fold +kv):\n%s", diff)
	}
	ignoreSeq := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Seq" }, cmp.Ignore())
	if diff := cmp.Diff(wantS.Views, gotS.Views, ignoreSeq); diff != "" {
		t.Errorf("study views differ from the fold of the authentic commits (-fold +kv):\n%s", diff)
	}
}

// mustOpen opens p's buckets, as its Run does first, for a test that uses them before
// (or without) running it.
func mustOpen(t testing.TB, p *Projector) {
	t.Helper()
	if err := p.open(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestProjectorOpensItsBucketsInRun: NewProjector only builds (it used to open the
// buckets, for up to 30 s, on a background context); Run opens them and returns what
// keeps it from doing so.
func TestProjectorOpensItsBucketsInRun(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.Start(t)
	nc.Close()
	p := NewProjector(js, testOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Run(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Run on a closed connection = %v (ctx %v), want an error at once", err, ctx.Err())
	}
}
