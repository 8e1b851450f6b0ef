package eventlog_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

var _ app.RefusalIndex = (*eventlog.Store)(nil)

// countingStore is the JetStream store, counting the rejection messages read through
// it. It embeds the concrete store, so the handler finds the store's indexes as before.
type countingStore struct {
	*eventlog.Store
	read atomic.Int64
}

func (s *countingStore) Rejections(ctx context.Context, q eventstore.Query, fn func(uint64, eventstore.Rejection) error) error {
	return s.Store.Rejections(ctx, q, func(pos uint64, r eventstore.Rejection) error {
		s.read.Add(1)
		return fn(pos, r)
	})
}

func (s *countingStore) Rejection(ctx context.Context, pos uint64) (eventstore.Rejection, error) {
	s.read.Add(1)
	return s.Store.Rejection(ctx, pos)
}

// unenroll is a command to leave a study the client never joined: illegal.
func unenroll(client domain.ClientID, id string, at time.Time) domain.Command {
	return domain.Command{Type: domain.CommandUnenroll, CommandID: id, ClientID: client, At: at,
		Study: &domain.StudyRef{Object: domain.PreferenceStudy, Key: "never-enrolled"}}
}

// A hostile client sending hundreds of illegal unenrolls made each further refusal of
// it slower: looking a command's earlier refusal up read every refusal of the client
// (400 of them: 32 ms per refusal). The lookup now reads at most one rejection, found
// or not, however many the client has.
func TestRefusalLookupReadsOneRejection(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := &countingStore{Store: newJetStreamStore(t).(*eventlog.Store)}
	h := app.NewHandler(store, app.Config{})
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	const refusals = 300
	positions := make([]uint64, refusals)
	for i := range refusals {
		cmd := unenroll("hostile", fmt.Sprintf("unenroll-%d", i), t0.Add(time.Duration(i)*time.Second))
		_, err := h.Handle(ctx, cmd, app.Source{})
		if code := domain.ClassifyRejection(err); code != domain.RejectIllegal {
			t.Fatalf("unenroll %d: got %v (%s), want illegal_transition", i, err, code)
		}
		if _, positions[i], err = h.Reject(ctx, app.Incoming{Subject: "studyd.submit"}, cmd, err); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		id      string
		wantPos uint64 // 0: not refused before
	}{
		{"refused before", "unenroll-7", positions[7]},
		{"refused last", fmt.Sprintf("unenroll-%d", refusals-1), positions[refusals-1]},
		{"never refused", "unenroll-new", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store.read.Store(0)
			r, pos, ok, err := h.Rejected(ctx, "hostile", tt.id)
			if err != nil {
				t.Fatal(err)
			}
			if ok != (tt.wantPos != 0) || pos != tt.wantPos {
				t.Errorf("got Rejected(%s) at %d (found %t), want at %d", tt.id, pos, ok, tt.wantPos)
			}
			if ok && (r.CommandID != tt.id || r.Code != domain.RejectIllegal) {
				t.Errorf("got rejection %s %s, want %s illegal_transition", r.CommandID, r.Code, tt.id)
			}
			if n := store.read.Load(); n > 1 {
				t.Errorf("got %d rejections read to look one up among %d, want at most 1", n, refusals)
			}
		})
	}
}

// The outcome of a command refused twice is its latest refusal: a resend is answered
// with what the log last said about it.
func TestRefusalLookupFindsTheLatest(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := app.NewHandler(newJetStreamStore(t), app.Config{})
	cmd := unenroll("c1", "twice", time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	var last uint64
	for _, cause := range []error{domain.ErrIllegalTransition, domain.ErrStaleRun} {
		var err error
		if _, last, err = h.Reject(ctx, app.Incoming{Subject: "studyd.submit"}, cmd, fmt.Errorf("%w: test", cause)); err != nil {
			t.Fatal(err)
		}
	}
	r, pos, ok, err := h.Rejected(ctx, "c1", "twice")
	if err != nil || !ok || pos != last || r.Code != domain.RejectStale {
		t.Fatalf("got Rejected = %s at %d (found %t, %v), want stale at %d", r.Code, pos, ok, err, last)
	}
}

// A log whose refusal index is missing (a log written before the index existed, or an
// index write that failed) still records refusals; a resend is refused and recorded
// anew rather than answered from the log.
func TestRefusalWithoutTheIndexIsRecorded(t *testing.T) {
	t.Parallel()
	_, _, js := natstest.Start(t)
	ctx := t.Context()
	if _, err := js.CreateStream(ctx, eventlog.EventsStreamConfig(1)); err != nil { // no index buckets
		t.Fatal(err)
	}
	h := app.NewHandler(eventlog.NewStore(js), app.Config{})
	cmd := unenroll("c1", "old", time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	cause := fmt.Errorf("%w: test", domain.ErrIllegalTransition)
	if _, pos, err := h.Reject(ctx, app.Incoming{Subject: "studyd.submit"}, cmd, cause); err != nil || pos == 0 {
		t.Fatalf("Reject without the index: got position %d, %v; want it recorded", pos, err)
	}
	if _, _, ok, err := h.Rejected(ctx, "c1", "old"); ok || err == nil {
		t.Fatalf("Rejected without the bucket: got found %t, %v; want an error (the caller records anew)", ok, err)
	}
	if _, err := eventlog.EnsureRefusalIndex(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, err := h.Rejected(ctx, "c1", "old"); ok || err != nil {
		t.Fatalf("Rejected of a refusal the index never saw: got found %t, %v; want not found", ok, err)
	}
}

// BenchmarkRefusalLookup prices Handler.Rejected for a client refused 400 times (the
// attack of README's former known limit): with the refusal index, and without one (a
// store that hides it: the scan every lookup was before).
func BenchmarkRefusalLookup(b *testing.B) {
	store, _ := benchStore(b)
	ctx := b.Context()
	h := app.NewHandler(store, app.Config{})
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	cause := fmt.Errorf("%w: bench", domain.ErrIllegalTransition)
	for i := range 400 {
		cmd := unenroll("hostile", fmt.Sprintf("unenroll-%d", i), t0)
		if _, _, err := h.Reject(ctx, app.Incoming{Subject: "studyd.submit"}, cmd, cause); err != nil {
			b.Fatal(err)
		}
	}
	for _, bb := range []struct {
		name  string
		store eventstore.Store
	}{{"indexed", store}, {"scan", struct{ eventstore.Store }{store}}} {
		h := app.NewHandler(bb.store, app.Config{})
		for _, id := range []string{"unenroll-200", "unenroll-new"} {
			b.Run(bb.name+"/"+id, func(b *testing.B) {
				for b.Loop() {
					if _, _, _, err := h.Rejected(ctx, "hostile", id); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRefusalRecord prices Handler.Reject: recording a refusal, and with the
// refusal index writing its key besides (one KV put).
func BenchmarkRefusalRecord(b *testing.B) {
	store, _ := benchStore(b)
	ctx := b.Context()
	cause := fmt.Errorf("%w: bench", domain.ErrIllegalTransition)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, bb := range []struct {
		name  string
		store eventstore.Store
	}{{"indexed", store}, {"unindexed", struct{ eventstore.Store }{store}}} {
		h := app.NewHandler(bb.store, app.Config{})
		b.Run(bb.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				cmd := unenroll("hostile", fmt.Sprintf("%s-%d", bb.name, i), t0)
				if _, _, err := h.Reject(ctx, app.Incoming{Subject: "studyd.submit"}, cmd, cause); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
