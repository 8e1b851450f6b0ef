package eventstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/studyd/studyd/domain"
)

var _ Store = (*MemoryStore)(nil)

// MemoryStore is a Store in process memory, for tests and for tools that replay an
// exported log. It behaves like the JetStream store: commits and rejections share one
// sequence of positions (1, 2, …) as they share one stream, commits are stored encoded
// and decoded on read, and a command id already applied to a client is a duplicate.
type MemoryStore struct {
	mu      sync.RWMutex
	entries []memEntry                 // entries[i] is position i+1
	last    map[domain.ClientID]uint64 // the client's latest commit position
	applied map[string]uint64          // client + "\x00" + command id → commit position
	refused map[string]uint64          // client + "\x00" + command id → rejection position
	// MaxCommitBytes is the largest encoded commit Append accepts (ErrTooLarge beyond);
	// 0 means DefaultMaxCommitBytes. Set it before the first Append.
	MaxCommitBytes int
}

type memEntry struct {
	commit    []byte // encoded commit, or nil for a rejection
	rejection []byte
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{last: map[domain.ClientID]uint64{}, applied: map[string]uint64{}, refused: map[string]uint64{}}
}

func appliedKey(client domain.ClientID, commandID string) string {
	return string(client) + "\x00" + commandID
}

// Append implements Store. Duplicate detection never expires here (the JetStream store
// relies on its dedup window and on the recent command ids a commit carries).
func (m *MemoryStore) Append(ctx context.Context, c Commit, expected uint64) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("append: %w", err)
	}
	raw, err := EncodeCommit(c)
	if err != nil {
		return Record{}, fmt.Errorf("append: %w", err)
	}
	if limit := cmp.Or(m.MaxCommitBytes, DefaultMaxCommitBytes); len(raw) > limit {
		return Record{}, fmt.Errorf("append %s: the commit is %d bytes, the log accepts %d: %w", c.CommandID, len(raw), limit, ErrTooLarge)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if pos, ok := m.applied[appliedKey(c.Client, c.CommandID)]; ok {
		orig, err := m.record(pos)
		if err != nil {
			return Record{}, fmt.Errorf("append: %w", err)
		}
		return Record{}, &DuplicateError{Original: orig}
	}
	if last := m.last[c.Client]; last != expected {
		return Record{}, fmt.Errorf("append %s: expected position %d, latest is %d: %w", c.Client, expected, last, ErrConflict)
	}
	m.entries = append(m.entries, memEntry{commit: raw})
	pos := uint64(len(m.entries))
	m.last[c.Client] = pos
	m.applied[appliedKey(c.Client, c.CommandID)] = pos
	return m.record(pos)
}

// Load implements Store.
func (m *MemoryStore) Load(ctx context.Context, client domain.ClientID) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("load: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	pos, ok := m.last[client]
	if !ok {
		return Record{}, nil
	}
	return m.record(pos)
}

// Get implements Store.
func (m *MemoryStore) Get(ctx context.Context, pos uint64) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("get: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.record(pos)
}

// record decodes the commit at pos; the caller holds mu.
func (m *MemoryStore) record(pos uint64) (Record, error) {
	if pos == 0 || pos > uint64(len(m.entries)) || m.entries[pos-1].commit == nil {
		return Record{}, fmt.Errorf("position %d: %w", pos, ErrNotFound)
	}
	raw := m.entries[pos-1].commit
	c, err := DecodeCommit(raw)
	if err != nil {
		return Record{}, fmt.Errorf("position %d: %w", pos, err)
	}
	return Record{Position: pos, Commit: c, Hash: Hash(raw)}, nil
}

// snapshot returns the entries as of now, so callbacks run without the lock held (a
// callback may append).
func (m *MemoryStore) snapshot() []memEntry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clip(m.entries)
}

// Read implements Store.
func (m *MemoryStore) Read(ctx context.Context, q Query, fn func(Record) error) error {
	entries := m.snapshot()
	for i, e := range entries {
		pos := uint64(i + 1)
		if e.commit == nil || !q.InRange(pos) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		c, err := DecodeCommit(e.commit)
		if err != nil {
			return fmt.Errorf("read position %d: %w", pos, err)
		}
		if !q.Matches(c.Client, c.At) {
			continue
		}
		if err := fn(Record{Position: pos, Commit: c, Hash: Hash(e.commit)}); err != nil {
			return err
		}
	}
	return nil
}

// Reject implements Store.
func (m *MemoryStore) Reject(ctx context.Context, r Rejection) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("reject: %w", err)
	}
	raw, err := EncodeRejection(r)
	if err != nil {
		return 0, fmt.Errorf("reject: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, memEntry{rejection: raw})
	return uint64(len(m.entries)), nil
}

// Rejections implements Store.
func (m *MemoryStore) Rejections(ctx context.Context, q Query, fn func(uint64, Rejection) error) error {
	entries := m.snapshot()
	for i, e := range entries {
		pos := uint64(i + 1)
		if e.rejection == nil || !q.InRange(pos) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("rejections: %w", err)
		}
		r, err := DecodeRejection(e.rejection)
		if err != nil {
			return fmt.Errorf("rejections position %d: %w", pos, err)
		}
		if !q.Matches(r.Client, r.At) {
			continue
		}
		if err := fn(pos, r); err != nil {
			return err
		}
	}
	return nil
}

// Rejection implements Store.
func (m *MemoryStore) Rejection(ctx context.Context, pos uint64) (Rejection, error) {
	if err := ctx.Err(); err != nil {
		return Rejection{}, fmt.Errorf("rejection: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if pos == 0 || pos > uint64(len(m.entries)) || m.entries[pos-1].rejection == nil {
		return Rejection{}, fmt.Errorf("rejection at %d: %w", pos, ErrNotFound)
	}
	r, err := DecodeRejection(m.entries[pos-1].rejection)
	if err != nil {
		return Rejection{}, fmt.Errorf("rejection at %d: %w", pos, err)
	}
	return r, nil
}

// Applied returns the position of the commit that applied commandID to client: the
// MemoryStore remembers every id it appended, for ever (app.AppliedIndex).
func (m *MemoryStore) Applied(ctx context.Context, client domain.ClientID, commandID string) (uint64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, fmt.Errorf("applied: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	pos, ok := m.applied[appliedKey(client, commandID)]
	return pos, ok, nil
}

// Remember is a no-op: Append already remembered the id (app.AppliedIndex).
func (m *MemoryStore) Remember(ctx context.Context, client domain.ClientID, commandID string, pos uint64) error {
	return ctx.Err()
}

// Refused returns the position last remembered for client's refused commandID
// (app.RefusalIndex). Unlike the applied ids, Reject does not remember a refusal: the
// handler does, as on JetStream, so both stores hold the same index.
func (m *MemoryStore) Refused(ctx context.Context, client domain.ClientID, commandID string) (uint64, bool, error) {
	if err := ctx.Err(); err != nil {
		return 0, false, fmt.Errorf("refused: %w", err)
	}
	if err := client.Validate(); err != nil {
		return 0, false, fmt.Errorf("refused: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	pos := m.refused[appliedKey(client, commandID)]
	return pos, pos != 0, nil
}

// RememberRefusal records that the latest refusal of client's commandID is at pos
// (app.RefusalIndex).
func (m *MemoryStore) RememberRefusal(ctx context.Context, client domain.ClientID, commandID string, pos uint64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("remember refusal: %w", err)
	}
	if err := client.Validate(); err != nil {
		return fmt.Errorf("remember refusal: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refused[appliedKey(client, commandID)] = pos
	return nil
}
