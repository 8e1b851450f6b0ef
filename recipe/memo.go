package recipe

import "sync"

// Every client of a study reports the same recipe with the same arguments, so turning
// arguments from one form into another is done again and again on the same input:
// about a third of what deciding a recipe run cost (docs/BENCHMARKS.md, "Issue 15,
// sixth session"). These memos keep the results of those pure conversions. A hostile
// publisher sending new arguments each time only makes them start afresh more often.
var (
	parsedJSON  = memo[Arguments]{maxBytes: memoBytes} // JSON as sent → canonical JSON
	decodedMsgp = memo[Arguments]{maxBytes: memoBytes} // msgpack as sent → canonical JSON
	encodedMsgp = memo[[]byte]{maxBytes: memoBytes}    // canonical JSON → msgpack
	studyOfMemo = memo[Study]{maxBytes: memoBytes}     // canonical JSON → the fields studyd reads
)

// memoBytes bounds the inputs each memo keeps; with its results, a memo holds a few
// times that. Arguments longer than MaxArgumentsLen are not kept.
const memoBytes = 4 << 20

// memo remembers results by their input for as long as the inputs kept total at most
// maxBytes, then forgets them all and starts again: a bound in bytes, with no
// bookkeeping per entry. Its results are shared by every caller and must not be
// modified. Safe for concurrent use.
type memo[V any] struct {
	maxBytes int

	mu    sync.RWMutex
	m     map[string]V
	bytes int
}

func (m *memo[V]) get(key string) (V, bool) {
	m.mu.RLock()
	v, ok := m.m[key]
	m.mu.RUnlock()
	return v, ok
}

// getBytes is get without copying key into a string.
func (m *memo[V]) getBytes(key []byte) (V, bool) {
	m.mu.RLock()
	v, ok := m.m[string(key)]
	m.mu.RUnlock()
	return v, ok
}

func (m *memo[V]) put(key string, v V) {
	if len(key) > MaxArgumentsLen {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || m.bytes+len(key) > m.maxBytes {
		m.m, m.bytes = make(map[string]V), 0
	}
	if _, ok := m.m[key]; !ok {
		m.m[key] = v
		m.bytes += len(key)
	}
}
