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
// them rather than making their strings and lists is most of what a replay saves.
//
// Agreement with DecodeCommit holds by construction: a lean read performs the same
// reads in the same order as the reflection-free decoder (only not keeping what it
// skips), so it takes exactly the bytes that decoder takes; Validate reads only fields
// a lean commit keeps; anything else goes through DecodeCommit itself.
// FuzzDecodeLean holds the two together.
func DecodeCommitLean(b []byte) (Commit, error) {
	c, ok := decodeCommitWith(&reader{b: b, lean: true})
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

// DecodeRecordLean is DecodeRecord through DecodeCommitLean.
func DecodeRecordLean(pos uint64, data []byte) (Record, error) {
	c, err := DecodeCommitLean(data)
	if err != nil {
		return Record{}, err
	}
	return Record{Position: pos, Commit: c, Hash: Hash(data)}, nil
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
