package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ErrSignature: a checkpoint's signature does not verify, or a key could not be read.
var ErrSignature = errors.New("audit: bad checkpoint signature")

// Checkpoint is a signed statement of the events stream's content up to a sequence:
// Count messages through Seq have the running digest Digest (see LogDigest).
type Checkpoint struct {
	Stream    string    `json:"stream"`
	Seq       uint64    `json:"seq"`   // the last stream sequence covered
	Count     uint64    `json:"count"` // messages covered
	Digest    string    `json:"digest"`
	At        time.Time `json:"at"`     // when it was written (the writer's clock; informative)
	KeyID     string    `json:"key_id"` // KeyID of the signing key
	Signature string    `json:"signature"`
}

// signingBytes is what the signature covers: every field but the signature, in a
// fixed text form that does not depend on a JSON encoder.
func (c Checkpoint) signingBytes() []byte {
	return []byte("studyd-checkpoint/v1\n" + c.Stream + "\n" + strconv.FormatUint(c.Seq, 10) + "\n" +
		strconv.FormatUint(c.Count, 10) + "\n" + c.Digest + "\n" + c.At.UTC().Format(time.RFC3339Nano) + "\n" + c.KeyID + "\n")
}

// Sign returns c signed with key.
func (c Checkpoint) Sign(key ed25519.PrivateKey) Checkpoint {
	c.At = c.At.UTC()
	c.KeyID = KeyID(key.Public().(ed25519.PublicKey))
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.signingBytes()))
	return c
}

// VerifySignature checks c's signature with pub. The error wraps ErrSignature.
func (c Checkpoint) VerifySignature(pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil {
		return fmt.Errorf("%w: checkpoint at seq %d: signature is not base64: %w", ErrSignature, c.Seq, err)
	}
	if id := KeyID(pub); c.KeyID != id {
		return fmt.Errorf("%w: checkpoint at seq %d was signed by key %s, not %s", ErrSignature, c.Seq, c.KeyID, id)
	}
	if !ed25519.Verify(pub, c.signingBytes(), sig) {
		return fmt.Errorf("%w: checkpoint at seq %d: signature does not match its content", ErrSignature, c.Seq)
	}
	return nil
}

// KeyID names a public key: the first 16 hex digits of sha256 over it.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// GenerateKey returns a new key pair as PEM: PKCS #8 private key, PKIX public key (the
// forms openssl reads).
func GenerateKey(rand io.Reader) (private, public []byte, err error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	p8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	pk, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pk}), nil
}

// ParsePrivateKey reads an ed25519 private key in PEM (PKCS #8).
func ParsePrivateKey(b []byte) (ed25519.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: not a PEM \"PRIVATE KEY\" block", ErrSignature)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: private key is a %T, not ed25519", ErrSignature, k)
	}
	return priv, nil
}

// ErrPrivateKey: a private key was given where a public key belongs. A verifier must
// never need the signing key, and a private key passed around as a "public key" is a
// leaked one.
var ErrPrivateKey = errors.New("audit: a private key where a public key belongs")

// ParsePublicKey reads an ed25519 public key in PEM (PKIX). A private key is refused
// with ErrPrivateKey.
func ParsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrSignature)
	}
	if strings.Contains(blk.Type, "PRIVATE KEY") {
		return nil, fmt.Errorf("%w: the PEM block is %q; give the public key (the .pub file keygen wrote beside it)", ErrPrivateKey, blk.Type)
	}
	if blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%w: PEM block is %q, want \"PUBLIC KEY\"", ErrSignature, blk.Type)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%w: public key is a %T, not ed25519", ErrSignature, k)
	}
	return pub, nil
}
