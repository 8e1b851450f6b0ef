package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/simulate"
)

// fleet returns a simulated fleet of clients over days. Distinct seeds give disjoint
// clients, so a scenario's live commands never touch the clients of a pre-filled log.
func fleet(clients, days int, seed uint64) (*simulate.Fleet, error) {
	f, err := simulate.New(simulate.Config{Clients: clients, Days: days, Seed: seed})
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	return f, nil
}

// commands draws the next n commands of f (fewer if the simulation ends).
func commands(f *simulate.Fleet, n int) ([]domain.Command, error) {
	out := make([]domain.Command, 0, n)
	for len(out) < n {
		cmd, ok := f.Next()
		if !ok {
			if err := f.Err(); err != nil {
				return nil, err
			}
			break
		}
		out = append(out, cmd)
	}
	return out, nil
}

// sinkStore is an eventstore.Store that keeps nothing: Append encodes the commit,
// numbers it with the next position and hands the bytes to sink. It lets the real
// handler (decide, chain, cache) produce the exact commits studyd would write, as fast
// as the CPU allows, for pre-filling logs and measuring the handler's memory. Load
// answers "new client", so the handler's cache must hold every client it has seen.
type sinkStore struct {
	mu     sync.Mutex
	next   uint64 // the position the next commit gets
	decode bool   // return the commit as a reader decodes it (as the JetStream Store does)
	// lean returns the commit without its events, which the handler never reads back
	// (it decides from the state): a pre-fill generator then holds about a quarter of
	// the heap, which would otherwise tax the garbage collector of the scenario it feeds.
	lean bool
	sink func(subject string, raw []byte) error
	// onAppend, if set, sees each commit's resulting client state.
	onAppend func(domain.ClientState)
	commits  uint64
	events   uint64
	bytes    uint64
}

var _ eventstore.Store = (*sinkStore)(nil)

func (s *sinkStore) Append(_ context.Context, c eventstore.Commit, _ uint64) (eventstore.Record, error) {
	raw, err := eventstore.EncodeCommit(c)
	if err != nil {
		return eventstore.Record{}, err
	}
	if s.decode {
		if c, err = eventstore.DecodeCommit(raw); err != nil {
			return eventstore.Record{}, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sink != nil {
		if err := s.sink("studyd.evt."+string(c.Client), raw); err != nil {
			return eventstore.Record{}, err
		}
	}
	if s.onAppend != nil {
		s.onAppend(c.State)
	}
	s.next++
	s.commits++
	s.events += uint64(len(c.Events))
	s.bytes += uint64(len(raw))
	if s.lean {
		c.Events = nil
	}
	return eventstore.Record{Position: s.next, Commit: c, Hash: eventstore.Hash(raw)}, nil
}

func (s *sinkStore) Load(context.Context, domain.ClientID) (eventstore.Record, error) {
	return eventstore.Record{}, nil
}

func (s *sinkStore) Get(context.Context, uint64) (eventstore.Record, error) {
	return eventstore.Record{}, eventstore.ErrNotFound
}

func (s *sinkStore) Read(context.Context, eventstore.Query, func(eventstore.Record) error) error {
	return nil
}

func (s *sinkStore) Reject(context.Context, eventstore.Rejection) (uint64, error) {
	return 0, fmt.Errorf("sink store: rejection in a clean simulation")
}

func (s *sinkStore) Rejections(context.Context, eventstore.Query, func(uint64, eventstore.Rejection) error) error {
	return nil
}

func (s *sinkStore) Rejection(context.Context, uint64) (eventstore.Rejection, error) {
	return eventstore.Rejection{}, eventstore.ErrNotFound
}

// generator turns a fleet's commands into the commits studyd would append, through the
// real handler on a sinkStore.
type generator struct {
	fleet   *simulate.Fleet
	store   *sinkStore
	handler *app.Handler
}

func newGenerator(clients, days int, seed uint64, decode bool) (*generator, error) {
	f, err := fleet(clients, days, seed)
	if err != nil {
		return nil, err
	}
	st := &sinkStore{decode: decode}
	// Room for every client: the sink cannot load an evicted one.
	h := app.NewHandler(st, app.Config{CacheSize: clients + 1, CacheBytes: 1 << 40})
	return &generator{fleet: f, store: st, handler: h}, nil
}

// until applies commands until stop says enough (or the simulation ends, which is an
// error: the caller asked for more than the fleet has).
func (g *generator) until(ctx context.Context, stop func(*sinkStore) bool) error {
	for !stop(g.store) {
		if err := ctx.Err(); err != nil {
			return err
		}
		cmd, ok := g.fleet.Next()
		if !ok {
			if err := g.fleet.Err(); err != nil {
				return err
			}
			return fmt.Errorf("generator: the simulated fleet ended after %d commits", g.store.commits)
		}
		if _, err := g.handler.Handle(ctx, cmd, app.Source{}); err != nil {
			return fmt.Errorf("generator: %w", err)
		}
	}
	return nil
}
