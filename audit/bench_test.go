package audit_test

import (
	"crypto/rand"
	"testing"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/projections"
)

// BenchmarkDecode is the order-free part of an audit replay per message: sha256 and
// the full decode of a commit (eventstore.DecodeCommit).
func BenchmarkDecode(b *testing.B) {
	l := fleet(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_ = audit.Decode(l.Entries[i%len(l.Entries)])
	}
}

// BenchmarkDecodeLean is BenchmarkDecode with the lean decode an audit replay uses
// (audit.DecodeLean).
func BenchmarkDecodeLean(b *testing.B) {
	l := fleet(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		_ = audit.DecodeLean(l.Entries[i%len(l.Entries)])
	}
}

// BenchmarkVerifyDecoded is the ordered part per message: hash chain, legality,
// state continuity, running digest, and both folds, of lean records (as an audit
// replay reads them).
func BenchmarkVerifyDecoded(b *testing.B) {
	l := fleet(b)
	ds := make([]audit.Decoded, len(l.Entries))
	for i, e := range l.Entries {
		ds[i] = audit.DecodeLean(e)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; {
		v := audit.NewVerifier(audit.VerifyOptions{Complete: true})
		u, s := projections.NewUptake(), projections.NewStudies()
		for _, d := range ds {
			if r, ok := v.AddDecoded(d); ok {
				u.Apply(r.Position, &r.Commit)
				s.Apply(r.Position, &r.Commit)
			}
			if i++; i == b.N {
				break
			}
		}
	}
}

// BenchmarkCommitKeySign is what authenticating one commit costs studyd (HMAC-SHA256
// over the subject and the bytes, a typical commit of ~1 KiB).
func BenchmarkCommitKeySign(b *testing.B) {
	raw, err := audit.GenerateCommitKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	k, err := audit.ParseCommitKey(raw)
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 1024)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		_ = k.Sign("studyd.evt.6a5c0f4e-2b43-4a8e-9d57-1f0e3c2b7a91", data)
	}
}
