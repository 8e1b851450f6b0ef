package eventlog_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/eventstore/storetest"
)

func newJetStreamStore(t *testing.T) eventstore.Store {
	_, _, js := natstest.Start(t)
	if _, err := eventlog.EnsureEventsStream(t.Context(), js, 1); err != nil {
		t.Fatalf("EnsureEventsStream: %v", err)
	}
	return eventlog.NewStore(js)
}

func TestStoreConformance(t *testing.T) {
	storetest.Run(t, newJetStreamStore)
}

func TestRefusalIndexConformance(t *testing.T) {
	storetest.RunRefusalIndex(t, func(t *testing.T) storetest.RefusalStore {
		return newJetStreamStore(t).(*eventlog.Store)
	})
}

func firstCommit(client domain.ClientID, cmd string) eventstore.Commit {
	return eventstore.Commit{
		CommitID: "commit-" + cmd, CommandID: cmd, CommandType: domain.CommandOptOut, Client: client,
		At:     time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC),
		Events: []domain.Event{{Type: domain.EventStudiesOptOutChanged}},
		State:  domain.ClientState{Client: client, StudiesDisabled: true},
		Recent: []eventstore.Applied{{CommandID: cmd}},
	}
}

func TestStoreWritesOneMessagePerCommit(t *testing.T) {
	_, _, js := natstest.Start(t)
	ctx := t.Context()
	stream, err := eventlog.EnsureEventsStream(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := eventlog.NewStore(js)
	r, err := s.Append(ctx, firstCommit("client-1", "cmd-1"), 0)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetMsg(ctx, r.Position)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := msg.Subject, "studyd.evt.client-1"; got != want {
		t.Errorf("got subject %q, want %q", got, want)
	}
	if got := eventstore.Hash(msg.Data); got != r.Hash {
		t.Errorf("got stored hash %s, want the record's %s", got, r.Hash)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Errorf("got %d messages, want 1", info.State.Msgs)
	}
}

func TestEnsureEventsStreamIsIdempotent(t *testing.T) {
	_, _, js := natstest.Start(t)
	ctx := t.Context()
	for i := range 2 {
		st, err := eventlog.EnsureEventsStream(ctx, js, 1)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		cfg := st.CachedInfo().Config
		if !cfg.DenyDelete || !cfg.DenyPurge || !cfg.AllowDirect || cfg.Storage != jetstream.FileStorage ||
			cfg.Duplicates != eventlog.DefaultDuplicates || cfg.MaxAge != 0 {
			t.Errorf("call %d: got config %+v", i, cfg)
		}
	}
	// An older stream without direct get is upgraded in place.
	cfg := eventlog.EventsStreamConfig(1)
	cfg.AllowDirect = false
	cfg.Duplicates = time.Second
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	st, err := eventlog.EnsureEventsStream(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config; !got.AllowDirect || got.Duplicates != eventlog.DefaultDuplicates {
		t.Errorf("got allow_direct %t, duplicates %v after ensure; want true, %v", got.AllowDirect, got.Duplicates, eventlog.DefaultDuplicates)
	}
}

func TestEnsureEventsStreamRefusesMismatch(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*jetstream.StreamConfig)
		setting string
	}{
		{"memory storage", func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage }, "storage"},
		{"work queue", func(c *jetstream.StreamConfig) { c.Retention = jetstream.WorkQueuePolicy }, "retention"},
		{"deletable", func(c *jetstream.StreamConfig) { c.DenyDelete = false }, "deny_delete"},
		{"purgeable", func(c *jetstream.StreamConfig) { c.DenyPurge = false }, "deny_purge"},
		{"max age", func(c *jetstream.StreamConfig) { c.MaxAge = time.Hour }, "max_age"},
		{"one per subject", func(c *jetstream.StreamConfig) { c.MaxMsgsPerSubject = 1 }, "max_msgs_per_subject"},
		{"bytes cap dropping old", func(c *jetstream.StreamConfig) {
			c.MaxBytes = 1 << 30
			c.Discard = jetstream.DiscardOld
		}, "discard"},
		{"no rejections", func(c *jetstream.StreamConfig) { c.Subjects = []string{eventlog.EventSubjects} }, "subjects"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, js := natstest.Start(t)
			cfg := eventlog.EventsStreamConfig(1)
			tt.mutate(&cfg)
			if _, err := js.CreateStream(t.Context(), cfg); err != nil {
				t.Fatalf("create the mismatching stream: %v", err)
			}
			_, err := eventlog.EnsureEventsStream(t.Context(), js, 1)
			if !errors.Is(err, eventlog.ErrStreamMismatch) {
				t.Fatalf("got %v, want ErrStreamMismatch", err)
			}
			if !strings.Contains(err.Error(), tt.setting) {
				t.Errorf("got %q, want it to name %q", err, tt.setting)
			}
		})
	}
}

func TestStoreWithoutStreamIsNotSilent(t *testing.T) {
	_, _, js := natstest.Start(t)
	s := eventlog.NewStore(js)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.Load(ctx, "client-1"); err == nil {
		t.Errorf("got nil error loading without a stream, want one")
	}
	// Nothing captures the subject: no responders, which during a leader election or a
	// restart is transient.
	_, err := s.Append(ctx, firstCommit("client-1", "cmd-1"), 0)
	if !errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("got %v appending without a stream, want ErrUnavailable", err)
	}
}

// TestEveryRefusalIsRecorded: two refusals of one client's command id (the same id
// resent with another body, say) are two records; only a redelivery of the same
// stream message is recorded once. Rejections were keyed by client and command id
// alone, so the stream's dedup window silently dropped the second refusal.
func TestEveryRefusalIsRecorded(t *testing.T) {
	_, _, js := natstest.Start(t)
	ctx := t.Context()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	store := eventlog.NewStore(js)
	refusal := func(streamSeq uint64, code domain.RejectionCode) eventstore.Rejection {
		return eventstore.Rejection{CommandID: "o1", Client: "client-9", Subject: "studyd.part.0.client-9",
			Code: code, Error: string(code), At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), StreamSeq: streamSeq}
	}
	first, err := store.Reject(ctx, refusal(7, domain.RejectInvalid))
	if err != nil {
		t.Fatal(err)
	}
	again, err := store.Reject(ctx, refusal(7, domain.RejectInvalid))
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("a redelivered refusal was recorded at %d and %d, want once", first, again)
	}
	second, err := store.Reject(ctx, refusal(9, domain.RejectIDReused))
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatalf("the second refusal of command o1 got position %d, the first's: it was not recorded", second)
	}
	var codes []domain.RejectionCode
	if err := store.Rejections(ctx, eventstore.Query{Client: "client-9"}, func(_ uint64, r eventstore.Rejection) error {
		codes = append(codes, r.Code)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(codes) != 2 || codes[1] != domain.RejectIDReused {
		t.Errorf("recorded refusals %v, want [invalid id_reused]", codes)
	}
}
