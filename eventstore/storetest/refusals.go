package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// RefusalStore is a Store that keeps a refusal index (app.RefusalIndex: declared there,
// by its consumer, which this package may not import).
type RefusalStore interface {
	eventstore.Store
	// Refused returns the position remembered for client's commandID; ok is false if
	// none is.
	Refused(ctx context.Context, client domain.ClientID, commandID string) (pos uint64, ok bool, err error)
	// RememberRefusal remembers pos as the latest refusal of client's commandID.
	RememberRefusal(ctx context.Context, client domain.ClientID, commandID string, pos uint64) error
}

// RunRefusalIndex runs the refusal index's conformance tests. newStore must return an
// empty store, private to the subtest that asks for it.
func RunRefusalIndex(t *testing.T, newStore func(t *testing.T) RefusalStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s RefusalStore)
	}{
		{"RememberAndFind", testRefusalRemembered},
		{"LatestWins", testRefusalLatestWins},
		{"RejectAloneIndexesNothing", testRejectAloneIndexesNothing},
		{"InvalidClient", testRefusalInvalidClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newStore(t))
		})
	}
}

// reject records a refusal of client's commandID with code and returns its position.
func reject(t *testing.T, s eventstore.Store, client domain.ClientID, commandID string, code domain.RejectionCode) uint64 {
	t.Helper()
	pos, err := s.Reject(t.Context(), eventstore.Rejection{CommandID: commandID, Client: client,
		Subject: "studyd.cmd." + string(client), Code: code, Error: string(code), At: base})
	if err != nil {
		t.Fatalf("Reject(%s/%s): %v", client, commandID, err)
	}
	return pos
}

func remember(t *testing.T, s RefusalStore, client domain.ClientID, commandID string, pos uint64) {
	t.Helper()
	if err := s.RememberRefusal(t.Context(), client, commandID, pos); err != nil {
		t.Fatalf("RememberRefusal(%s, %q, %d): %v", client, commandID, pos, err)
	}
}

func wantRefused(t *testing.T, s RefusalStore, client domain.ClientID, commandID string, want uint64) {
	t.Helper()
	pos, ok, err := s.Refused(t.Context(), client, commandID)
	if err != nil {
		t.Fatalf("Refused(%s, %q): %v", client, commandID, err)
	}
	if ok != (want != 0) || pos != want {
		t.Errorf("got Refused(%s, %q) = %d, %t; want %d, %t", client, commandID, pos, ok, want, want != 0)
	}
}

func testRefusalRemembered(t *testing.T, s RefusalStore) {
	// Ids are hashed into keys: any bytes a command id may hold are fine.
	ids := []string{"cmd-1", "a b.c*>", "ünïcödé/ü", "cmd-1 "}
	pos := map[string]uint64{}
	for _, id := range ids {
		pos[id] = reject(t, s, "client-a", id, domain.RejectIllegal)
		remember(t, s, "client-a", id, pos[id])
	}
	remember(t, s, "client-a", "cmd-1", pos["cmd-1"]) // idempotent
	for _, id := range ids {
		wantRefused(t, s, "client-a", id, pos[id])
	}
	wantRefused(t, s, "client-a", "never", 0)
	wantRefused(t, s, "client-b", "cmd-1", 0) // ids are per client
}

func testRefusalLatestWins(t *testing.T, s RefusalStore) {
	first := reject(t, s, "client-a", "cmd-1", domain.RejectIllegal)
	remember(t, s, "client-a", "cmd-1", first)
	write(t, s, "client-a", "cmd-2", base.Add(time.Minute))
	second := reject(t, s, "client-a", "cmd-1", domain.RejectStale)
	remember(t, s, "client-a", "cmd-1", second)
	wantRefused(t, s, "client-a", "cmd-1", second)
	r, err := s.Rejection(t.Context(), second)
	if err != nil || r.Code != domain.RejectStale || r.CommandID != "cmd-1" {
		t.Errorf("got Rejection(%d) = %s %s, %v; want cmd-1 stale", second, r.CommandID, r.Code, err)
	}
}

// The index holds what was remembered, not what was recorded: the handler writes it
// after Reject, on every store alike.
func testRejectAloneIndexesNothing(t *testing.T, s RefusalStore) {
	reject(t, s, "client-a", "cmd-1", domain.RejectIllegal)
	wantRefused(t, s, "client-a", "cmd-1", 0)
}

func testRefusalInvalidClient(t *testing.T, s RefusalStore) {
	for _, c := range []domain.ClientID{"", "a.b", "a b", "a*"} {
		if err := s.RememberRefusal(t.Context(), c, "cmd-1", 1); err == nil {
			t.Errorf("RememberRefusal(%q): got no error, want the client id refused", c)
		}
		if _, ok, err := s.Refused(t.Context(), c, "cmd-1"); err == nil || ok {
			t.Errorf("Refused(%q): got %t, %v; want an error", c, ok, err)
		}
	}
}
