package client

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/domain"
)

// TestAwaitAckResends covers the resend path: an async publish that failed (no future)
// is sent again synchronously, keeps its Nats-Msg-Id, and a second resend of the same
// command is stored once and counted as a duplicate.
func TestAwaitAckResends(t *testing.T) {
	ctx := context.Background()
	_, _, js := natstest.Start(t)
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: CommandsStream, Subjects: []string{"studyd.cmd.>"}, Retention: jetstream.WorkQueuePolicy, Duplicates: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	cmd := domain.Command{Type: domain.CommandOptOut, CommandID: "c-1", ClientID: "c", At: time.Unix(1, 0).UTC()}
	msg, err := commandMsg(cmd, false)
	if err != nil {
		t.Fatal(err)
	}
	msg.Header.Set(jetstream.MsgIDHeader, cmd.CommandID)
	opts := PublishOptions{}.withDefaults()
	stats := PublishStats{PerType: map[domain.CommandType]int{}}
	for range 2 {
		if err := awaitAck(ctx, js, pubItem{cmd: cmd, msg: msg}, opts, &stats); err != nil {
			t.Fatalf("awaitAck: %v", err)
		}
	}
	if stats.Acked != 2 || stats.Retries != 2 || stats.Duplicates != 1 || stats.PerType[domain.CommandOptOut] != 2 {
		t.Errorf("got %+v, want 2 acked, 2 retries, 1 duplicate", stats)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("stream holds %d messages, want 1", info.State.Msgs)
	}
}
