package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// LogDigest is a running digest over every message of the events stream in sequence
// order — commits, rejections, anything else stored there:
//
//	d₀ = 32 zero bytes
//	dₙ = sha256(dₙ₋₁ ‖ seq as 8 bytes big-endian ‖ subject ‖ 0x00 ‖ sha256(data))
//
// A checkpoint signs (Seq, Count, d) so that an edited, removed, reordered or inserted
// message anywhere before it changes the digest a verifier recomputes — including a
// client's latest commit, which no later commit's PrevHash vouches for yet. Sequences
// are part of it because a copy of the log renumbered around a removed message must
// not verify. The zero value is the digest of an empty log.
type LogDigest struct {
	Seq   uint64 // the last sequence added
	Count uint64 // messages added
	sum   [32]byte
	buf   []byte
}

// ResumeDigest continues the digest a checkpoint recorded, so that the next
// checkpoint only reads what was appended since.
func ResumeDigest(c Checkpoint) (*LogDigest, error) {
	b, err := hex.DecodeString(c.Digest)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("resume digest of checkpoint at seq %d: digest %q is not 64 hex digits", c.Seq, c.Digest)
	}
	d := &LogDigest{Seq: c.Seq, Count: c.Count}
	copy(d.sum[:], b)
	return d, nil
}

// Add folds the message at seq into the digest; dataSum is the sha256 of its bytes.
func (d *LogDigest) Add(seq uint64, subject string, dataSum [32]byte) {
	d.buf = append(d.buf[:0], d.sum[:]...)
	d.buf = binary.BigEndian.AppendUint64(d.buf, seq)
	d.buf = append(d.buf, subject...)
	d.buf = append(d.buf, 0)
	d.buf = append(d.buf, dataSum[:]...)
	d.sum = sha256.Sum256(d.buf)
	d.Seq = seq
	d.Count++
}

// AddEntry is Add for a replayed entry.
func (d *LogDigest) AddEntry(e Entry) { d.Add(e.Seq, e.Subject, sum(e.Data)) }

// Hex is the digest so far.
func (d *LogDigest) Hex() string { return hex.EncodeToString(d.sum[:]) }
