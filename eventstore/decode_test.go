package eventstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/audit/audittest"
	"github.com/studyd/studyd/eventstore"
)

var (
	fleetOnce sync.Once
	fleetRaw  [][]byte
	fleetErr  error
)

// fleetCommits are the encoded commits of a small simulated fleet (simulate's commands
// decided by fsm.Decide, as studyd appends them): every event type the decider emits,
// real study names, full recent lists, in the proportions a replay meets them.
func fleetCommits(tb testing.TB) [][]byte {
	tb.Helper()
	fleetOnce.Do(func() {
		l, err := audittest.Fleet(40, 7, 3)
		if err != nil {
			fleetErr = err
			return
		}
		for _, e := range l.Entries {
			if e.Kind() == audit.KindCommit {
				fleetRaw = append(fleetRaw, e.Data)
			}
		}
	})
	if fleetErr != nil {
		tb.Fatal(fleetErr)
	}
	if len(fleetRaw) == 0 {
		tb.Fatal("the simulated fleet produced no commits")
	}
	return fleetRaw
}

// recipeGolden returns the golden v2 commit with the fields added for real recipes.
func recipeGolden(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "commit_v2_recipe_fields.golden"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// golden returns the golden v2 commit's bytes.
func golden(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "commit_v2.golden"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// sameDecode fails unless DecodeCommit and the reflective reference agree on b: both
// refuse it, with the same message and sentinels, or both return identical commits.
func sameDecode(tb testing.TB, b []byte) (eventstore.Commit, error) {
	tb.Helper()
	got, gotErr := eventstore.DecodeCommit(b)
	want, wantErr := eventstore.DecodeCommitReflect(b)
	if sameError(tb, gotErr, wantErr, b) {
		return eventstore.Commit{}, wantErr
	}
	if diff := cmp.Diff(want, got); diff != "" {
		tb.Fatalf("fast and reflective decodes differ (-reflective +fast):\n%s\ninput %x", diff, b)
	}
	// cmp compares times with Equal; DeepEqual also holds the location and the
	// representation to the reference's.
	if !reflect.DeepEqual(want, got) {
		tb.Fatalf("fast and reflective decodes are not deeply equal:\n got %#v\nwant %#v", got, want)
	}
	return got, nil
}

// sameError fails unless got and want are both nil, or both errors with the same
// message and sentinels; it reports whether they are errors. b is the input decoded.
func sameError(tb testing.TB, got, want error, b []byte) bool {
	tb.Helper()
	if (got == nil) != (want == nil) {
		tb.Fatalf("got error %v, want %v (input %x)", got, want, b)
	}
	if want == nil {
		return false
	}
	if got.Error() != want.Error() {
		tb.Fatalf("got error %q, want %q", got, want)
	}
	for _, sentinel := range []error{eventstore.ErrCorrupt, eventstore.ErrUnknownSchema} {
		if errors.Is(got, sentinel) != errors.Is(want, sentinel) {
			tb.Fatalf("got error %v, want %v: they disagree on %v", got, want, sentinel)
		}
	}
	return true
}

// fastTakes reports whether the reflection-free decoder decodes b itself.
func fastTakes(b []byte) bool {
	_, ok := eventstore.DecodeCommitFast(b)
	return ok
}

func TestFastDecoderTakesRealCommits(t *testing.T) {
	inputs := append([][]byte{golden(t)}, fleetCommits(t)...)
	for i, b := range inputs {
		if !fastTakes(b) {
			t.Fatalf("commit %d: the fast decoder deferred to reflection on a canonical commit", i)
		}
		if _, err := sameDecode(t, b); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
}

// TestDecodeEquivalence writes commits in the other ways msgpack allows, and in ways it
// refuses, and checks the fast path against the reflective one on each. fast says
// whether the reflection-free decoder must take the input itself (so that the
// equivalence is not merely the fallback agreeing with itself).
func TestDecodeEquivalence(t *testing.T) {
	root := parse(t, golden(t))
	plain := func(st mpStyle) []byte { return writeMP(nil, root, st) }
	atSecond := everyEvent()
	atSecond.At = atSecond.At.Truncate(time.Second) // 4-byte timestamp
	before1970 := everyEvent()
	before1970.At = time.Date(1969, 7, 20, 20, 17, 40, 5, time.UTC) // 12-byte timestamp
	zeroAt := everyEvent()
	zeroAt.At = time.Time{}
	emptyState := everyEvent()
	emptyState.State.Enrollments, emptyState.Events, emptyState.Recent = nil, nil, nil
	emptyState.State.LastRunAt = time.Time{}
	emptyRatios := withRecipeFields()
	emptyRatios.Events[3].Ratios, emptyRatios.State.Enrollments[0].Ratios = nil, nil

	tests := []struct {
		name string
		in   []byte
		fast bool
		ok   bool
	}{
		{"golden", golden(t), true, true},
		{"recipe fields golden", recipeGolden(t), true, true},
		{"recipe fields reversed", writeMP(nil, reverseFields(parse(t, recipeGolden(t))), mpStyle{}), true, true},
		{"recipe fields wide", writeMP(nil, parse(t, recipeGolden(t)), mpStyle{wide: true, strAsBin: true}), true, true},
		{"empty ratios", encode(t, emptyRatios), true, true},
		{"ratios as an empty array", editEvent(parse(t, recipeGolden(t)), 3, "ratios", mpNode{kind: 'a'}), true, true},
		{"nil ratios", editEvent(parse(t, recipeGolden(t)), 3, "ratios", nilNode), true, true},
		{"ratio as a string", editEvent(parse(t, recipeGolden(t)), 3, "ratios", mpNode{kind: 'a', items: []mpNode{
			{kind: 'm', items: []mpNode{str("slug"), str("a"), str("ratio"), str("1")}}}}), false, false},
		{"fields reversed", writeMP(nil, reverseFields(root), mpStyle{}), true, true},
		{"wide headers and integers", plain(mpStyle{wide: true}), true, true},
		{"strings as bin8", plain(mpStyle{strAsBin: true}), true, true},
		{"strings as bin32", plain(mpStyle{strAsBin: true, wide: true}), true, true},
		{"timestamps as 12 bytes", plain(mpStyle{time12: true}), true, true},
		{"timestamps under ext8", plain(mpStyle{ext8Times: true}), true, true},
		{"4-byte timestamp", encode(t, atSecond), true, true},
		{"time before 1970", encode(t, before1970), true, true},
		{"zero time", encode(t, zeroAt), true, true},
		{"empty slices", encode(t, emptyState), true, true},
		{"8-byte timestamp, nanoseconds past a second", edit(root, "at", ext(0xd7, 0xff, 0xff, 0xff, 0xff, 0xfc, 0, 0, 0, 1)), true, true},
		{"schema as int8", edit(root, "schema", mpNode{kind: 'r', raw: []byte{0xd0, 2}}), true, true},
		{"nil strings, integers and slices", edit(root, "commit_id", nilNode, "command_seq", nilNode,
			"correlation_id", nilNode, "events", nilNode, "recent", nilNode, "fsm_version", nilNode), true, true},
		{"negative command_seq wraps", edit(root, "command_seq", mpNode{kind: 'r', raw: []byte{0xd0, 0xfe}}), true, true},
		{"nil in recent is a zero entry", edit(root, "recent", mpNode{kind: 'a', items: []mpNode{nilNode}}), true, true},
		{"nil event fields", editEvent(root, 7, "reset_value", nilNode, "source", nilNode), true, true},
		{"unknown event type", editEvent(root, 0, "type", str("exploded")), true, false},
		{"nil state", edit(root, "state", nilNode), true, false},
		{"no client", edit(root, "client", str("")), true, false},

		// msgpack accepts these, but in its own way: they stay on the reflective path.
		{"repeated key", edit(root, "+commit_id", str("again")), false, true},
		{"repeated events merge into the first", edit(root, "+events", mpNode{kind: 'a', items: []mpNode{
			{kind: 'm', items: []mpNode{str("type"), str("unenrolled")}}}}), false, true},
		{"applied as an array", edit(root, "recent", mpNode{kind: 'a', items: []mpNode{
			{kind: 'a', items: []mpNode{str("cmd-2"), {kind: 'u', u: 42}, {kind: 'u', u: 0}}}}}), false, true},
		{"schema 1", v1Bytes(t), false, true},

		// Refused by both.
		{"unknown field", edit(root, "+surprise", str("x")), false, false},
		{"unknown event field", editEvent(root, 0, "+surprise", str("x")), false, false},
		{"nil time", edit(root, "at", nilNode), false, false},
		{"time with ext type 13", edit(root, "at", ext(0xd6, 13, 0, 0, 0, 1)), false, false},
		{"16-byte timestamp", edit(root, "at", ext(0xd8, 0xff, make([]byte, 16)...)), false, false},
		{"time as a string", edit(root, "at", str("2018-09-27T14:30:05Z")), false, false},
		{"float sequence", edit(root, "command_seq", mpNode{kind: 'f', raw: make([]byte, 8)}), false, false},
		{"string sequence", edit(root, "command_seq", str("42")), false, false},
		{"integer client", edit(root, "client", mpNode{kind: 'u', u: 1}), false, false},
		{"bool from integer", editEvent(root, 7, "studies_enabled", mpNode{kind: 'u', u: 1}), false, false},
		{"schema 3", edit(root, "schema", mpNode{kind: 'u', u: 3}), false, false},
		{"trailing byte", append(golden(t), 0xc0), false, false},
		{"truncated", golden(t)[:1000], false, false},
		{"empty", nil, false, false},
		{"array claims 4G elements", edit(root, "events", mpNode{kind: 'r', raw: []byte{0xdd, 0xff, 0xff, 0xff, 0xff}}), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fastTakes(tt.in); got != tt.fast {
				t.Errorf("got fast path %v, want %v", got, tt.fast)
			}
			_, err := sameDecode(t, tt.in)
			if (err == nil) != tt.ok {
				t.Errorf("got error %v, want success %v", err, tt.ok)
			}
			sameLean(t, tt.in)
		})
	}
}

func FuzzDecodeEquivalence(f *testing.F) {
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		sameDecode(t, b)
	})
}

