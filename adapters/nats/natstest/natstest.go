// Package natstest starts a real, embedded nats-server with JetStream for tests: studyd
// never tests against a mock of NATS.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	natsadapter "github.com/studyd/studyd/adapters/nats"
)

// Start runs an embedded JetStream server on a fresh t.TempDir store with no network
// listener, and returns it with an in-process connection and its JetStream handle. The
// connection is closed and the server shut down when the test ends.
func Start(t testing.TB) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	return StartWith(t, natsadapter.EmbeddedConfig{StoreDir: t.TempDir()})
}

// StartWith is Start with a config of the caller's (e.g. a store dir to reuse across a
// restart, or a loopback listener for the nats CLI). An empty StoreDir gets t.TempDir.
func StartWith(t testing.TB, cfg natsadapter.EmbeddedConfig) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	s, err := natsadapter.StartEmbedded(cfg)
	if err != nil {
		t.Fatalf("start embedded nats-server: %v", err)
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	nc, js := Connect(t, s)
	return s, nc, js
}

// Connect opens another in-process connection to s, closed when the test ends.
func Connect(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect("", nats.InProcessServer(s), nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("connect in-process: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream handle: %v", err)
	}
	return nc, js
}
