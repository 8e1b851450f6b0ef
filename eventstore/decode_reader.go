package eventstore

import (
	"encoding/binary"
	"time"

	"github.com/studyd/studyd/domain"
)

// reader reads msgpack values from b the way msgpack v5's typed decoders do (nil reads
// as the zero value; strings may be str or bin; integers of any width and sign convert
// to the field's type with the same wrap-around). Any failure sets bad and makes every
// later read return zero, so callers check once per entry. Nothing it returns aliases b.
type reader struct {
	b   []byte
	pos int
	bad bool
	// strs remembers strings already made from this commit, so that the client id, a
	// study's key and slug, a branch or an action name repeated across events and
	// enrollments cost one allocation. Sharing equal immutable strings within one commit
	// retains nothing that commit would not hold anyway.
	strs [64]string
	// lean makes the reads of what an audit replay does not need (opt, optEnum, and the
	// lists the decoder reads with keep false) check the bytes exactly as the full reads
	// do but make nothing: DecodeCommitLean.
	lean bool
	// arena, if set, holds the events and enrollments the read makes (nil: each its own
	// allocation).
	arena *Arena
}

// fail marks the input as not fast-decodable and returns 0 for the caller's convenience.
func (r *reader) fail() int {
	r.bad = true
	r.pos = len(r.b)
	return 0
}

