package app

import (
	"strings"
	"sync"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// DefaultCacheBytes is the default bound of the client cache in bytes (Config.CacheBytes):
// about 100,000 clients of four enrollments each, or fewer larger ones.
const DefaultCacheBytes = 128 << 20

// entryOverhead approximates what a cache entry costs besides its encoded bytes and its
// key's: the map slot (key and slice headers, control byte, the table's free slots)
// and the allocations' rounding. Measured with studybench's memory scenario: 515 B of
// heap per client where 64 here counted 423.
const entryOverhead = 150

// cache keeps the latest record of recently active clients, so that applying a command
// to a warm client costs one publish and no read. Each record is kept in the compact
// form of compact.go (what deciding needs, a few hundred bytes for a client with a few
// enrollments). It is bounded both in clients and in bytes (the encoded records, their
// keys, the map's slots and the interned strings): when a new record would pass either
// bound it evicts arbitrary entries until both are at half, which keeps the hot path
// free of LRU bookkeeping. A stale entry is harmless: the append then conflicts and
// the handler reloads.
type cache struct {
	mu       sync.Mutex
	max      int // entries; ≤ 0 disables the cache
	maxBytes int
	bytes    int // entries' bytes, the interner's excluded
	records  map[domain.ClientID][]byte
	in       interner
}

func newCache(max, maxBytes int) *cache {
	return &cache{
		max:      max,
		maxBytes: maxBytes,
		records:  make(map[domain.ClientID][]byte, min(max, 1<<16)),
		// The interned strings may take up to a sixteenth of the bound.
		in: interner{ids: make(map[string]uint32), maxBytes: maxBytes / 16},
	}
}

func entryCost(client domain.ClientID, b []byte) int {
	return len(client) + cap(b) + entryOverhead
}

func (c *cache) get(client domain.ClientID) (eventstore.Record, bool) {
	if c.max <= 0 {
		return eventstore.Record{}, false
	}
	c.mu.Lock()
	b, ok := c.records[client]
	strs := c.in.strs
	c.mu.Unlock()
	if !ok {
		return eventstore.Record{}, false
	}
	// Entries and interned strings are never changed once stored, so decoding needs
	// no lock.
	r, err := decodeCompact(client, b, strs)
	if err != nil {
		c.drop(client) // cannot happen; a miss is always safe
		return eventstore.Record{}, false
	}
	return r, true
}

func (c *cache) put(r eventstore.Record) {
	if c.max <= 0 {
		return
	}
	client := r.Commit.Client
	c.mu.Lock()
	defer c.mu.Unlock()
	// Encoding interns, so it runs under the lock; it is a few hundred nanoseconds.
	enc := encodeCompact(make([]byte, 0, 256), r, &c.in)
	b := make([]byte, len(enc)) // exact size: the scratch's slack is not kept
	copy(b, enc)
	old, had := c.records[client]
	if had {
		c.bytes -= entryCost(client, old)
		delete(c.records, client)
	}
	cost := entryCost(client, b)
	if cost > c.limit() {
		return // larger than the whole cache: not kept
	}
	if len(c.records) >= c.max || c.bytes+cost+c.in.bytes > c.maxBytes {
		c.evict()
	}
	if !had {
		client = domain.ClientID(strings.Clone(string(client))) // not the record's buffer
	}
	c.records[client] = b
	c.bytes += cost
}

// limit is what one entry may cost at most: half the byte bound, so that after an
// eviction it always fits.
func (c *cache) limit() int { return (c.maxBytes - c.in.bytes) / 2 }

// evict drops arbitrary entries (map order is random) until the cache holds at most
// half its entries and half its bytes.
func (c *cache) evict() {
	for k, b := range c.records {
		if len(c.records) <= c.max/2 && c.bytes+c.in.bytes <= c.maxBytes/2 {
			return
		}
		c.bytes -= entryCost(k, b)
		delete(c.records, k)
	}
}

func (c *cache) drop(client domain.ClientID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, ok := c.records[client]; ok {
		c.bytes -= entryCost(client, b)
		delete(c.records, client)
	}
}

func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.records)
}

// size is what the cache counts against its byte bound.
func (c *cache) size() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes + c.in.bytes
}
