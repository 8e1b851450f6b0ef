package checkpoint_test

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/checkpoint"
	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/eventlog/eventlogtest"
)

// copyCheckpoints copies the checkpoints of the original log, signatures intact.
func copyCheckpoints(t *testing.T, from, to jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	if _, err := checkpoint.EnsureStream(ctx, to, 1); err != nil {
		t.Fatal(err)
	}
	for _, e := range eventlogtest.ReplayAll(t, from, eventlog.ReplayOptions{Stream: checkpoint.Stream}) {
		if _, err := to.Publish(ctx, e.Subject, e.Data); err != nil {
			t.Fatal(err)
		}
	}
}

func mustKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, key
}
