package audit_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/projections"
)

// BenchmarkDecode is the order-free part of an audit replay per message: sha256, the
// decode of a commit, whole (Decode: eventstore.DecodeCommit) or lean as an audit
// replay reads it (DecodeLean), and the verifier's checks of the commit alone.
func BenchmarkDecode(b *testing.B) {
	l := fleet(b)
	for _, d := range []struct {
		name   string
		decode func(audit.Entry) audit.Decoded
	}{{"whole", audit.Decode}, {"lean", audit.DecodeLean}} {
		b.Run(d.name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for i := range b.N {
				_ = d.decode(l.Entries[i%len(l.Entries)])
			}
		})
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
	defer reportCPU(b)()
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

// reportCPU adds the process's CPU time per op (cpu-ns/op, garbage collection
// included) to a single-goroutine benchmark's figures. Call the result after the loop.
func reportCPU(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, _ := processCPU()
		if ok && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkReplayVerify is an audit replay without the log's I/O: a simulated fleet's
// log (in memory) through ReplayDecoded (records decoded whole) or ReplayLean, on
// GOMAXPROCS workers, into the verifier and both folds. Figures are per message;
// cpu-ns/op is the process's, every worker's and the collector's included: what a
// replay adds to the raw read's CPU.
func BenchmarkReplayVerify(b *testing.B) {
	l := fleet(b)
	for _, p := range []struct {
		name   string
		replay func(context.Context, audit.Log, audit.Range, int, func(audit.Decoded) error) error
	}{{"decoded", audit.ReplayDecoded}, {"lean", audit.ReplayLean}} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			defer reportCPU(b)()
			for i := 0; i < b.N; i += len(l.Entries) {
				v := audit.NewVerifier(audit.VerifyOptions{Complete: true})
				u, s := projections.NewUptake(), projections.NewStudies()
				n := min(len(l.Entries), b.N-i)
				err := p.replay(context.Background(), sliceLog(l.Entries[:n]), audit.Range{}, 0, func(d audit.Decoded) error {
					if r, ok := v.AddDecoded(d); ok {
						u.Apply(r.Position, &r.Commit)
						s.Apply(r.Position, &r.Commit)
					}
					return nil
				})
				if rep := v.Finish(); err != nil || rep.Err() != nil {
					b.Fatal(err, rep.Err())
				}
			}
		})
	}
}
