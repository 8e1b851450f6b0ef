package intake

import (
	"context"
	"testing"
	"time"

	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/domain"
)

// TestPutBackCommandHoldsItsClientWhileQueued: a command put back undecided holds its
// client's newer commands for as long as the work queue still has it, however long
// that is. Forgotten after twice AckWait, as it was, it could let a newer command of
// the client come back first and be decided before it while a consumer leader was
// away: the likely cause of one "stale run" rejection among the 22,287 commands of a
// container cluster-faults run.
// Once the stream no longer holds it (settled by another instance), it is forgotten.
func TestPutBackCommandHoldsItsClientWhileQueued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, _, js := natstest.Start(t)
	stream, err := EnsureCommandsStream(ctx, js, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "studyd.cmd.c1", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	in := &Intake{stream: stream}
	p := newPartition(0, nil)
	client := domain.ClientID("c1")
	longAgo := time.Now().Add(-time.Minute)
	p.held[client] = map[uint64]time.Time{ack.Sequence: longAgo}

	if oldest, ok := p.oldestHeld(client, 10*time.Second, in.stillQueued(ctx)); !ok || oldest != ack.Sequence {
		t.Fatalf("oldestHeld = %d, %v; want %d, true: the put-back command is still queued", oldest, ok, ack.Sequence)
	}
	if since := p.held[client][ack.Sequence]; !since.After(longAgo) {
		t.Errorf("the entry was not renewed after the stream said it is still queued (%v)", since)
	}

	// Another instance settles it: the work queue removes it.
	if err := stream.DeleteMsg(ctx, ack.Sequence); err != nil {
		t.Fatal(err)
	}
	p.held[client][ack.Sequence] = longAgo
	if oldest, ok := p.oldestHeld(client, 10*time.Second, in.stillQueued(ctx)); ok {
		t.Fatalf("oldestHeld = %d, true; want none: the command left the stream", oldest)
	}
	if _, ok := p.held[client]; ok {
		t.Errorf("the client's held entry is still there after its command left the stream")
	}
}