// addDecodeSeeds seeds a decoder's fuzzing: the golden commits (v2, recipe fields, v1),
// the golden written in the other ways msgpack allows, a spread of a simulated fleet's
// commits, truncations and flipped bits.
func addDecodeSeeds(f *testing.F) {
	g := golden(f)
	f.Add(g)
	f.Add(recipeGolden(f))
	f.Add(v1Bytes(f))
	root := parse(f, g)
	for _, st := range []mpStyle{{wide: true}, {strAsBin: true}, {time12: true}, {ext8Times: true}} {
		f.Add(writeMP(nil, root, st))
	}
	f.Add(writeMP(nil, reverseFields(root), mpStyle{}))
	fleet := fleetCommits(f)
	for i := 0; i < len(fleet); i += max(1, len(fleet)/40) {
		f.Add(fleet[i])
	}
	for _, n := range []int{0, 1, 9, len(g) / 3, len(g) / 2, len(g) - 1} {
		f.Add(g[:n])
	}
	for _, bit := range []int{3, 77, 500, 1203, 2000, 8*len(g) - 5} {
		flipped := append([]byte(nil), g...)
		flipped[bit/8] ^= 1 << (bit % 8)
		f.Add(flipped)
	}
}

// BenchmarkDecodeCommitReflect is BenchmarkDecodeCommit through the reflective reference,
// for a before/after on the same machine and load.
func BenchmarkDecodeCommitReflect(b *testing.B) {
	raw := golden(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if _, err := eventstore.DecodeCommitReflect(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// reportCPU adds the benchmark loop's CPU time per op (cpu-ns/op) to its figures: the
// loop runs on one locked thread, so it leaves out other processes' load that inflates
// ns/op on a shared machine. Call the result after the loop.
func reportCPU(b *testing.B) func() {
	runtime.LockOSThread()
	start, ok := threadCPU()
	return func() {
		end, _ := threadCPU()
		runtime.UnlockOSThread()
		if ok && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkDecodeFleet decodes a simulated fleet's commits in log order, the mix an
// audit replay decodes; the figure is per commit.
func BenchmarkDecodeFleet(b *testing.B) {
	fleet := fleetCommits(b)
	size := 0
	for _, raw := range fleet {
		size += len(raw)
	}
	for _, bench := range []struct {
		name   string
		decode func([]byte) (eventstore.Commit, error)
	}{{"fast", eventstore.DecodeCommit}, {"reflect", eventstore.DecodeCommitReflect}} {
		b.Run(bench.name, func(b *testing.B) {
			b.SetBytes(int64(size / len(fleet)))
			b.ReportAllocs()
			defer reportCPU(b)()
			i := 0
			for b.Loop() {
				if _, err := bench.decode(fleet[i%len(fleet)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

var nilNode = mpNode{kind: 'n'}

func str(s string) mpNode { return mpNode{kind: 's', raw: []byte(s)} }

func ext(code byte, typ byte, data ...byte) mpNode {
	return mpNode{kind: 'r', raw: append([]byte{code, typ}, data...)}
}

func parse(tb testing.TB, b []byte) mpNode {
	tb.Helper()
	n, rest, err := parseMP(b)
	if err != nil || len(rest) != 0 {
		tb.Fatalf("parse: %v (%d bytes left)", err, len(rest))
	}
	return n
}

func encode(tb testing.TB, c eventstore.Commit) []byte {
	tb.Helper()
	b, err := eventstore.EncodeCommit(c)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func v1Bytes(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "commit_v1.msgpack"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// setFields sets key/value pairs in map m: a key replaces its entry, "+key" appends
// another entry under that key.
func setFields(m *mpNode, kv ...any) {
	for i := 0; i < len(kv); i += 2 {
		key, v := kv[i].(string), kv[i+1].(mpNode)
		if key[0] == '+' {
			m.items = append(m.items, str(key[1:]), v)
			continue
		}
		found := false
		for j := 0; j < len(m.items); j += 2 {
			if string(m.items[j].raw) == key {
				m.items[j+1], found = v, true
			}
		}
		if !found {
			m.items = append(m.items, str(key), v)
		}
	}
}

// edit returns the commit root with top-level fields set (see setFields), encoded.
func edit(root mpNode, kv ...any) []byte {
	root = cloneMP(root)
	setFields(&root, kv...)
	return writeMP(nil, root, mpStyle{})
}

// editEvent is edit on the i-th event.
func editEvent(root mpNode, i int, kv ...any) []byte {
	root = cloneMP(root)
	for j := 0; j < len(root.items); j += 2 {
		if string(root.items[j].raw) == "events" {
			setFields(&root.items[j+1].items[i], kv...)
		}
	}
	return writeMP(nil, root, mpStyle{})
}
