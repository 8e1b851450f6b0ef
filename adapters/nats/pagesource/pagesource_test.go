package pagesource

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
)

// TestSourceFollowsTheCheckpointAndTheLog: before any projector the page reads empty
// views; then the checkpoint's KV watch delivers each new checkpoint, and the fleet
// status counts the log's last commit and its recorded rejections.
func TestSourceFollowsTheCheckpointAndTheLog(t *testing.T) {
	t.Parallel()
	_, nc, js := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	s := New(js)
	if views, err := s.Studies(ctx); err != nil || len(views) != 0 {
		t.Fatalf("Studies before any projector = %v, %v; want none, nil", views, err)
	}
	if cp, err := s.Checkpoint(ctx); err != nil || cp != 0 {
		t.Fatalf("Checkpoint before any projector = %d, %v; want 0, nil", cp, err)
	}

	proj, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: client.ProjectionBucket})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{3, 7} {
		b, _ := json.Marshal(client.ViewCheckpoint{Seq: seq})
		if _, err := proj.Put(ctx, client.CheckpointKey, b); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-ch:
			if got != seq {
				t.Errorf("Watch sent %d, want %d", got, seq)
			}
		case <-ctx.Done():
			t.Fatalf("Watch sent nothing after checkpoint %d", seq)
		}
	}

	// Two commits and a rejection in the log (their bytes do not matter here).
	for _, subj := range []string{"studyd.evt.c1", "studyd.rej.c2", "studyd.evt.c3"} {
		if _, err := js.Publish(ctx, subj, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	st, err := s.FleetStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.LogSeq != 3 || st.ProjectionSeq != 7 || st.Rejections != 1 || st.Parked != 0 {
		t.Errorf("FleetStatus = %+v; want log seq 3, projection seq 7, 1 rejection, nothing parked", st)
	}
	// A parked command (the stream as intake.EnsureParkedStream makes it).
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: client.ParkedStream, Subjects: []string{"studyd.parked.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "studyd.parked.c2", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if st, err = s.FleetStatus(ctx); err != nil || st.Parked != 1 {
		t.Errorf("FleetStatus = %+v, %v; want 1 parked command", st, err)
	}
}
