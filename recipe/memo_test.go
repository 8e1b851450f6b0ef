package recipe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestMemoStaysWithinItsBytes(t *testing.T) {
	t.Parallel()
	m := memo[int]{maxBytes: 1000}
	for i := range 500 {
		key := fmt.Sprintf("arguments-%04d", i) // 14 bytes
		m.put(key, i)
		if m.bytes > m.maxBytes {
			t.Fatalf("after %d puts the memo keeps %d bytes of keys, want at most %d", i+1, m.bytes, m.maxBytes)
		}
		if v, ok := m.get(key); !ok || v != i {
			t.Fatalf("get(%q) = %d, %v just after put; want %d, true", key, v, ok, i)
		}
	}
	if n := len(m.m); n == 0 || n > 1000/14 {
		t.Errorf("the memo keeps %d results, want 1 to %d", n, 1000/14)
	}
	m.put(string(make([]byte, MaxArgumentsLen+1)), 1)
	if _, ok := m.get(string(make([]byte, MaxArgumentsLen+1))); ok {
		t.Errorf("arguments over MaxArgumentsLen were kept")
	}
}

// FuzzMemoizedConversions checks that an answer from a memo is the answer the
// conversion gives afresh: JSON parsed, its msgpack form encoded and decoded back, and
// the study read from it. (Arbitrary msgpack is not fed here: unchecked, its declared
// lengths make msgpack itself allocate without bound; wire checks them first, and
// wire's FuzzDecodeCommand decodes arguments through these memos.)
func FuzzMemoizedConversions(f *testing.F) {
	f.Add([]byte(`{"slug":"s","branches":[{"slug":"c","ratio":1,"value":1.50}],"n":18446744073709551615}`))
	f.Add([]byte(`{"slug":7}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		want, wantErr := parse(b)
		for range 2 {
			got, err := Parse(b)
			if got != want || (err == nil) != (wantErr == nil) {
				t.Fatalf("Parse(%q) = %q, %v; afresh %q, %v", b, got, err, want, wantErr)
			}
		}
		if wantErr == nil {
			checkMsgpackAndStudy(t, want)
		}
	})
}

func TestMemoizedMsgpackDecodingAgreesOnOddValues(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		v    any
	}{
		{"bytes", map[string]any{"b": []byte("x")}},
		{"integer key", map[int]any{1: 2}},
		{"float32", map[string]any{"f": float32(1.5)}},
		{"nested", map[string]any{"a": []any{map[string]any{"z": uint64(1 << 63)}, nil, true}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := msgpack.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			checkMsgpackDecoding(t, b)
		})
	}
}

func checkMsgpackAndStudy(t *testing.T, a Arguments) {
	t.Helper()
	want, wantErr := a.encodeMsgpack()
	for range 2 {
		got, err := msgpack.Marshal(a)
		if a != "" && wantErr == nil && (err != nil || !bytes.Equal(got, want)) {
			t.Fatalf("encoding %s = %x, %v; afresh %x", a, got, err, want)
		}
	}
	if a != "" && wantErr == nil {
		checkMsgpackDecoding(t, want)
	}
	wantStudy, wantErr := a.study()
	for range 2 {
		got, err := a.Study()
		if (err == nil) != (wantErr == nil) || fmt.Sprint(got) != fmt.Sprint(wantStudy) {
			t.Fatalf("Study of %s = %+v, %v; afresh %+v, %v", a, got, err, wantStudy, wantErr)
		}
	}
}

// checkMsgpackDecoding decodes b twice through the memo and compares with decoding it
// afresh.
func checkMsgpackDecoding(t *testing.T, b []byte) {
	t.Helper()
	want, wantErr := decodeMsgpack(b)
	for range 2 {
		var got Arguments
		err := msgpack.Unmarshal(b, &got)
		if got != want || (err == nil) != (wantErr == nil) {
			t.Fatalf("decoding %x = %q, %v; afresh %q, %v", b, got, err, want, wantErr)
		}
	}
}
