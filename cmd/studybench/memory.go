package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// memoryResult is the memory held for a number of live enrollments.
type memoryResult struct {
	Enrollments uint64 `json:"enrollments"`
	Clients     uint64 `json:"clients"`
	Commits     uint64 `json:"commits"`
	// CacheHeap is the heap the handler's client cache retains (live heap with the
	// handler minus live heap without it, both after a full GC).
	CacheHeap uint64 `json:"cache_heap_bytes"`
	// CacheCounted is what the cache counts against its byte bound (app.Config.CacheBytes).
	CacheCounted uint64 `json:"cache_counted_bytes"`
	// StateHeap is the heap that the clients' decoded states alone take (what a cache
	// of states, without each last commit's events, would retain).
	StateHeap uint64 `json:"state_heap_bytes"`
	// ProcessRSS is this process's RSS with the cache full (it includes the generator).
	ProcessRSS uint64 `json:"process_rss_bytes"`
	// ServerRSS is the nats-server process's RSS holding the log, and ServerRSS0 its
	// RSS when empty.
	ServerRSS  uint64 `json:"server_rss_bytes"`
	ServerRSS0 uint64 `json:"server_rss_empty_bytes"`
	LogBytes   uint64 `json:"log_bytes"`
}

// perMillion scales bytes held for e enrollments to MB per million enrollments
// (bytes per enrollment × 10⁶ / 10⁶).
func perMillion(bytes, e uint64) float64 {
	if e == 0 {
		return 0
	}
	return float64(bytes) / float64(e)
}

// memory fills the real handler's cache (decoded commits, as the JetStream store
// returns them) until its clients hold target enrollments, while appending every
// commit to a nats-server in a child process, then measures both. The fleet runs two
// days, so every study of the catalogue starts on day 0 and most clients enroll in
// their first run.
func memory(ctx context.Context, target uint64) (memoryResult, error) {
	child, err := startChildServer()
	if err != nil {
		return memoryResult{}, err
	}
	defer child.stop()
	var res memoryResult
	if res.ServerRSS0, err = child.rss(); err != nil {
		return memoryResult{}, err
	}
	nc, err := nats.Connect(child.url)
	if err != nil {
		return memoryResult{}, fmt.Errorf("memory: connect %s: %w", child.url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(asyncPending))
	if err != nil {
		return memoryResult{}, fmt.Errorf("memory: %w", err)
	}
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		return memoryResult{}, err
	}

	// Clients hold about four enrollments each after their first run.
	clients := int(target/3) + 1000
	g, err := newGenerator(clients, 2, 11, true)
	if err != nil {
		return memoryResult{}, err
	}
	enrolled := make(map[domain.ClientID]uint16, clients) // present in both heap readings
	states := make(map[domain.ClientID]domain.ClientState, clients)
	g.store.sink = func(subject string, raw []byte) error {
		if _, err := js.PublishAsync(subject, raw); err != nil {
			return err
		}
		// A copy of its own (not sharing the handler's strings), so that each of the
		// two can be measured by dropping it.
		c, err := eventstore.DecodeCommit(raw)
		if err != nil {
			return err
		}
		states[c.Client] = c.State
		return nil
	}
	var total uint64
	g.store.onAppend = func(c domain.ClientState) {
		n := uint16(len(c.Enrollments))
		total += uint64(n) - uint64(enrolled[c.Client])
		enrolled[c.Client] = n
	}
	if err := g.until(ctx, func(*sinkStore) bool { return total >= target }); err != nil {
		return memoryResult{}, fmt.Errorf("memory: %w", err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		return memoryResult{}, fmt.Errorf("memory: %d appends unacknowledged", js.PublishAsyncPending())
	}
	res.Enrollments, res.Clients, res.Commits, res.LogBytes = total, uint64(len(enrolled)), g.store.commits, g.store.bytes

	with := liveHeap()
	if res.ProcessRSS, err = vmRSS("self"); err != nil {
		return memoryResult{}, err
	}
	cached := g.handler.CachedClients()
	res.CacheCounted = uint64(g.handler.CachedBytes())
	g.handler = nil
	without := liveHeap()
	res.CacheHeap = with - min(with, without)
	held := len(states)
	states = nil
	res.StateHeap = without - min(without, liveHeap())
	// The simulated fleet and the sink must stay live through all three readings:
	// collected between two of them, they would be counted as the cache's or the
	// states' heap (the first session's figures were, by about a third).
	runtime.KeepAlive(g)
	if uint64(cached) != res.Clients || uint64(held) != res.Clients {
		return memoryResult{}, fmt.Errorf("memory: the cache holds %d clients and the states %d, want %d", cached, held, res.Clients)
	}
	runtime.KeepAlive(enrolled)
	// Let the server settle (flush its write cache) before reading its RSS.
	time.Sleep(500 * time.Millisecond)
	if res.ServerRSS, err = child.rss(); err != nil {
		return memoryResult{}, err
	}
	return res, nil
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
