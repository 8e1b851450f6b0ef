package app

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
	"github.com/studyd/studyd/recipe"
)

// The cache keeps each client's latest record in a compact encoded form, one []byte per
// client, instead of the decoded record: no pointers for the garbage collector to scan,
// and a few hundred bytes for a client a decoded record holds in several kilobytes.
// What it keeps is what deciding the client's next command reads (cachedView): the
// position, the hash, the state and the recent command ids.
//
// Layout (in memory only, never stored, so no version): uvarint position; hash; the
// state's client (same as the key, or inline); studies_disabled; last_run_at; uvarint n
// and n enrollments; uvarint n and n recent commands. Within them:
//
//   - a string is a uvarint tag: 0 empty, 1 inline (uvarint length, bytes), n ≥ 2 the
//     interned string n−2. Low-cardinality fields (study keys and slugs, actions,
//     branches, preferences, add-on ids and versions, reasons, preference types, branch
//     values, ratio slugs) are interned while the interner has room.
//   - an enumeration (object, state, experiment type) is one byte: its index in the
//     known values + 1, or 0 followed by the string.
//   - a time is one byte: 0 for the zero time, else 1 followed by the zigzag varint of
//     its Unix seconds and the uvarint of its nanoseconds (UTC on the way back).
//   - an id that is a lowercase hex UUID (enrollment ids, many command ids) takes 16
//     bytes; a command id that starts with the client's id keeps only the rest.
//   - the hash, 64 lowercase hex digits, takes 32 bytes.

// cachedView is what the cache keeps of a record, as a Record: the fields deciding the
// client's next command reads. The events are read back from the log in the rare case
// of a duplicate.
func cachedView(r eventstore.Record) eventstore.Record {
	return eventstore.Record{
		Position: r.Position,
		Hash:     r.Hash,
		Commit: eventstore.Commit{
			Client: r.Commit.Client,
			State:  r.Commit.State,
			Recent: r.Commit.Recent,
		},
	}
}

var errCompact = errors.New("app: malformed cache entry")

var (
	knownObjects = []string{string(domain.PreferenceStudy), string(domain.AddonStudy)}
	knownStates  = []string{string(domain.StateNone), string(domain.StateEnrolled), string(domain.StateUnenrolled), string(domain.StateEnrollFailed)}
	knownTypes   = []string{string(domain.ExperimentTypeExp), string(domain.ExperimentTypeExpHighpop)}
)

// maxInterned is the longest string the interner takes: longer ones are unlikely to
// repeat, and would cost the table more than they save.
const maxInterned = 128

// interner maps low-cardinality strings to small numbers. It only grows, up to
// maxBytes (strings past that are kept inline), and its strings are never changed, so
// a decoder may read any id it was handed under the cache's lock without holding it.
type interner struct {
	ids      map[string]uint32
	strs     []string
	bytes    int // what the table costs, approximately
	maxBytes int
}

// internCost approximates what one interned string costs: its bytes twice (the string
// and the map key share them, but the map's buckets do not), headers and the map slot.
func internCost(s string) int { return len(s) + 64 }

func (in *interner) id(s string) (uint32, bool) {
	if id, ok := in.ids[s]; ok {
		return id, true
	}
	if len(s) > maxInterned || in.bytes+internCost(s) > in.maxBytes {
		return 0, false
	}
	s = strings.Clone(s) // do not keep the record's buffer alive
	id := uint32(len(in.strs))
	in.ids[s] = id
	in.strs = append(in.strs, s)
	in.bytes += internCost(s)
	return id, true
}

// encoder appends a record's compact form to buf.
type encoder struct {
	buf []byte
	in  *interner // nil: nothing interned
}

func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }

