package eventstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/studyd/studyd/domain"
)

// The encoding is canonical: msgpack maps whose keys follow the struct field order (the
// library encodes structs that way), compact integers, timestamps as msgpack's time
// extension (instant only, no zone), no Go maps anywhere, and nil slices written as empty
// arrays. The same Commit therefore always yields the same bytes, which the audit hash
// chain relies on.

// RejectionSchemaVersion is the rejection envelope version this build writes and reads.
const RejectionSchemaVersion = 1

// supportedSchemas are the commit schema versions DecodeCommit reads.
var supportedSchemas = []int{1, SchemaVersion}

// EncodeCommit returns c's canonical bytes. c.Schema may be 0 (meaning SchemaVersion) or
// SchemaVersion; the commit must be well formed (see Commit.Validate), so that whatever
// is appended can be decoded again.
func EncodeCommit(c Commit) ([]byte, error) {
	switch c.Schema {
	case 0:
		c.Schema = SchemaVersion
	case SchemaVersion:
	default:
		return nil, fmt.Errorf("encode commit: schema %d: %w (this build writes only %d)", c.Schema, ErrUnknownSchema, SchemaVersion)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("encode commit: %w", err)
	}
	buf := commitBuffers.Get().(*[]byte)
	*buf = appendCommit((*buf)[:0], &c)
	out := bytes.Clone(*buf)
	if cap(*buf) <= maxPooledCommitBuffer {
		commitBuffers.Put(buf)
	}
	return out, nil
}

// commitBuffers hold EncodeCommit's scratch space: a commit is encoded into a buffer
// grown to the size of earlier ones, then copied out at its exact size (one allocation
// instead of the growing buffer's several, a quarter of deciding a command's garbage).
var commitBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledCommitBuffer keeps a rare huge commit's buffer out of the pool.
const maxPooledCommitBuffer = 256 << 10

// encodeCommitReflect is the reference encoding appendCommit must reproduce: msgpack's
// reflective encoder, with nil slices written as empty arrays.
func encodeCommitReflect(c Commit) ([]byte, error) {
	c.Events = nonNil(c.Events)
	c.Recent = nonNil(c.Recent)
	c.State.Enrollments = nonNil(c.State.Enrollments)
	return encode(&c)
}

// DecodeCommit decodes a commit of any supported schema, upcasting older ones to the
// current Commit (Schema is then SchemaVersion). Times come back in UTC and empty slices
// as nil, and nothing in the commit aliases b. Errors: ErrUnknownSchema for a version
// this build cannot read, ErrCorrupt for anything else that is not exactly one
// well-formed commit.
func DecodeCommit(b []byte) (Commit, error) {
	c, ok := decodeCommitFast(b)
	if !ok {
		// Older schemas, and everything the fast decoder cannot vouch for: msgpack's
		// reflective decoder then decides, and words the error.
		return decodeCommitReflect(b)
	}
	normalizeCommit(&c)
	if err := c.Validate(); err != nil {
		return Commit{}, fmt.Errorf("decode commit: %w: %w", ErrCorrupt, err)
	}
	return c, nil
}

// decodeCommitReflect is DecodeCommit through msgpack's reflective decoder: the reference
// decodeCommitFast must agree with, and the path for schema 1 and for bad input.
func decodeCommitReflect(b []byte) (Commit, error) {
	r := bytes.NewReader(b)
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)

	if err := wellFormed(b); err != nil {
		return Commit{}, fmt.Errorf("decode commit: %w: %w", ErrCorrupt, err)
	}
	schema, err := peekSchema(dec, r)
	if err != nil {
		return Commit{}, fmt.Errorf("decode commit: %w: %w", ErrCorrupt, err)
	}
	var c Commit
	switch schema {
	case SchemaVersion:
		err = decodeStrict(dec, r, b, &c)
	case 1:
		var v1 commitV1
		if err = decodeStrict(dec, r, b, &v1); err == nil {
			c = v1.upcast()
		}
	default:
		return Commit{}, fmt.Errorf("decode commit: %w %d (supported: %s)", ErrUnknownSchema, schema, schemaList(supportedSchemas))
	}
	if err != nil {
		return Commit{}, fmt.Errorf("decode commit: %w: %w", ErrCorrupt, err)
	}
	normalizeCommit(&c)
	if err := c.Validate(); err != nil {
		return Commit{}, fmt.Errorf("decode commit: %w: %w", ErrCorrupt, err)
	}
	return c, nil
}

