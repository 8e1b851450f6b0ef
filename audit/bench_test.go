package audit_test

import (
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

// BenchmarkVerifyDecoded is the ordered part per message: hash chain, legality,
// state continuity, running digest, and both folds.
func BenchmarkVerifyDecoded(b *testing.B) {
	l := fleet(b)
	ds := make([]audit.Decoded, len(l.Entries))
	for i, e := range l.Entries {
		ds[i] = audit.Decode(e)
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
