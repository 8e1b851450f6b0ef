// Package natstest starts a real, embedded nats-server with JetStream for tests: studyd
// never tests against a mock of NATS.
package natstest

import (
	"cmp"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// It imports none of the adapters, so that their own internal tests can use it
// without an import cycle; the options mirror embedded.Start's.

// Config is what a test may choose about its server.
type Config struct {
	// StoreDir is JetStream's directory; "" means a fresh t.TempDir. Reuse one across a
	// restart to test recovery.
	StoreDir string
	// Listen adds a loopback listener ("127.0.0.1:-1" for a random port), e.g. for a
	// child process or the nats CLI; "" means in-process connections only.
	Listen bool
	// MaxPayload is the server's max_payload; 0 means 8 MiB (the embedded default).
	// 1 MiB is what an external server has by default.
	MaxPayload int32
	// Users, if any, are the only ones allowed in (nats.UserInfo); Start's and
	// Connect's anonymous connections then fail, so connect with a user's password.
	Users []*server.User
}

// Start runs an embedded JetStream server on a fresh t.TempDir store with no network
// listener, and returns it with an in-process connection and its JetStream handle. The
// connection is closed and the server shut down when the test ends.
func Start(t testing.TB) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	return StartWith(t, Config{})
}

// StartWith is Start with a config of the caller's (e.g. a store dir to reuse across a
// restart, or a loopback listener for the nats CLI). An empty StoreDir gets t.TempDir.
func StartWith(t testing.TB, cfg Config) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s := StartServer(t, cfg)
	nc, js := Connect(t, s)
	return s, nc, js
}

// StartServer starts the server alone, shut down when the test ends (Shutdown is
// idempotent, so a test may also stop it early to restart on the same StoreDir).
func StartServer(t testing.TB, cfg Config) *server.Server {
	t.Helper()
	if cfg.StoreDir == "" {
		cfg.StoreDir = t.TempDir()
	}
	opts := &server.Options{
		JetStream:              true,
		StoreDir:               cfg.StoreDir,
		MaxPayload:             cmp.Or(cfg.MaxPayload, 8<<20),
		MaxPending:             64 << 20,
		NoSigs:                 true,
		NoLog:                  true,
		DisableJetStreamBanner: true,
		DontListen:             !cfg.Listen,
		Host:                   "127.0.0.1",
		Port:                   -1,
		Users:                  cfg.Users,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("start embedded nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		t.Fatalf("embedded nats-server not ready for connections after 30s")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Connect opens another in-process connection to s with opts (a user's password, say),
// closed when the test ends.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect("", append([]nats.Option{nats.InProcessServer(s), nats.Name(t.Name())}, opts...)...)
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
