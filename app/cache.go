package app

import (
	"sync"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// cache keeps the latest record of recently active clients, so that applying a command
// to a warm client costs one publish and no read. It is bounded: when full it evicts
// an arbitrary half, which keeps the hot path free of LRU bookkeeping. A stale entry is
// harmless: the append then conflicts and the handler reloads.
type cache struct {
	mu      sync.Mutex
	max     int
	records map[domain.ClientID]eventstore.Record
}

func newCache(max int) *cache {
	return &cache{max: max, records: make(map[domain.ClientID]eventstore.Record, min(max, 1<<16))}
}

func (c *cache) get(client domain.ClientID) (eventstore.Record, bool) {
	if c.max <= 0 {
		return eventstore.Record{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.records[client]
	return r, ok
}

func (c *cache) put(r eventstore.Record) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.records[r.Commit.Client]; !ok && len(c.records) >= c.max {
		n := 0
		for k := range c.records { // map order is random: this drops an arbitrary half
			delete(c.records, k)
			if n++; n >= c.max/2 {
				break
			}
		}
	}
	c.records[r.Commit.Client] = r
}

func (c *cache) drop(client domain.ClientID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.records, client)
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.records)
}