func (r *reader) code() byte {
	if r.pos >= len(r.b) {
		r.fail()
		return 0xc1 // never valid: every caller refuses it
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

// next returns the following n bytes, or nil and bad if there are fewer.
func (r *reader) next(n int) []byte {
	if n < 0 || n > len(r.b)-r.pos {
		r.fail()
		return nil
	}
	p := r.b[r.pos : r.pos+n]
	r.pos += n
	return p
}

func (r *reader) be(n int) uint64 {
	p := r.next(n)
	switch len(p) {
	case 1:
		return uint64(p[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(p))
	case 4:
		return uint64(binary.BigEndian.Uint32(p))
	case 8:
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// mapLen reads a map header. The count is bounded by the bytes left (an entry takes at
// least two), so a hostile header cannot make a caller loop or allocate for nothing.
func (r *reader) mapLen() int {
	c := r.code()
	var n int
	switch {
	case c >= 0x80 && c <= 0x8f:
		n = int(c & 0x0f)
	case c == 0xde:
		n = int(r.be(2))
	case c == 0xdf:
		n = int(r.be(4))
	default:
		return r.fail()
	}
	if n > (len(r.b)-r.pos)/2 {
		return r.fail()
	}
	return n
}

// structLen reads the header of a struct: a map, or nil for the zero value (0 entries
// to read). msgpack also accepts a struct written as an array of all its fields; that
// form is left to it.
func (r *reader) structLen() int {
	if r.pos < len(r.b) && r.b[r.pos] == 0xc0 {
		r.pos++
		return 0
	}
	return r.mapLen()
}

// arrayLen reads an array header: -1 for nil. The count is bounded by the bytes left.
func (r *reader) arrayLen() int {
	c := r.code()
	var n int
	switch {
	case c == 0xc0:
		return -1
	case c >= 0x90 && c <= 0x9f:
		n = int(c & 0x0f)
	case c == 0xdc:
		n = int(r.be(2))
	case c == 0xdd:
		n = int(r.be(4))
	default:
		return r.fail()
	}
	if n > len(r.b)-r.pos {
		return r.fail()
	}
	return n
}

// raw reads a str or bin value (msgpack decodes either into a string) and returns its
// bytes, which alias b; nil reads as empty.
func (r *reader) raw() []byte {
	c := r.code()
	var n int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = int(c & 0x1f)
	case c == 0xc0:
		return nil
	case c == 0xd9 || c == 0xc4:
		n = int(r.be(1))
	case c == 0xda || c == 0xc5:
		n = int(r.be(2))
	case c == 0xdb || c == 0xc6:
		n = int(r.be(4))
	default:
		r.fail()
		return nil
	}
	return r.next(n)
}

// key reads a map key. A nil key would be the empty name, which no field has.
func (r *reader) key() []byte {
	if r.pos < len(r.b) && r.b[r.pos] == 0xc0 {
		r.fail()
		return nil
	}
	return r.raw()
}

// str reads a free-form string.
func (r *reader) str() string { return r.intern(r.raw(), true) }

// id reads a string that recurs within a commit at most (a client or command id, a
// hash, an enrollment id): an arena does not keep it, so that such strings, which
// would miss every time, neither cost a lookup nor take the room of recurring ones.
func (r *reader) id() string { return r.intern(r.raw(), false) }

// strIf is str if keep, and otherwise reads the same bytes and returns "".
func (r *reader) strIf(keep bool) string {
	if !keep {
		r.raw()
		return ""
	}
	return r.str()
}

// opt is str for a field a lean reader skips.
func (r *reader) opt() string { return r.strIf(!r.lean) }

// optEnum is enum for a field a lean reader skips.
func (r *reader) optEnum() string {
	if r.lean {
		r.raw()
		return ""
	}
	return r.enum()
}

// enum reads a string that is usually one of the domain's constants, which it returns
// without allocating; anything else is read as str does.
func (r *reader) enum() string {
	p := r.raw()
	if len(p) == 0 {
		return ""
	}
	for i := int(strHash(p)); constants[i] != ""; i++ {
		if constants[i] == string(p) {
			return constants[i]
		}
	}
	return r.intern(p, true)
}

// intern returns p as a new string, or as an equal one made earlier from this commit
// or, if shared, kept by the reader's arena.
func (r *reader) intern(p []byte, shared bool) string {
	if len(p) == 0 {
		return ""
	}
	slot := &r.strs[strHash(p)%uint8(len(r.strs))]
	if *slot != string(p) {
		if shared {
			*slot = r.arena.intern(p)
		} else {
			*slot = string(p)
		}
	}
	return *slot
}

// strHash is a cheap hash of a non-empty string for the two tables above: its length
// and a few bytes from where the ids and names of a commit differ (their ends).
func strHash(p []byte) uint8 {
	n := len(p)
	h := uint32(n)*0x9e3779b1 ^ uint32(p[n-1])<<7 ^ uint32(p[n/2])<<14 ^ uint32(p[0])<<21
	if n > 1 {
		h ^= uint32(p[n-2]) * 0x85ebca6b
	}
	return uint8(h ^ h>>8 ^ h>>16 ^ h>>24)
}

// constants are the strings of the domain's enumerations, to hand out instead of copies:
// an open-addressing table under strHash, probed up to the next empty slot (there are
// far fewer constants than slots, and one extra slot ends every probe).
var constants = func() (t [257]string) {
	add := func(v string) {
		i := int(strHash([]byte(v)))
		for t[i] != "" && t[i] != v {
			i++
		}
		if i == len(t)-1 {
			panic("eventstore: constants table overflow") // unreachable with today's few dozen
		}
		t[i] = v
	}
	add(domain.SourceRunner)
	for _, v := range domain.CommandTypes {
		add(string(v))
	}
	for _, v := range domain.EventTypes {
		add(string(v))
	}
	for _, v := range domain.States {
		add(string(v))
	}
	for _, v := range domain.Objects {
		add(string(v))
		for _, reason := range domain.Reasons(v) {
			add(string(reason))
		}
	}
	for _, v := range domain.ExperimentTypes {
		add(string(v))
	}
	for _, set := range [][]domain.UptakeStatus{domain.RunnerStatuses, domain.ActionStatuses, domain.RecipeStatuses} {
		for _, v := range set {
			add(string(v))
		}
	}
	return t
}()

// uint reads an integer into a uint64 field: nil is 0, signed values wrap (msgpack's
// DecodeUint64).
func (r *reader) uint() uint64 {
	c := r.code()
	switch {
	case c <= 0x7f || c >= 0xe0:
		return uint64(int8(c))
	case c == 0xc0:
		return 0
	case c >= 0xcc && c <= 0xcf: // uint8..64
		return r.be(1 << (c - 0xcc))
	case c == 0xd0:
		return uint64(int8(r.be(1)))
	case c == 0xd1:
		return uint64(int16(r.be(2)))
	case c == 0xd2:
		return uint64(int32(r.be(4)))
	case c == 0xd3:
		return r.be(8)
	}
	return uint64(r.fail())
}

// int reads an integer into an int field (msgpack's DecodeInt64; int is 64 bits wide
// wherever studyd runs).
func (r *reader) int() int64 {
	return int64(r.uint()) // same bits: sign extension and wrap-around agree
}

func (r *reader) bool() bool {
	switch r.code() {
	case 0xc0, 0xc2:
		return false
	case 0xc3:
		return true
	}
	r.fail()
	return false
}

// time reads msgpack's timestamp extension (type -1) in any of its three sizes, as
// msgpack's time.Time decoder does; it accepts the extension under any ext header. nil
// (on which msgpack panics) and anything else are left to the reflective path.
func (r *reader) time() time.Time {
	var n int
	switch c := r.code(); c {
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
		n = 1 << (c - 0xd4)
	case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32
		n = int(r.be(1 << (c - 0xc7)))
	default:
		r.fail()
		return time.Time{}
	}
	if r.code() != 0xff { // extension type -1
		r.fail()
		return time.Time{}
	}
	p := r.next(n)
	switch len(p) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(p)), 0)
	case 8:
		data := binary.BigEndian.Uint64(p)
		return time.Unix(int64(data&0x3_ffff_ffff), int64(data>>34))
	case 12:
		return time.Unix(int64(binary.BigEndian.Uint64(p[4:])), int64(binary.BigEndian.Uint32(p)))
	}
	r.fail()
	return time.Time{}
}
