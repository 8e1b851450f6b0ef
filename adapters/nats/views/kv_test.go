package views

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
)

func TestKVKeyScheme(t *testing.T) {
	t.Parallel()
	hour := time.Date(2018, 7, 14, 12, 0, 0, 0, time.UTC).Unix()
	day := time.Date(2018, 7, 14, 0, 0, 0, 0, time.UTC).Unix()
	tests := []struct {
		name string
		got  string
		want string
	}{
		{name: "runner total", got: client.UptakeKey(projections.UptakeKey{Source: domain.SourceRunner, Status: domain.RunnerSuccess}),
			want: "runner.RUNNER_SUCCESS"},
		{name: "action total", got: client.UptakeKey(projections.UptakeKey{Source: domain.ActionSource("preference-experiment"), Status: domain.ActionSuccess}),
			want: "action.preference-experiment.ACTION_SUCCESS"},
		{name: "recipe hour", got: client.UptakeKey(projections.UptakeKey{Source: domain.RecipeSource(42), Status: domain.RecipeSuccess,
			Period: projections.PeriodHour, Start: hour}), want: "hour.2018071412.recipe.42.RECIPE_SUCCESS"},
		{name: "runner day", got: client.UptakeKey(projections.UptakeKey{Source: domain.SourceRunner, Status: domain.RunnerNetworkError,
			Period: projections.PeriodDay, Start: day}), want: "day.20180714.runner.RUNNER_NETWORK_ERROR"},
		{name: "dotted action name is escaped, not split", got: client.UptakeKey(projections.UptakeKey{Source: "normandy/action/a.b",
			Status: domain.ActionSuccess}), want: "action.=YS5i.ACTION_SUCCESS"},
		{name: "preference study", got: client.StudyKey(domain.StudyRef{Object: domain.PreferenceStudy, Key: "my-slug"}),
			want: "preference_study.my-slug"},
		{name: "addon study", got: client.StudyKey(domain.StudyRef{Object: domain.AddonStudy, Key: "42"}), want: "addon_study.42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.got != tt.want {
				t.Errorf("key = %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestKVUptakeValueRoundTrip(t *testing.T) {
	t.Parallel()
	k := projections.UptakeKey{Source: domain.RecipeSource(7), Status: domain.RecipeExecutionError, Period: projections.PeriodHour,
		Start: time.Date(2018, 7, 14, 12, 0, 0, 0, time.UTC).Unix()}
	v := client.NewUptakeValue(k, 3, 9)
	got, err := v.Key()
	if err != nil || got != k {
		t.Errorf("uptakeValue(%+v).Key() = %+v, %v; want the key back", k, got, err)
	}
	if v.Label != "apply_error" || v.Health != projections.HealthBad {
		t.Errorf("label %q health %q, want apply_error bad", v.Label, v.Health)
	}
}

// TestKVWriteAllFencesStaleWriter: a writer whose revision is stale (another wrote the
// key since) gets ErrLeaseLost and does not overwrite the newer value.
func TestKVWriteAllFencesStaleWriter(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: client.StudiesBucket})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	var rev uint64
	if err := writeAll(ctx, js, []kvWrite{{bucket: kv, key: "k", value: []byte(`{"seq":1}`), done: func(r uint64) { rev = r }}}, time.Minute); err != nil {
		t.Fatalf("first write: %v", err)
	}
	if _, err := kv.Update(ctx, "k", []byte(`{"seq":2}`), rev); err != nil {
		t.Fatalf("newer writer: %v", err)
	}
	err = writeAll(ctx, js, []kvWrite{{bucket: kv, key: "k", value: []byte(`{"seq":1}`), rev: rev}}, time.Minute)
	if !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("stale write error = %v, want ErrLeaseLost", err)
	}
	e, err := kv.Get(ctx, "k")
	if err != nil || string(e.Value()) != `{"seq":2}` {
		t.Errorf("value after stale write = %q (%v), want the newer {\"seq\":2}", e.Value(), err)
	}
}

// TestKVWriteAllGivesUpOnLostAcks: JetStream never answers a publish lost in a leader
// change. Here the bucket's stream is gone and a plain subscriber swallows its subject,
// so no ack and no "no responders" ever comes back: writeAll must still return, with
// an error, even under a context without a deadline (the projector's run context).
func TestKVWriteAllGivesUpOnLostAcks(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: client.StudiesBucket})
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	if err := js.DeleteKeyValue(ctx, client.StudiesBucket); err != nil {
		t.Fatalf("delete bucket: %v", err)
	}
	sub, err := nc.Subscribe("$KV."+client.StudiesBucket+".>", func(*nats.Msg) {})
	if err != nil {
		t.Fatalf("swallower: %v", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	writes := []kvWrite{{bucket: kv, key: "a", value: []byte(`{}`)}, {bucket: kv, key: "b", value: []byte(`{}`)}}
	err = writeAll(context.Background(), js, writes, 200*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("writeAll with lost acks = %v, want a deadline error", err)
	}
	if !strings.Contains(err.Error(), "2 of 2 acks missing") {
		t.Errorf("error %q should say how many acks were missing", err)
	}
}

// TestLeaderEntry: the projector's leader read gives a key's value and revision, and
// for a deleted or purged key the marker's revision, which KeyValue.Get does not.
func TestLeaderEntry(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := NewProjector(js, ProjectorConfig{})
	mustOpen(t, p)
	kv := p.studies
	put := func(key, val string) uint64 {
		rev, err := kv.Put(ctx, key, []byte(val))
		if err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		return rev
	}
	marker := func(key string, del func(context.Context, string, ...jetstream.KVDeleteOpt) error) uint64 {
		put(key, `{}`)
		if err := del(ctx, key); err != nil {
			t.Fatalf("delete %s: %v", key, err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatalf("status: %v", err)
		}
		return st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq
	}
	put("live", `{"v":1}`)
	want := map[string]client.KeyEntry{
		"live":    {Value: []byte(`{"v":2}`), Rev: put("live", `{"v":2}`)},
		"deleted": {Rev: marker("deleted", kv.Delete)},
		"purged":  {Rev: marker("purged", kv.Purge)},
		"never":   {},
	}
	for key, w := range want {
		got, err := p.leaderEntry(ctx, kv, key)
		if err != nil {
			t.Fatalf("leaderEntry(%s): %v", key, err)
		}
		if string(got.Value) != string(w.Value) || got.Rev != w.Rev || (got.Value == nil) != (w.Value == nil) {
			t.Errorf("leaderEntry(%s) = %q rev %d, want %q rev %d", key, got.Value, got.Rev, w.Value, w.Rev)
		}
	}
}
