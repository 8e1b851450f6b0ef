package embedded_test

import (
	"errors"
	"testing"

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
				t.Errorf("got %v, want it to wrap ErrEmbeddedConfig", err)
			}
		})
	}
}
