package domain

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// ErrInvalid is wrapped by every validation error in this package.
var ErrInvalid = errors.New("domain: invalid")

// MaxTokenLen bounds client ids, slugs and action names: they become NATS subject tokens
// and KV keys, and an id longer than this is a mistake, not a client.
const MaxTokenLen = 128

// ValidateToken checks that v can stand as one NATS subject token and one KV key token:
// 1..128 characters of A-Z a-z 0-9 _ -. A dot, space, '*' or '>' would silently change
// which subjects match, so such a value is an error, never escaped.
func ValidateToken(field, v string) error {
	if v == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, field)
	}
	if len(v) > MaxTokenLen {
		return fmt.Errorf("%w: %s is %d bytes long (at most %d)", ErrInvalid, field, len(v), MaxTokenLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %s %q has %q at byte %d (allowed: A-Z a-z 0-9 _ -)", ErrInvalid, field, v, c, i)
		}
	}
	return nil
}

// ValidateCommandID checks a command id before anything is built from it: 1 to
// MaxCommandIDLen bytes of printable UTF-8. It goes into message headers (at most 64 KiB
// in all) and idempotency keys, so a longer one could make the command's own refusal
// unrecordable, and invalid UTF-8 or control characters would let distinct ids collapse
// into one when decoded.
func ValidateCommandID(id string) error {
	switch {
	case id == "":
		return fmt.Errorf("%w: command_id is empty (a unique id per command is required)", ErrInvalid)
	case len(id) > MaxCommandIDLen:
		return fmt.Errorf("%w: command_id is %d bytes long (at most %d)", ErrInvalid, len(id), MaxCommandIDLen)
	case !utf8.ValidString(id):
		return fmt.Errorf("%w: command_id is not valid UTF-8", ErrInvalid)
	}
	for i, r := range id {
		if r == utf8.RuneError { // what a JSON decoder makes of bytes that are not UTF-8
			return fmt.Errorf("%w: command_id is not valid UTF-8 (U+FFFD at byte %d)", ErrInvalid, i)
		}
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: command_id has the non-printable character %U at byte %d", ErrInvalid, r, i)
		}
	}
	return nil
}

// ClientID identifies one Firefox profile: the aggregate, and also the Normandy user id
// that branch sampling hashes.
type ClientID string

// Validate checks that c is a usable subject token.
func (c ClientID) Validate() error { return ValidateToken("client_id", string(c)) }

// RecipeID is a Normandy recipe id: the key of an add-on study and of a recipe's uptake.
type RecipeID uint64

// String is the decimal form used in source keys and study keys.
func (r RecipeID) String() string { return strconv.FormatUint(uint64(r), 10) }

// StudyRef names one study: its kind and its key as Firefox keys it (the slug of a
// preference study, the recipe id of an add-on study).
type StudyRef struct {
	Object Object `msgpack:"object" json:"object"`
	Key    string `msgpack:"key" json:"key"`
}

// String renders the reference as "<object>/<key>".
func (s StudyRef) String() string { return string(s.Object) + "/" + s.Key }

// Validate checks the object and that the key is a subject token (and, for an add-on
// study, a decimal recipe id).
func (s StudyRef) Validate() error {
	if _, err := ParseObject(string(s.Object)); err != nil {
		return err
	}
	if err := ValidateToken("study key", s.Key); err != nil {
		return err
	}
	if s.Object == AddonStudy {
		if _, err := strconv.ParseUint(s.Key, 10, 64); err != nil {
			return fmt.Errorf("%w: add-on study key %q is not a recipe id (add-on studies are keyed by recipe id)", ErrInvalid, s.Key)
		}
	}
	return nil
}

// EnrollmentID returns the enrollmentId of an enrollment begun by command commandID. It
// is derived, not random, so that deciding stays pure and a replay yields the same id;
// it is shaped as an RFC 9562 version-8 UUID.
func EnrollmentID(client ClientID, study StudyRef, commandID string) string {
	h := sha256.Sum256([]byte(string(client) + "\x00" + study.String() + "\x00" + commandID))
	h[6] = h[6]&0x0f | 0x80 // version 8
	h[8] = h[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
