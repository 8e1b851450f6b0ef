package app_test

import (
	"context"
	"runtime"
	"testing"

	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/simulate"
)

// fleetCommands draws n commands of a simulated fleet (outside the timed part).
func fleetCommands(b *testing.B, clients, n int) []domain.Command {
	b.Helper()
	f, err := simulate.New(simulate.Config{Clients: clients, Days: 365, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	cmds := make([]domain.Command, 0, n)
	for len(cmds) < n {
		cmd, ok := f.Next()
		if !ok {
			b.Fatalf("fleet ended after %d commands: %v", len(cmds), f.Err())
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

// BenchmarkHandle is the handler's own cost per command, on the memory store: cache
// lookup (or load), decide, build the commit (recent ids, hash chain), append. The
// JetStream append and the intake come on top (cmd/studybench measures those).
func BenchmarkHandle(b *testing.B) {
	cmds := fleetCommands(b, 1000, b.N)
	h := app.NewHandler(eventstore.NewMemoryStore(), app.Config{})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := h.Handle(ctx, cmds[i], app.Source{Seq: uint64(i + 1)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachePerClient reports the heap the handler's cache holds per client after
// each client's first run (the commit with the most events), and per enrollment.
func BenchmarkCachePerClient(b *testing.B) {
	const clients = 5000
	for b.Loop() {
		b.StopTimer()
		cmds := fleetCommands(b, clients, clients)
		store := &lastOnly{}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		b.StartTimer()
		h := app.NewHandler(store, app.Config{CacheSize: clients + 1})
		for i, cmd := range cmds {
			if _, err := h.Handle(context.Background(), cmd, app.Source{Seq: uint64(i + 1)}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		b.ReportMetric(held/float64(h.CachedClients()), "B/client")
		if store.enrollments > 0 {
			b.ReportMetric(held/float64(store.enrollments), "B/enrollment")
		}
		runtime.KeepAlive(h)
		b.StartTimer()
	}
}

// lastOnly is a store that keeps nothing (the handler's cache is what is measured):
// every client is new to it, and it counts the enrollments its commits leave.
type lastOnly struct {
	pos         uint64
	enrollments int
}

func (s *lastOnly) Append(_ context.Context, c eventstore.Commit, _ uint64) (eventstore.Record, error) {
	raw, err := eventstore.EncodeCommit(c)
	if err != nil {
		return eventstore.Record{}, err
	}
	// As the JetStream store does: the record holds the commit as a reader decodes it.
	stored, err := eventstore.DecodeCommit(raw)
	if err != nil {
		return eventstore.Record{}, err
	}
	s.pos++
	s.enrollments += len(stored.State.Enrollments)
	return eventstore.Record{Position: s.pos, Commit: stored, Hash: eventstore.Hash(raw)}, nil
}

func (s *lastOnly) Load(context.Context, domain.ClientID) (eventstore.Record, error) {
	return eventstore.Record{}, nil
}

func (s *lastOnly) Get(context.Context, uint64) (eventstore.Record, error) {
	return eventstore.Record{}, eventstore.ErrNotFound
}

func (s *lastOnly) Read(context.Context, eventstore.Query, func(eventstore.Record) error) error {
	return nil
}

func (s *lastOnly) Reject(context.Context, eventstore.Rejection) (uint64, error) { return 0, nil }

func (s *lastOnly) Rejections(context.Context, eventstore.Query, func(uint64, eventstore.Rejection) error) error {
	return nil
}

func (s *lastOnly) Rejection(context.Context, uint64) (eventstore.Rejection, error) {
	return eventstore.Rejection{}, eventstore.ErrNotFound
}
