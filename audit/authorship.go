package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// HeaderMAC is the message header in which studyd proves it wrote a commit or a
// rejection: "v1 <key id> <base64 HMAC-SHA256>". It is a header, not a field, so the
// stored bytes — and with them the hash chain and the running digest — are the same
// with or without it.
const HeaderMAC = "Studyd-Mac"

// ErrAuthorship: a message of the log does not carry a valid authentication code of
// the commit key, so studyd did not write it (or the key is another one).
var ErrAuthorship = errors.New("audit: not written by studyd")

// ErrCommitKey: a commit key file could not be read.
var ErrCommitKey = errors.New("audit: bad commit key")

// commitKeyBytes is the size of a generated key; shorter keys are refused.
const commitKeyBytes = 32

// commitKeyTag starts a commit key file, so that a file given by mistake (a PEM key, a
// credentials file) is named as the wrong file rather than used as a key.
const commitKeyTag = "studyd-commit-key-v1 "

// CommitKey is the secret studyd authenticates what it appends with (HMAC-SHA256).
// Whoever holds it can both write and check: it lives with studyd (a 0600 file in the
// embedded server's data directory, or --commit-key on a cluster) and with the
// operator who runs `studyctl verify`, never with publishers.
type CommitKey struct {
	key []byte
	id  string
}

// GenerateCommitKey returns a new key file's content.
func GenerateCommitKey(rand io.Reader) ([]byte, error) {
	k := make([]byte, commitKeyBytes)
	if _, err := io.ReadFull(rand, k); err != nil {
		return nil, fmt.Errorf("generate commit key: %w", err)
	}
	return []byte(commitKeyTag + hex.EncodeToString(k) + "\n"), nil
}

// ParseCommitKey reads a key file written by GenerateCommitKey.
func ParseCommitKey(b []byte) (*CommitKey, error) {
	s := strings.TrimSpace(string(b))
	if !strings.HasPrefix(s, commitKeyTag) {
		return nil, fmt.Errorf("%w: not a studyd commit key (it starts with %q)", ErrCommitKey, strings.TrimSpace(commitKeyTag))
	}
	k, err := hex.DecodeString(strings.TrimSpace(s[len(commitKeyTag):]))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCommitKey, err)
	}
	if len(k) < commitKeyBytes {
		return nil, fmt.Errorf("%w: %d bytes, want at least %d", ErrCommitKey, len(k), commitKeyBytes)
	}
	id := sha256.Sum256(append([]byte("studyd-commit-key-id\x00"), k...))
	return &CommitKey{key: k, id: hex.EncodeToString(id[:8])}, nil
}

// ID names the key without revealing it.
func (k *CommitKey) ID() string { return k.id }

// mac is HMAC-SHA256 over the subject and the stored bytes: a commit cannot be moved
// to another client's subject, nor its bytes changed, without the key.
func (k *CommitKey) mac(subject string, data []byte) []byte {
	h := hmac.New(sha256.New, k.key)
	_, _ = io.WriteString(h, "studyd-mac/v1\x00")
	_, _ = io.WriteString(h, subject)
	_, _ = h.Write([]byte{0})
	_, _ = h.Write(data)
	return h.Sum(nil)
}

// Sign returns the HeaderMAC value for a message studyd appends on subject.
func (k *CommitKey) Sign(subject string, data []byte) string {
	return "v1 " + k.id + " " + base64.RawStdEncoding.EncodeToString(k.mac(subject, data))
}

// Verify checks header (the message's HeaderMAC value) against subject and data. The
// error wraps ErrAuthorship and says what was wrong: no header, another key, or a code
// that does not match the message.
func (k *CommitKey) Verify(subject string, data []byte, header string) error {
	if header == "" {
		return fmt.Errorf("%w: no %s header", ErrAuthorship, HeaderMAC)
	}
	f := strings.Fields(header)
	if len(f) != 3 || f[0] != "v1" {
		return fmt.Errorf("%w: %s header %q is not \"v1 <key id> <mac>\"", ErrAuthorship, HeaderMAC, clipHeader(header))
	}
	if f[1] != k.id {
		return fmt.Errorf("%w: authenticated by key %s, not by this key %s", ErrAuthorship, clipHeader(f[1]), k.id)
	}
	got, err := base64.RawStdEncoding.DecodeString(f[2])
	if err != nil || !hmac.Equal(got, k.mac(subject, data)) {
		return fmt.Errorf("%w: the %s code does not match the message (forged, or edited after it was written)", ErrAuthorship, HeaderMAC)
	}
	return nil
}

func clipHeader(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
