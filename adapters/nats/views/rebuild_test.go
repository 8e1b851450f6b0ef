package views

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/projections"
)

func TestRebuildReplacesViewsWithoutGaps(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatalf("EnsureEventsStream: %v", err)
	}
	g := newLogGen(21)
	last := publishCommits(t, js, g, 150)
	p := NewProjector(js, testOptions())
	stop := runProjector(p)
	defer stop()
	waitSeq(t, p, last)

	// Damage the live views: a wrong count and a key no fold produces.
	studies, err := js.KeyValue(ctx, client.StudiesBucket)
	if err != nil {
		t.Fatalf("open studies: %v", err)
	}
	e, err := studies.Get(ctx, "preference_study.pref-0")
	if err != nil {
		t.Fatalf("get pref-0: %v", err)
	}
	var v projections.StudyView
	if err := json.Unmarshal(e.Value(), &v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	v.Enrolled += 1000
	b, _ := json.Marshal(v)
	if _, err := studies.Put(ctx, "preference_study.pref-0", b); err != nil {
		t.Fatalf("damage: %v", err)
	}
	if _, err := studies.Put(ctx, "preference_study.garbage", []byte(`{"object":"preference_study","key":"garbage","enrolled":1}`)); err != nil {
		t.Fatalf("add garbage: %v", err)
	}

	// And lose one study's day bucket.
	times, err := js.KeyValue(ctx, client.StudyTimeBucket)
	if err != nil {
		t.Fatalf("open study time: %v", err)
	}
	days, err := client.ListStudyBuckets(ctx, js, projections.PeriodDay, nil)
	if err != nil || len(days) == 0 {
		t.Fatalf("ListStudyBuckets = %d buckets, %v; want some", len(days), err)
	}
	if err := times.Delete(ctx, client.StudyTimeKey(days[0].BucketKey())); err != nil {
		t.Fatalf("damage: %v", err)
	}

	// And a rollout's view edited.
	rollouts, err := js.KeyValue(ctx, client.RolloutsBucket)
	if err != nil {
		t.Fatalf("open rollouts: %v", err)
	}
	re, err := rollouts.Get(ctx, client.RolloutKey("rollout-0"))
	if err != nil {
		t.Fatalf("get rollout-0: %v", err)
	}
	var rv projections.RolloutView
	if err := json.Unmarshal(re.Value(), &rv); err != nil {
		t.Fatalf("decode: %v", err)
	}
	rv.Enrolled += 1000
	b, _ = json.Marshal(rv)
	if _, err := rollouts.Put(ctx, client.RolloutKey("rollout-0"), b); err != nil {
		t.Fatalf("damage: %v", err)
	}

	// A reader watches every key while the rebuild runs.
	var mu sync.Mutex
	deleted := map[string]bool{}
	wctx, wcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, bucket := range []string{client.StudiesBucket, client.UptakeBucket} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = client.WatchView(wctx, nc, bucket, ">", true, func(u client.WatchUpdate) error {
				if u.Op != "put" {
					mu.Lock()
					deleted[bucket+" "+u.Key] = true
					mu.Unlock()
				}
				return nil
			})
		}()
	}
	time.Sleep(50 * time.Millisecond)

	var phases []string
	res, err := client.RequestRebuild(ctx, nc, func(pr client.RebuildProgress) {
		mu.Lock()
		phases = append(phases, pr.Phase)
		mu.Unlock()
	})
	if err != nil {
		t.Fatalf("RequestRebuild: %v", err)
	}
	time.Sleep(100 * time.Millisecond) // let the watchers drain
	wcancel()
	wg.Wait()

	if res.Seq != last || res.Commits != 150 || res.Deleted != 1 {
		t.Errorf("rebuild result %+v, want seq %d, 150 commits, 1 deleted", res, last)
	}
	mu.Lock()
	if len(deleted) != 1 || !deleted[client.StudiesBucket+" preference_study.garbage"] {
		t.Errorf("keys deleted during the rebuild: %v, want only the garbage key", deleted)
	}
	if len(phases) == 0 {
		t.Errorf("no progress reported")
	}
	mu.Unlock()
	assertViewsMatchFold(t, js)
	assertAllStamped(t, js, last)

	// The live projector carries on from the rebuilt checkpoint.
	last = publishCommits(t, js, g, 20)
	waitSeq(t, p, last)
	assertViewsMatchFold(t, js)
}

// assertAllStamped checks that every view value reflects at least seq.
func assertAllStamped(t *testing.T, js jetstream.JetStream, seq uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, bucket := range []string{client.StudiesBucket, client.UptakeBucket, client.StudyTimeBucket, client.RolloutsBucket} {
		err := client.EachValue(ctx, js, bucket, ">", func(key string, b []byte) error {
			var v struct {
				Seq uint64 `json:"seq"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				return err
			}
			if v.Seq < seq {
				t.Errorf("%s %s stamped seq %d, want >= %d", bucket, key, v.Seq, seq)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("read %s: %v", bucket, err)
		}
	}
}

func TestRebuildNeedsTheLeader(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.Start(t)
	p := NewProjector(js, testOptions())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := p.Rebuild(ctx, nil); err == nil {
		t.Errorf("Rebuild on a projector that is not running: error nil, want ErrNotLeader")
	}
	if _, err := client.RequestRebuild(ctx, nc, nil); err == nil {
		t.Errorf("RequestRebuild with no projector: error nil, want no responders")
	}
}
