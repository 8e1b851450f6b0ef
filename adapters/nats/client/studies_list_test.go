package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/projections"
)

func TestReadViewsSortsEveryStudyView(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := context.Background()
	if _, err := client.ReadViews(ctx, js, client.StudyViews); !errors.Is(err, client.ErrNoViews) {
		t.Fatalf("ReadViews before any projector: %v, want ErrNoViews", err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: client.ProjectionBucket}); err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: client.StudiesBucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []projections.StudyView{
		{Object: domain.PreferenceStudy, Key: "b-slug", Enrolled: 2},
		{Object: domain.AddonStudy, Key: "42", Enrolled: 1},
		{Object: domain.PreferenceStudy, Key: "a-slug", Enrolled: 3},
	} {
		b, _ := json.Marshal(v)
		if _, err := kv.Put(ctx, string(v.Object)+"."+v.Key, b); err != nil {
			t.Fatal(err)
		}
	}
	v, err := client.ReadViews(ctx, js, client.StudyViews)
	if err != nil {
		t.Fatal(err)
	}
	got := v.Studies
	want := []string{"addon_study/42", "preference_study/a-slug", "preference_study/b-slug"}
	if len(got) != len(want) {
		t.Fatalf("got %d views, want %d", len(got), len(want))
	}
	for i, v := range got {
		if ref := (domain.StudyRef{Object: v.Object, Key: v.Key}).String(); ref != want[i] {
			t.Errorf("view %d = %s, want %s", i, ref, want[i])
		}
	}
}
