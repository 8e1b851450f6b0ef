package wire_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"

	"github.com/studyd/studyd/wire"
)

// hugeRecipes is the 74-byte recipe_run of issue 12: its recipes array header
// (dd ff ff ff ff, at offset 69) declares 4,294,967,295 elements. msgpack v5.4.1's
// reflective decoder allocates ~700 GB for it.
var hugeRecipes, _ = hex.DecodeString("85a474797065aa7265636970655f72756eaa636f6d6d616e645f6964a472756e31" +
	"a9636c69656e745f6964a8636c69656e742d31a26174d6ff5aa68860a772656369706573ddffffffff")

// HugeRecipes is the 74-byte poison body, for other packages' tests.
func HugeRecipes() []byte { return bytes.Clone(hugeRecipes) }

// hostile are bodies whose headers promise more than they hold or more than the limits
// allow. Each must be refused as malformed, naming the offset, without allocating.
func hostile() []struct {
	name, contentType string
	body              []byte
	want              string
} {
	deepMsgpack := append(bytes.Repeat([]byte{0x91}, 100), 0xc0)
	deepJSON := `{"recipes":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`
	manyJSON := `{"type":"recipe_run","recipes":[` + strings.TrimSuffix(strings.Repeat("{},", 2000), ",") + `]}`
	return []struct {
		name, contentType string
		body              []byte
		want              string
	}{
		{"recipes array32 of 2^32-1", "", hugeRecipes, `"recipes": offset 69: array header declares 4294967295 elements; at most 1024`},
		{"recipes array32 of 2^32-1, typed", wire.ContentTypeMsgpack, hugeRecipes, "offset 69"},
		{"map32 of 2^32-1", "", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, "offset 0: map header declares 4294967295"},
		{"str32 of 2^32-1", "", []byte{0x81, 0xa4, 't', 'y', 'p', 'e', 0xdb, 0xff, 0xff, 0xff, 0xff}, "offset 6: a value of 4294967295 bytes"},
		{"bin32 as a key", "", []byte{0x81, 0xc6, 0x7f, 0xff, 0xff, 0xff}, "offset 1"},
		{"array within the limit, beyond the bytes", "", append(append([]byte{}, hugeRecipes[:69]...), 0xdc, 0x03, 0xff), "declares 1023 elements but only 0 bytes follow"},
		{"nested 100 deep", "", deepMsgpack, "nested deeper than 32"},
		{"json nested 100 deep", wire.ContentTypeJSON, []byte(deepJSON), "nested deeper than 32"},
		{"json 2000 recipes", "", []byte(manyJSON), `"recipes": offset`},
		{"json 2000 recipes, escaped key", "", []byte(strings.Replace(manyJSON, `"recipes"`, `"rec\u0069pes"`, 1)), `"recipes": offset`},
		{"json 2000 recipes, key in capitals", "", []byte(strings.Replace(manyJSON, `"recipes"`, `"RECIPES"`, 1)), `"RECIPES": offset`},
		{"json 100 branches", wire.ContentTypeJSON, []byte(`{"recipes":[{"arguments":{"branches":[` + strings.TrimSuffix(strings.Repeat("1,", 100), ",") + `]}}]}`), `"branches": offset`},
		{"nil at (msgpack v5.4.1 panics)", "", []byte("\x81\xa2at\xc0"), "the decoder failed on this body"},
		{"nil at, fuzzer's body", "", []byte("\x87\xa4type\xaa0000000000\xaacommand_id\xa500000\xa9client_id\xa800000000\xa2at\xc0000000"), "the decoder failed"},
		{"json object of 2000 members", wire.ContentTypeJSON, []byte(`{` + strings.TrimSuffix(strings.Repeat(`"a":1,`, 2000), ",") + `}`), "more than 1024 members"},
	}
}

func TestDecodeCommandRefusesHostileHeaders(t *testing.T) {
	for _, tc := range hostile() {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			alloc := allocated(func() { _, err = wire.DecodeCommand(tc.contentType, tc.body) })
			if !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("got %v, want wire.ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, want it to say %q", err, tc.want)
			}
			if limit := uint64(64<<10 + 64*len(tc.body)); alloc > limit {
				t.Fatalf("decoding %d bytes allocated %d bytes, want at most %d", len(tc.body), alloc, limit)
			}
		})
	}
}

// allocated returns the bytes fn allocated on the heap.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDecodeHugeHeaderInABoundedProcess decodes the 74-byte body in a child process
// whose address space is capped at 1 GiB more than it already maps and whose Go heap
// is limited to 256 MiB: a decoder that trusts the header dies there ("out of memory")
// instead of taking the machine down, and the test fails.
func TestDecodeHugeHeaderInABoundedProcess(t *testing.T) {
	if os.Getenv("WIRE_BOUNDED_CHILD") == "1" {
		boundedChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDecodeHugeHeaderInABoundedProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "WIRE_BOUNDED_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("REFUSED")) {
		t.Fatalf("the bounded child failed (%v):\n%s", err, firstLines(out, 20))
	}
}

func boundedChild() {
	debug.SetMemoryLimit(256 << 20)
	var rl syscall.Rlimit
	// VmSize of this process plus 1 GiB: room for the test, none for a huge slice.
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: vmSize() + 1<<30, Max: vmSize() + 1<<30}); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(2)
	}
	_ = rl
	for _, ct := range []string{"", wire.ContentTypeMsgpack} {
		_, err := wire.DecodeCommand(ct, hugeRecipes)
		if !errors.Is(err, wire.ErrMalformed) {
			fmt.Println("got", err, "want malformed")
			os.Exit(1)
		}
	}
	fmt.Println("REFUSED")
}

func vmSize() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 8 << 30
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			var kb uint64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	return 8 << 30
}

func firstLines(b []byte, n int) string {
	lines := strings.SplitN(string(b), "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}
