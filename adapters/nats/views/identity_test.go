package views

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/eventlog"
)

// TestCheckLogRefusesALostLog: once views were folded from a log, a missing log, a
// re-created one shorter than the views' checkpoint, or one as long but beginning with
// other messages is refused with ErrLogLost and the recovery; deleting the views too
// (the documented way to start over) lets it pass.
func TestCheckLogRefusesALostLog(t *testing.T) {
	t.Parallel()
	js := startJetStream(t)
	ctx := context.Background()
	if err := CheckLog(ctx, js); err != nil {
		t.Fatalf("fresh install: %v", err)
	}
	g := newLogGen(4)
	last := publishCommits(t, js, g, 20)
	p := NewProjector(js, testOptions())
	stop := runProjector(p)
	waitSeq(t, p, last)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := CheckLog(ctx, js); err != nil {
		t.Fatalf("the log the views were folded from: %v", err)
	}
	if err := CheckLog(ctx, js); err != nil {
		t.Fatalf("again, with its identity recorded: %v", err)
	}

	recreate := func(n int) {
		t.Helper()
		if err := js.DeleteStream(ctx, eventlog.EventsStream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatal(err)
		}
		if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			publishCommits(t, js, newLogGen(99), n)
		}
	}
	for _, tt := range []struct {
		name    string
		breakIt func()
		says    string
	}{
		{"deleted", func() {
			if err := js.DeleteStream(ctx, eventlog.EventsStream); err != nil {
				t.Fatal(err)
			}
		}, "is missing"},
		{"re-created empty", func() { recreate(0) }, "before the views' checkpoint"},
		{"re-created shorter", func() { recreate(5) }, "before the views' checkpoint"},
		{"re-created as long", func() { recreate(30) }, "re-created"},
	} {
		tt.breakIt()
		err := CheckLog(ctx, js)
		if !errors.Is(err, ErrLogLost) || !strings.Contains(err.Error(), tt.says) || !strings.Contains(err.Error(), "--reset-views") {
			t.Errorf("%s: got %v, want ErrLogLost saying %q and the recovery", tt.name, err, tt.says)
		}
	}
	if err := ResetViews(ctx, js); err != nil {
		t.Fatal(err)
	}
	if err := CheckLog(ctx, js); err != nil {
		t.Errorf("after deleting the views to start over: %v", err)
	}
}
