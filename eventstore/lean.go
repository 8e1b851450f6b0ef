package eventstore

import (
	"fmt"

	"github.com/studyd/studyd/domain"
)

// DecodeCommitLean is DecodeCommit for a reader that only checks and folds the log (an
// audit replay): it accepts exactly the bytes DecodeCommit accepts, failing with the
// same error, and returns DecodeCommit's commit less what such a reader never looks at
// (Commit.Lean). Most of a commit's bytes are its client's state and recent command
// ids, which the verifier reads only as each enrollment's study and state; skipping
// them rather than making their strings and lists saves about half of a commit's
// allocations.
//
// Agreement with DecodeCommit holds by construction: a lean read performs the same
// reads in the same order as the reflection-free decoder (only not keeping what it
// skips), so it takes exactly the bytes that decoder takes; Validate reads only fields
// a lean commit keeps; anything else goes through DecodeCommit itself.
// FuzzDecodeLean holds the two together.
func DecodeCommitLean(b []byte) (Commit, error) { return DecodeCommitLeanIn(nil, b) }

// DecodeCommitLeanIn is DecodeCommitLean with the commit's events and enrollments
// carved from a (nil: allocated), so that a replay reuses their memory rather than
// making and collecting several kilobytes a commit (and makes each recurring string
// once): the events and enrollments are valid until a.Reset.
func DecodeCommitLeanIn(a *Arena, b []byte) (Commit, error) {
	c, ok := decodeCommitWith(&reader{b: b, lean: true, arena: a})
	if !ok {
		full, err := DecodeCommit(b)
		if err != nil {
			return Commit{}, err
		}
		return full.Lean(), nil
	}
	normalizeCommit(&c)
	if err := c.Validate(); err != nil {
		return Commit{}, fmt.Errorf("decode commit: %w: %w", ErrCorrupt, err)
	}
	return c, nil
}

// DecodeRecordLean is DecodeRecord through DecodeCommitLeanIn.
func DecodeRecordLean(a *Arena, pos uint64, data []byte) (Record, error) {
	c, err := DecodeCommitLeanIn(a, data)
	if err != nil {
		return Record{}, err
	}
	return Record{Position: pos, Commit: c, Hash: Hash(data)}, nil
}

// Arena is memory for the events and enrollments of lean decodes
// (DecodeCommitLeanIn), reused after Reset. The zero value is ready; it is not safe
// for concurrent use.
type Arena struct {
	events      []domain.Event
	enrollments []domain.Enrollment
	// strs are strings made by earlier decodes (study keys, slugs, sources, branches,
	// actions recur across a log's commits), kept across Reset: strings are immutable,
	// so sharing them is safe, and a replay then makes each only once per arena.
	strs     map[string]string
	strBytes int // the bytes of strs' strings
}

// Bounds of an arena's strings: none longer than arenaStringLen (recipe arguments
// recur, larger values are rare), and arenaStringBytes in all, so that unique ids
// (enrollment ids, command ids) fill it once and then pass through.
const (
	arenaStringLen   = 2048
	arenaStringBytes = 256 << 10
)

// intern returns p as a string: one a is keeping, or a new one it keeps if there is
// room (a nil: always new).
func (a *Arena) intern(p []byte) string {
	if a == nil || len(p) > arenaStringLen {
		return string(p)
	}
	if s, ok := a.strs[string(p)]; ok {
		return s
	}
	s := string(p)
	if a.strs == nil {
		a.strs = make(map[string]string)
	}
	if a.strBytes+len(s) <= arenaStringBytes {
		a.strs[s] = s
		a.strBytes += len(s)
	}
	return s
}

// Reset makes the arena's memory available again. Every commit decoded into it before
// must no longer be used: its events and enrollments will be overwritten.
func (a *Arena) Reset() {
	a.events, a.enrollments = a.events[:0], a.enrollments[:0]
}

// eventsFor returns n zero events from a, or newly made ones if a is nil.
func (a *Arena) eventsFor(n int) []domain.Event {
	if a == nil {
		return make([]domain.Event, n)
	}
	return carve(&a.events, n)
}

// enrollmentsFor returns n zero enrollments from a, or newly made ones if a is nil.
func (a *Arena) enrollmentsFor(n int) []domain.Enrollment {
	if a == nil {
		return make([]domain.Enrollment, n)
	}
	return carve(&a.enrollments, n)
}

// carve returns the next n elements of *slab, zeroed, growing it into a new array when
// it is full (the old one stays with the commits already carved from it). n is
// bounded by the bytes of the commit being read, as the reader bounds every count.
func carve[T any](slab *[]T, n int) []T {
	s := *slab
	if cap(s)-len(s) < n {
		s = make([]T, 0, max(2*cap(s), n, 256))
	}
	out := s[len(s) : len(s)+n : len(s)+n]
	clear(out)
	*slab = s[:len(s)+n]
	return out
}

// Lean returns c without what a lean decode (DecodeCommitLean) skips: CommitID,
// CorrelationID, CommandDigest and Recent, and of each enrollment its slug, enrollment
// id, branch, experiment type, preference, add-on id and version, reason, preference
// types, branch value, ratios, preferences and overridden preferences. What is left is
// the envelope, every event whole, and of the state the client, studies_disabled,
// last_run_at and each enrollment's object, key, state, action, times and failures:
// everything the audit verifier and the projections' folds read. The enrollments are a
// new slice; c is not changed.
func (c Commit) Lean() Commit {
	c.CommitID, c.CorrelationID, c.CommandDigest, c.Recent = "", "", "", nil
	if c.State.Enrollments != nil {
		ens := make([]domain.Enrollment, len(c.State.Enrollments))
		for i, e := range c.State.Enrollments {
			ens[i] = domain.Enrollment{Object: e.Object, Key: e.Key, State: e.State, Action: e.Action,
				EnrolledAt: e.EnrolledAt, LastSeen: e.LastSeen, EndedAt: e.EndedAt, Failures: e.Failures,
				TemporaryErrorDeadline: e.TemporaryErrorDeadline}
		}
		c.State.Enrollments = ens
	}
	return c
}
