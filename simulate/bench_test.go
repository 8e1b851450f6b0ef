package simulate_test

import (
	"testing"

	"github.com/studyd/studyd/simulate"
)

// BenchmarkFleet measures generation, including deciding each command: the ceiling of
// studyctl simulate as a load generator.
func BenchmarkFleet(b *testing.B) {
	f, err := simulate.New(simulate.Config{Clients: 10_000, Days: 365, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := f.Next(); !ok {
			b.Fatalf("fleet ended early: %v", f.Err())
		}
	}
}
