package views

import (
	"context"
	"fmt"
	"testing"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/adapters/nats/natstest"
)

// BenchmarkViewKeyRead compares the two ways of reading a view key: the direct get
// readers use and the leader's message get the projector bases its writes on (on an
// embedded single server, where both answer from the same store).
func BenchmarkViewKeyRead(b *testing.B) {
	_, _, js := natstest.Start(b)
	p := NewProjector(js, ProjectorConfig{})
	ctx := context.Background()
	mustOpen(b, p)
	const keys = 1000
	for i := range keys {
		if _, err := p.uptake.Put(ctx, fmt.Sprintf("k%d", i), []byte(`{"count":1,"seq":1}`)); err != nil {
			b.Fatal(err)
		}
	}
	for _, read := range []struct {
		name string
		get  client.EntryGetter
	}{{"direct", client.NearestEntry}, {"leader", p.leaderEntry}} {
		b.Run(read.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := read.get(ctx, p.uptake, fmt.Sprintf("k%d", i%keys)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
