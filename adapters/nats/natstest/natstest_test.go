package natstest_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/natstest"
)

func TestStartServesJetStream(t *testing.T) {
	_, _, js := natstest.Start(t)
	ctx := t.Context()
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	ack, err := js.Publish(ctx, "t.x", []byte("hello"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ack.Sequence != 1 {
		t.Fatalf("got sequence %d, want 1", ack.Sequence)
	}
	msg, err := s.GetLastMsgForSubject(context.Background(), "t.x")
	if err != nil {
		t.Fatalf("get last: %v", err)
	}
	if got := string(msg.Data); got != "hello" {
		t.Fatalf("got %q, want %q", got, "hello")
	}
}