// Canonical returns c as DecodeCommit(EncodeCommit(c)) would return it: Schema set,
// times in UTC, empty slices nil, no slice shared with c. A Store returns it for the
// commit it just appended, which is cheaper than decoding the bytes again.
func (c Commit) Canonical() Commit {
	if c.Schema == 0 {
		c.Schema = SchemaVersion
	}
	c.Events = slices.Clone(c.Events)
	c.Recent = slices.Clone(c.Recent)
	c.State.Enrollments = slices.Clone(c.State.Enrollments)
	for i := range c.Events {
		c.Events[i].Ratios = slices.Clone(c.Events[i].Ratios)
	}
	for i := range c.State.Enrollments {
		en := &c.State.Enrollments[i]
		en.Ratios = slices.Clone(en.Ratios)
		en.Preferences = slices.Clone(en.Preferences)
		en.Overridden = slices.Clone(en.Overridden)
	}
	normalizeCommit(&c)
	return c
}

// DecodeRecord decodes the commit stored at position pos with bytes data: the one way
// from a log message to a Record. Hash is the sha256 of data as stored, which the
// client's next commit names as PrevHash. Errors are DecodeCommit's.
func DecodeRecord(pos uint64, data []byte) (Record, error) {
	c, err := DecodeCommit(data)
	if err != nil {
		return Record{}, err
	}
	return Record{Position: pos, Commit: c, Hash: Hash(data)}, nil
}

// Hash is the hex sha256 of a commit's encoded bytes: its Record.Hash, and the PrevHash
// of the client's next commit.
func Hash(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// Validate checks what a commit must hold to be written or believed when read: a valid
// client that its state agrees on, a command id, known event types, known states, and
// enrollments sorted and unique. Errors wrap domain.ErrInvalid.
func (c Commit) Validate() error {
	if err := c.Client.Validate(); err != nil {
		return err
	}
	if c.CommandID == "" {
		return fmt.Errorf("%w: commit has no command_id", domain.ErrInvalid)
	}
	if c.State.Client != c.Client {
		return fmt.Errorf("%w: commit for client %q carries the state of client %q", domain.ErrInvalid, c.Client, c.State.Client)
	}
	for i, e := range c.Events {
		if _, err := domain.ParseEventType(string(e.Type)); err != nil {
			return fmt.Errorf("events[%d]: %w", i, err)
		}
		for _, s := range []domain.State{e.From, e.To} {
			if s == "" {
				continue // uptake and opt-out events move no enrollment
			}
			if _, err := domain.ParseState(string(s)); err != nil {
				return fmt.Errorf("events[%d]: %w", i, err)
			}
		}
	}
	if err := c.State.Validate(); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	return nil
}

// EncodeRejection returns r's canonical bytes. A payload longer than MaxRejectedPayload
// is cut to that length: the evidence is its beginning.
func EncodeRejection(r Rejection) ([]byte, error) {
	switch r.Schema {
	case 0:
		r.Schema = RejectionSchemaVersion
	case RejectionSchemaVersion:
	default:
		return nil, fmt.Errorf("encode rejection: schema %d: %w (this build writes only %d)", r.Schema, ErrUnknownSchema, RejectionSchemaVersion)
	}
	if len(r.Payload) > MaxRejectedPayload {
		r.Payload = r.Payload[:MaxRejectedPayload]
	}
	r.Payload = nilIfEmpty(r.Payload)
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("encode rejection: %w", err)
	}
	return encode(&r)
}

