package eventstore

import (
	"encoding/binary"
	"time"

	"github.com/studyd/studyd/domain"
)

// decodeCommitFast decodes a schema-2 commit without reflection, into exactly what
// msgpack v5's reflective decoder (decodeStrict into a Commit) would produce before
// normalisation. It answers ok=false for anything it does not read in precisely that
// decoder's way: another schema, bytes that are not one complete msgpack value, an
// unknown or repeated key (repeated keys merge into the earlier value in msgpack's
// decoder), a struct encoded as an array, a type msgpack would refuse. The caller then
// takes the reflective path, which also writes the error, so an audit sees the same
// result and the same message either way. FuzzDecodeEquivalence holds the two together.
func decodeCommitFast(b []byte) (c Commit, ok bool) {
	r := reader{b: b}
	// The envelope opens with its schema (peekSchema's rule); anything but 2 is the
	// reflective path's business (upcasts, unknown-schema errors).
	n := r.mapLen()
	if n < 1 || string(r.key()) != "schema" || r.int() != SchemaVersion || r.bad {
		return Commit{}, false
	}
	c.Schema = SchemaVersion
	seen := uint32(1) // bit 0: schema
	for range n - 1 {
		k := r.key()
		var bit uint32
		switch string(k) {
		case "commit_id":
			bit, c.CommitID = 1<<1, r.str()
		case "command_id":
			bit, c.CommandID = 1<<2, r.str()
		case "command_type":
			bit, c.CommandType = 1<<3, domain.CommandType(r.enum())
		case "command_seq":
			bit, c.CommandSeq = 1<<4, r.uint()
		case "correlation_id":
			bit, c.CorrelationID = 1<<5, r.str()
		case "client":
			bit, c.Client = 1<<6, domain.ClientID(r.str())
		case "at":
			bit, c.At = 1<<7, r.time()
		case "events":
			bit, c.Events = 1<<8, r.events()
		case "state":
			bit = 1 << 9
			r.state(&c.State)
		case "recent":
			bit, c.Recent = 1<<10, r.recent()
		case "fsm_version":
			bit, c.FSMVersion = 1<<11, r.str()
		case "prev_hash":
			bit, c.PrevHash = 1<<12, r.str()
		case "schema":
			bit = 1 // a second schema: repeated key
		default:
			r.bad = true // msgpack refuses unknown fields (DisallowUnknownFields)
		}
		if r.bad || seen&bit != 0 {
			return Commit{}, false
		}
		seen |= bit
	}
	if r.bad || r.pos != len(b) {
		return Commit{}, false
	}
	return c, true
}

func (r *reader) events() []domain.Event {
	n := r.arrayLen()
	if n <= 0 {
		return nil // nil or empty: normalizeCommit makes both nil
	}
	s := make([]domain.Event, n)
	for i := range s {
		if r.event(&s[i]); r.bad {
			return nil
		}
	}
	return s
}

func (r *reader) event(e *domain.Event) {
	n := r.structLen()
	var seen uint32
	for range n {
		k := r.key()
		var bit uint32
		switch string(k) {
		case "type":
			bit, e.Type = 1<<0, domain.EventType(r.enum())
		case "source":
			bit, e.Source = 1<<1, r.enum()
		case "status":
			bit, e.Status = 1<<2, domain.UptakeStatus(r.enum())
		case "object":
			bit, e.Object = 1<<3, domain.Object(r.enum())
		case "key":
			bit, e.Key = 1<<4, r.str()
		case "slug":
			bit, e.Slug = 1<<5, r.str()
		case "enrollment_id":
			bit, e.EnrollmentID = 1<<6, r.str()
		case "from":
			bit, e.From = 1<<7, domain.State(r.enum())
		case "to":
			bit, e.To = 1<<8, domain.State(r.enum())
		case "branch":
			bit, e.Branch = 1<<9, r.str()
		case "experiment_type":
			bit, e.ExperimentType = 1<<10, domain.ExperimentType(r.enum())
		case "preference":
			bit, e.Preference = 1<<11, r.str()
		case "addon_id":
			bit, e.AddonID = 1<<12, r.str()
		case "addon_version":
			bit, e.AddonVersion = 1<<13, r.str()
		case "reason":
			bit, e.Reason = 1<<14, r.enum()
		case "reset_value":
			bit, e.ResetValue = 1<<15, r.bool()
		case "studies_enabled":
			bit, e.StudiesEnabled = 1<<16, r.bool()
		default:
			r.bad = true
		}
		if r.bad || seen&bit != 0 {
			r.bad = true
			return
		}
		seen |= bit
	}
}

