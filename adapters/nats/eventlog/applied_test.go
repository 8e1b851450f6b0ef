package eventlog_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

var _ app.AppliedIndex = (*eventlog.Store)(nil)

// shortWindowStore is a Store on a STUDYD_EVENTS whose dedup window is 100 ms, so a
// test can retry a command "later" than the window without waiting two minutes.
func shortWindowStore(t *testing.T) *eventlog.Store {
	t.Helper()
	_, _, js := natstest.Start(t)
	cfg := eventlog.EventsStreamConfig(1)
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := js.CreateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := eventlog.EnsureAppliedIndex(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	return eventlog.NewStore(js)
}

func optOut(client domain.ClientID, id string, at time.Time, enabled bool) domain.Command {
	return domain.Command{Type: domain.CommandOptOut, CommandID: id, ClientID: client, At: at, StudiesEnabled: enabled}
}

// commitsOf counts the client's commits applying commandID.
func commitsOf(t *testing.T, s eventstore.Store, client domain.ClientID, commandID string) (n, total int) {
	t.Helper()
	err := s.Read(t.Context(), eventstore.Query{Client: client}, func(r eventstore.Record) error {
		total++
		if r.Commit.CommandID == commandID {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, total
}

// Issue 12, case 7: a command retried after the dedup window and after more than the
// RecentCommands a commit carries was applied a second time. Now it is a duplicate
// however late it comes, and the same id with another body is refused (id_reused).
func TestCommandIDAppliedOnceForEver(t *testing.T) {
	t.Parallel()
	store := shortWindowStore(t)
	h := app.NewHandler(store, app.Config{})
	ctx := t.Context()
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	first, err := h.Handle(ctx, optOut("c1", "cmd-0", t0, false), app.Source{Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= eventstore.RecentCommands+4; i++ {
		if _, err := h.Handle(ctx, optOut("c1", fmt.Sprintf("cmd-%d", i), t0.Add(time.Duration(i)*time.Minute), i%2 == 0), app.Source{Seq: uint64(1 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // past the stream's dedup window
	// A fresh handler: no cache, as after a restart or on another instance.
	late := app.NewHandler(store, app.Config{})
	res, err := late.Handle(ctx, optOut("c1", "cmd-0", t0, false), app.Source{Seq: 100})
	if err != nil || !res.Duplicate || res.Record.Position != first.Record.Position {
		t.Fatalf("cmd-0 again, late: got %+v, %v; want a duplicate of position %d", res, err, first.Record.Position)
	}
	if n, total := commitsOf(t, store, "c1", "cmd-0"); n != 1 || total != eventstore.RecentCommands+5 {
		t.Fatalf("cmd-0 is in %d commits (of %d), want 1 (of %d)", n, total, eventstore.RecentCommands+5)
	}
	_, err = late.Handle(ctx, optOut("c1", "cmd-0", t0.Add(time.Hour), true), app.Source{Seq: 101})
	if !errors.Is(err, domain.ErrCommandIDReused) {
		t.Fatalf("cmd-0 with another body: got %v, want domain.ErrCommandIDReused", err)
	}
	if pos, ok, err := store.Applied(ctx, "c1", "cmd-0"); err != nil || !ok || pos != first.Record.Position {
		t.Fatalf("Applied(c1, cmd-0) = %d, %t, %v; want %d", pos, ok, err, first.Record.Position)
	}
	if _, ok, err := store.Applied(ctx, "c2", "cmd-0"); err != nil || ok {
		t.Fatalf("Applied(c2, cmd-0) = %t, %v; want not applied: ids are per client", ok, err)
	}
}

// Issue 12, case 2: a commit over the server's max_payload was an error the intake
// treated as transient and retried for ever. It is ErrTooLarge, never ErrUnavailable.
func TestAppendOverMaxPayloadIsTooLarge(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.StartWith(t, natstest.Config{MaxPayload: 1 << 20})
	if _, err := eventlog.EnsureEventsStream(t.Context(), js, 1); err != nil {
		t.Fatal(err)
	}
	store := eventlog.NewStore(js)
	c := firstCommit("big", "cmd-1")
	for range 1100 {
		c.Events = append(c.Events, domain.Event{Type: domain.EventStudiesOptOutChanged, Reason: string(make([]byte, 1000))})
	}
	_, err := store.Append(t.Context(), c, 0)
	if !errors.Is(err, eventstore.ErrTooLarge) || errors.Is(err, eventstore.ErrUnavailable) {
		t.Fatalf("Append of a 1.1 MB commit to a 1 MiB server: got %v, want ErrTooLarge only", err)
	}
}