func (e *encoder) inline(s string) {
	if s == "" {
		e.uvarint(0)
		return
	}
	e.uvarint(1)
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

// str writes s, interned if it can be.
func (e *encoder) str(s string) {
	if s != "" && e.in != nil {
		if id, ok := e.in.id(s); ok {
			e.uvarint(uint64(id) + 2)
			return
		}
	}
	e.inline(s)
}

func (e *encoder) enum(s string, known []string) {
	for i, k := range known {
		if s == k {
			e.buf = append(e.buf, byte(i+1))
			return
		}
	}
	e.buf = append(e.buf, 0)
	e.str(s)
}

func (e *encoder) time(t time.Time) {
	if t.IsZero() {
		e.buf = append(e.buf, 0)
		return
	}
	e.buf = append(e.buf, 1)
	e.varint(t.Unix())
	e.uvarint(uint64(t.Nanosecond()))
}

// Id forms.
const (
	idInline = iota
	idUUID
	idClientPrefix // the client's id followed by the rest, inline
)

func (e *encoder) id(s string, client domain.ClientID) {
	if u, ok := parseUUID(s); ok {
		e.buf = append(e.buf, idUUID)
		e.buf = append(e.buf, u[:]...)
		return
	}
	if rest, ok := strings.CutPrefix(s, string(client)); ok && client != "" {
		e.buf = append(e.buf, idClientPrefix)
		e.inline(rest)
		return
	}
	e.buf = append(e.buf, idInline)
	e.inline(s)
}

func (e *encoder) hash(h string) {
	if len(h) == 64 && isLowerHex(h) {
		e.buf = append(e.buf, 1)
		e.buf, _ = hex.AppendDecode(e.buf, []byte(h)) // checked above
		return
	}
	e.buf = append(e.buf, 0)
	e.inline(h)
}

func (e *encoder) enrollment(en *domain.Enrollment, client domain.ClientID) {
	e.enum(string(en.Object), knownObjects)
	e.str(en.Key)
	e.str(en.Slug)
	e.str(en.Action)
	e.id(en.EnrollmentID, client)
	e.enum(string(en.State), knownStates)
	e.str(en.Branch)
	e.enum(string(en.ExperimentType), knownTypes)
	e.str(en.Preference)
	e.str(en.AddonID)
	e.str(en.AddonVersion)
	e.time(en.EnrolledAt)
	e.time(en.LastSeen)
	e.time(en.EndedAt)
	e.str(en.Reason)
	e.varint(int64(en.Failures))
	e.str(en.PreferenceType)
	e.str(en.PreferenceBranchType)
	e.str(string(en.BranchValue))
	e.uvarint(uint64(len(en.Ratios)))
	for _, r := range en.Ratios {
		e.str(r.Slug)
		e.uvarint(r.Ratio)
	}
}

// encodeCompact appends the compact form of r's cachedView to buf; r.Commit.Client is
// the cache key and is not written.
func encodeCompact(buf []byte, r eventstore.Record, in *interner) []byte {
	e := encoder{buf: buf, in: in}
	c := &r.Commit
	e.uvarint(r.Position)
	e.hash(r.Hash)
	if c.State.Client == c.Client {
		e.buf = append(e.buf, 0)
	} else {
		e.buf = append(e.buf, 1)
		e.inline(string(c.State.Client))
	}
	if c.State.StudiesDisabled {
		e.buf = append(e.buf, 1)
	} else {
		e.buf = append(e.buf, 0)
	}
	e.time(c.State.LastRunAt)
	e.uvarint(uint64(len(c.State.Enrollments)))
	for i := range c.State.Enrollments {
		e.enrollment(&c.State.Enrollments[i], c.Client)
	}
	e.uvarint(uint64(len(c.Recent)))
	for _, a := range c.Recent {
		e.id(a.CommandID, c.Client)
		e.uvarint(a.CommandSeq)
		e.uvarint(a.Position)
	}
	return e.buf
}

// decoder reads a compact form. strs is the interner's table as it was when the
// entry was read under the cache's lock: every id the entry holds is within it.
type decoder struct {
	b    []byte
	strs []string
	err  error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCompact
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n uint64) []byte {
	if uint64(len(d.b)) < n {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	switch tag := d.uvarint(); tag {
	case 0:
		return ""
	case 1:
		return string(d.bytes(d.uvarint()))
	default:
		if tag-2 >= uint64(len(d.strs)) {
			d.fail()
			return ""
		}
		return d.strs[tag-2]
	}
}

func (d *decoder) enum(known []string) string {
	i := d.byte()
	if i == 0 {
		return d.str()
	}
	if int(i) > len(known) {
		d.fail()
		return ""
	}
	return known[i-1]
}

func (d *decoder) time() time.Time {
	if d.byte() == 0 {
		return time.Time{}
	}
	sec := d.varint()
	nsec := d.uvarint()
	if nsec >= 1e9 {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) id(client domain.ClientID) string {
	switch d.byte() {
	case idInline:
		return d.str()
	case idUUID:
		u := d.bytes(16)
		if u == nil {
			return ""
		}
		return formatUUID([16]byte(u))
	case idClientPrefix:
		return string(client) + d.str()
	default:
		d.fail()
		return ""
	}
}

func (d *decoder) hash() string {
	switch d.byte() {
	case 0:
		return d.str()
	case 1:
		return hex.EncodeToString(d.bytes(32))
	default:
		d.fail()
		return ""
	}
}

func (d *decoder) enrollment(client domain.ClientID) domain.Enrollment {
	var en domain.Enrollment
	en.Object = domain.Object(d.enum(knownObjects))
	en.Key = d.str()
	en.Slug = d.str()
	en.Action = d.str()
	en.EnrollmentID = d.id(client)
	en.State = domain.State(d.enum(knownStates))
	en.Branch = d.str()
	en.ExperimentType = domain.ExperimentType(d.enum(knownTypes))
	en.Preference = d.str()
	en.AddonID = d.str()
	en.AddonVersion = d.str()
	en.EnrolledAt = d.time()
	en.LastSeen = d.time()
	en.EndedAt = d.time()
	en.Reason = d.str()
	en.Failures = int(d.varint())
	en.PreferenceType = d.str()
	en.PreferenceBranchType = d.str()
	en.BranchValue = domain.JSONText(d.str())
	if n := d.count(2); n > 0 {
		en.Ratios = make([]recipe.Ratio, n)
		for i := range en.Ratios {
			en.Ratios[i] = recipe.Ratio{Slug: d.str(), Ratio: d.uvarint()}
		}
	}
	return en
}

// count reads a length whose elements take at least min bytes each, so that a
// malformed entry cannot ask for more than it holds.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

// decodeCompact returns the cachedView encodeCompact encoded for client.
func decodeCompact(client domain.ClientID, b []byte, strs []string) (eventstore.Record, error) {
	d := decoder{b: b, strs: strs}
	var r eventstore.Record
	r.Position = d.uvarint()
	r.Hash = d.hash()
	r.Commit.Client = client
	r.Commit.State.Client = client
	if d.byte() != 0 {
		r.Commit.State.Client = domain.ClientID(d.str())
	}
	r.Commit.State.StudiesDisabled = d.byte() != 0
	r.Commit.State.LastRunAt = d.time()
	if n := d.count(20); n > 0 {
		r.Commit.State.Enrollments = make([]domain.Enrollment, n)
		for i := range r.Commit.State.Enrollments {
			r.Commit.State.Enrollments[i] = d.enrollment(client)
		}
	}
	if n := d.count(3); n > 0 {
		r.Commit.Recent = make([]eventstore.Applied, n)
		for i := range r.Commit.Recent {
			r.Commit.Recent[i] = eventstore.Applied{CommandID: d.id(client), CommandSeq: d.uvarint(), Position: d.uvarint()}
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return eventstore.Record{}, d.err
	}
	return r, nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseUUID reads the lowercase 8-4-4-4-12 hex form, the only one formatUUID writes
// back identically.
func parseUUID(s string) (u [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	digits := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if !isLowerHex(digits) {
		return u, false
	}
	if _, err := hex.Decode(u[:], []byte(digits)); err != nil {
		return u, false
	}
	return u, true
}

func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}
