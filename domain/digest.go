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
// (MaxEnrollmentsPerClient enrollments).
func (c ClientState) CheckLimits() error {
	if n := len(c.Enrollments); n > MaxEnrollmentsPerClient {
		return fmt.Errorf("%w: the client would hold %d enrollments (at most %d per client)", ErrTooLarge, n, MaxEnrollmentsPerClient)
	}
	return nil
}
