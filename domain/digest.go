package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Digest identifies the command's content: the same command sent again — as JSON or
// msgpack, in any field order — has the same digest; a command whose id is reused for
// another content has another. It is 32 hex digits of sha256 over the command's
// canonical JSON, with its time in UTC.
func (c Command) Digest() string {
	c.At = c.At.UTC()
	b, err := json.Marshal(c)
	if err != nil {
		// Only a time RFC 3339 cannot write, which Validate refuses first.
		b = []byte(c.CommandID + "\x00" + c.At.String())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// CheckLimits returns ErrTooLarge if the state holds more than a client may
// (MaxEnrollmentsPerClient enrollments, MaxStateBytes in all).
func (c ClientState) CheckLimits() error {
	if n := len(c.Enrollments); n > MaxEnrollmentsPerClient {
		return fmt.Errorf("%w: the client would hold %d enrollments (at most %d per client)", ErrTooLarge, n, MaxEnrollmentsPerClient)
	}
	if n := c.StateBytes(); n > MaxStateBytes {
		return fmt.Errorf("%w: the client's enrollments would hold %d bytes (at most %d per client; every commit carries them)",
			ErrTooLarge, n, MaxStateBytes)
	}
	return nil
}

// StateBytes is about what the state's enrollments take in a commit: their text and
// values, and a fixed amount for each one's times, numbers and field names.
func (c ClientState) StateBytes() int {
	const perEnrollment = 160
	n := 0
	for _, e := range c.Enrollments {
		n += perEnrollment + len(e.Key) + len(e.Slug) + len(e.Action) + len(e.EnrollmentID) + len(e.Branch) +
			len(e.Preference) + len(e.AddonID) + len(e.AddonVersion) + len(e.Reason) + len(e.PreferenceType) +
			len(e.PreferenceBranchType) + len(e.BranchValue)
		for _, r := range e.Ratios {
			n += 8 + len(r.Slug)
		}
		for _, p := range e.Preferences {
			n += 2 + len(p)
		}
		for _, p := range e.Overridden {
			n += 2 + len(p)
		}
	}
	return n
}