// state decodes into s, which is zero: a nil state leaves it so, as msgpack does.
func (r *reader) state(s *domain.ClientState) {
	n := r.structLen()
	var seen uint32
	for range n {
		k := r.key()
		var bit uint32
		switch string(k) {
		case "client":
			bit, s.Client = 1<<0, domain.ClientID(r.str())
		case "studies_disabled":
			bit, s.StudiesDisabled = 1<<1, r.bool()
		case "last_run_at":
			bit, s.LastRunAt = 1<<2, r.time()
		case "enrollments":
			bit, s.Enrollments = 1<<3, r.enrollments()
		default:
			r.bad = true
		}
		if r.bad || seen&bit != 0 {
			r.bad = true
			return
		}
		seen |= bit
	}
}

func (r *reader) enrollments() []domain.Enrollment {
	n := r.arrayLen()
	if n <= 0 {
		return nil
	}
	s := make([]domain.Enrollment, n)
	for i := range s {
		if r.enrollment(&s[i]); r.bad {
			return nil
		}
	}
	return s
}

func (r *reader) enrollment(e *domain.Enrollment) {
	n := r.structLen()
	var seen uint32
	for range n {
		k := r.key()
		var bit uint32
		switch string(k) {
		case "object":
			bit, e.Object = 1<<0, domain.Object(r.enum())
		case "key":
			bit, e.Key = 1<<1, r.str()
		case "slug":
			bit, e.Slug = 1<<2, r.str()
		case "action":
			bit, e.Action = 1<<3, r.str()
		case "enrollment_id":
			bit, e.EnrollmentID = 1<<4, r.str()
		case "state":
			bit, e.State = 1<<5, domain.State(r.enum())
		case "branch":
			bit, e.Branch = 1<<6, r.str()
		case "experiment_type":
			bit, e.ExperimentType = 1<<7, domain.ExperimentType(r.enum())
		case "preference":
			bit, e.Preference = 1<<8, r.str()
		case "addon_id":
			bit, e.AddonID = 1<<9, r.str()
		case "addon_version":
			bit, e.AddonVersion = 1<<10, r.str()
		case "enrolled_at":
			bit, e.EnrolledAt = 1<<11, r.time()
		case "last_seen":
			bit, e.LastSeen = 1<<12, r.time()
		case "ended_at":
			bit, e.EndedAt = 1<<13, r.time()
		case "reason":
			bit, e.Reason = 1<<14, r.enum()
		case "failures":
			bit, e.Failures = 1<<15, int(r.int())
		default:
			r.bad = true
		}
		if r.bad || seen&bit != 0 {
			r.bad = true
			return
		}
		seen |= bit
	}
}

func (r *reader) recent() []Applied {
	n := r.arrayLen()
	if n <= 0 {
		return nil
	}
	s := make([]Applied, n)
	for i := range s {
		a := &s[i]
		m := r.structLen()
		var seen uint32
		for range m {
			k := r.key()
			var bit uint32
			switch string(k) {
			case "command_id":
				bit, a.CommandID = 1<<0, r.str()
			case "command_seq":
				bit, a.CommandSeq = 1<<1, r.uint()
			case "position":
				bit, a.Position = 1<<2, r.uint()
			default:
				r.bad = true
			}
			if r.bad || seen&bit != 0 {
				r.bad = true
				return nil
			}
			seen |= bit
		}
	}
	return s
}

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
func (r *reader) str() string { return r.intern(r.raw()) }

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
	return r.intern(p)
}

// intern returns p as a new string, or as an equal one made earlier from this commit.
func (r *reader) intern(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	slot := &r.strs[strHash(p)%uint8(len(r.strs))]
	if *slot != string(p) {
		*slot = string(p)
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