// DecodeRejection decodes a rejection. Errors: ErrUnknownSchema, ErrCorrupt.
func DecodeRejection(b []byte) (Rejection, error) {
	r := bytes.NewReader(b)
	dec := msgpack.GetDecoder()
	defer msgpack.PutDecoder(dec)

	if err := wellFormed(b); err != nil {
		return Rejection{}, fmt.Errorf("decode rejection: %w: %w", ErrCorrupt, err)
	}
	schema, err := peekSchema(dec, r)
	if err != nil {
		return Rejection{}, fmt.Errorf("decode rejection: %w: %w", ErrCorrupt, err)
	}
	if schema != RejectionSchemaVersion {
		return Rejection{}, fmt.Errorf("decode rejection: %w %d (supported: %d)", ErrUnknownSchema, schema, RejectionSchemaVersion)
	}
	var rej Rejection
	if err := decodeStrict(dec, r, b, &rej); err != nil {
		return Rejection{}, fmt.Errorf("decode rejection: %w: %w", ErrCorrupt, err)
	}
	rej.At = utc(rej.At)
	if len(rej.Payload) == 0 {
		rej.Payload = nil
	}
	if err := rej.validate(); err != nil {
		return Rejection{}, fmt.Errorf("decode rejection: %w: %w", ErrCorrupt, err)
	}
	return rej, nil
}

func (r Rejection) validate() error {
	if len(r.Payload) > MaxRejectedPayload {
		return fmt.Errorf("%w: rejected payload kept is %d bytes (at most %d)", domain.ErrInvalid, len(r.Payload), MaxRejectedPayload)
	}
	if !slices.Contains(domain.RejectionCodes, r.Code) {
		return fmt.Errorf("%w: unknown rejection code %q", domain.ErrInvalid, r.Code)
	}
	if r.Client != "" {
		if err := r.Client.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(512)
	enc := msgpack.GetEncoder()
	defer msgpack.PutEncoder(enc)
	enc.Reset(&buf)
	enc.UseCompactInts(true)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("msgpack: %w", err)
	}
	return buf.Bytes(), nil
}

// peekSchema reads only the leading "schema" entry of an envelope, so that the full
// decode runs once, into the right struct. Canonical encoding always writes it first.
func peekSchema(dec *msgpack.Decoder, r *bytes.Reader) (int, error) {
	dec.Reset(r)
	n, err := dec.DecodeMapLen()
	if err != nil {
		return 0, fmt.Errorf("envelope is not a map: %w", err)
	}
	if n < 1 {
		return 0, fmt.Errorf("envelope map has %d entries", n)
	}
	key, err := dec.DecodeString()
	if err != nil {
		return 0, fmt.Errorf("envelope key: %w", err)
	}
	if key != "schema" {
		return 0, fmt.Errorf("envelope starts with %q, want \"schema\"", key)
	}
	v, err := dec.DecodeInt()
	if err != nil {
		return 0, fmt.Errorf("schema: %w", err)
	}
	return v, nil
}

// decodeStrict decodes all of b into v, refusing unknown fields and trailing bytes.
func decodeStrict(dec *msgpack.Decoder, r *bytes.Reader, b []byte, v any) (err error) {
	// msgpack v5.4.1 panics on some malformed input (e.g. nil where a time.Time is
	// expected: reflect.Value.IsNil on a struct). Bad bytes in the log are corruption to
	// report, never a reason to crash a replay.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("msgpack decoder panicked: %v", p)
		}
	}()
	r.Reset(b)
	dec.Reset(r)
	dec.DisallowUnknownFields(true)
	if err := dec.Decode(v); err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d trailing bytes after the envelope", r.Len())
	}
	return nil
}

// normalizeCommit gives decoded commits one in-memory form: UTC times and nil for empty
// slices, so that a decoded commit compares equal to the one encoded.
func normalizeCommit(c *Commit) {
	c.At = utc(c.At)
	c.State.LastRunAt = utc(c.State.LastRunAt)
	for i := range c.State.Enrollments {
		e := &c.State.Enrollments[i]
		e.EnrolledAt, e.LastSeen, e.EndedAt = utc(e.EnrolledAt), utc(e.LastSeen), utc(e.EndedAt)
		e.Ratios = nilIfEmpty(e.Ratios)
		e.TemporaryErrorDeadline = utc(e.TemporaryErrorDeadline)
		e.Preferences, e.Overridden = nilIfEmpty(e.Preferences), nilIfEmpty(e.Overridden)
	}
	for i := range c.Events {
		c.Events[i].Ratios = nilIfEmpty(c.Events[i].Ratios)
	}
	c.Events = nilIfEmpty(c.Events)
	c.Recent = nilIfEmpty(c.Recent)
	c.State.Enrollments = nilIfEmpty(c.State.Enrollments)
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func schemaList(vs []int) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.Itoa(v)
	}
	return strings.Join(parts, ", ")
}
