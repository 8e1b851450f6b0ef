package embedded_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/embedded"
)

func TestStartEmbeddedListensOnLoopback(t *testing.T) {
	s, err := embedded.Start(embedded.Config{StoreDir: t.TempDir(), Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })

	// Over TCP, as the nats CLI would connect.
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatalf("connect %s: %v", s.ClientURL(), err)
	}
	defer nc.Close()
	if got, want := nc.MaxPayload(), int64(embedded.DefaultMaxPayload); got != want {
		t.Errorf("got max payload %d, want %d", got, want)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	info, err := js.AccountInfo(t.Context())
	if err != nil {
		t.Fatalf("account info (is JetStream on?): %v", err)
	}
	if info.Streams != 0 {
		t.Errorf("got %d streams on a fresh store, want 0", info.Streams)
	}
}

func TestEmbeddedConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  embedded.Config
		ok   bool
	}{
		{"in-process only", embedded.Config{StoreDir: "/tmp/x"}, true},
		{"random port", embedded.Config{StoreDir: "/tmp/x", Listen: "127.0.0.1:-1"}, true},
		{"fixed port", embedded.Config{StoreDir: "/tmp/x", Listen: "127.0.0.1:4222"}, true},
		{"no store dir", embedded.Config{Listen: "127.0.0.1:4222"}, false},
		{"no port", embedded.Config{StoreDir: "/tmp/x", Listen: "127.0.0.1"}, false},
		{"port out of range", embedded.Config{StoreDir: "/tmp/x", Listen: "127.0.0.1:70000"}, false},
		{"negative payload", embedded.Config{StoreDir: "/tmp/x", MaxPayload: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if got := err == nil; got != tt.ok {
				t.Fatalf("got error %v, want ok=%t", err, tt.ok)
			}
			if err != nil && !errors.Is(err, embedded.ErrConfig) {
				t.Errorf("got %v, want it to wrap ErrConfig", err)
			}
		})
	}
}

// TestStartFailsAtOnceOnABusyAddress: the server's own "address already in use" is the
// error, not a 30 s wait for readiness (issue 12, case 10).
func TestStartFailsAtOnceOnABusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	logged := &syncWriter{w: &strings.Builder{}}
	log := slog.New(slog.NewTextHandler(logged, nil))
	s, err := embedded.StartContext(context.Background(), embedded.Config{StoreDir: t.TempDir(), Listen: addr, Log: log})
	if err == nil {
		s.Shutdown()
		t.Fatalf("Start on busy %s succeeded, want an error", addr)
	}
	if !strings.Contains(err.Error(), "address already in use") || !strings.Contains(err.Error(), addr) {
		t.Errorf("error %q: want the server's \"address already in use\" naming %s", err, addr)
	}
	if !strings.Contains(logged.String(), "address already in use") {
		t.Errorf("the server's error did not reach the log:\n%s", logged.String())
	}
}

// TestSyncSettingReachesTheServer: --sync always makes JetStream fsync before every
// acknowledgement; an interval sets its background sync (issue 12, case 11).
func TestSyncSettingReachesTheServer(t *testing.T) {
	tests := []struct {
		name     string
		cfg      embedded.Config
		always   bool
		interval time.Duration
	}{
		{name: "always", cfg: embedded.Config{SyncAlways: true}, always: true},
		{name: "interval", cfg: embedded.Config{SyncInterval: time.Second}, interval: time.Second},
		{name: "server default", cfg: embedded.Config{}, interval: 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.StoreDir = t.TempDir()
			s, err := embedded.Start(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Shutdown(); s.WaitForShutdown() }()
			js := s.JetStreamConfig()
			if js.SyncAlways != tt.always || (!tt.always && js.SyncInterval != tt.interval) {
				t.Errorf("JetStream sync always %t every %s; want always %t or every %s", js.SyncAlways, js.SyncInterval, tt.always, tt.interval)
			}
		})
	}
}

// syncWriter serialises writes from the server's goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
