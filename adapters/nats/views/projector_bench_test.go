package views

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/eventstore"
)

// BenchmarkProjectorCatchUp measures how fast a projector folds a log that is already
// written, from an empty checkpoint to the last commit: decode, fold, coalesced KV
// flushes. Reported per commit, with commits/s.
func BenchmarkProjectorCatchUp(b *testing.B) {
	_, _, js := natstest.Start(b)
	ctx := context.Background()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		b.Fatalf("EnsureEventsStream: %v", err)
	}
	g := newLogGen(7)
	var last uint64
	for i := 0; i < b.N; i++ {
		c := g.commit()
		raw, err := eventstore.EncodeCommit(c)
		if err != nil {
			b.Fatalf("encode: %v", err)
		}
		f, err := js.PublishAsync("studyd.evt."+string(c.Client), raw)
		if err != nil {
			b.Fatalf("publish: %v", err)
		}
		_ = f
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatalf("publishes not acknowledged")
	}
	stream, err := js.Stream(ctx, eventlog.EventsStream)
	if err != nil {
		b.Fatalf("stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		b.Fatalf("stream info: %v", err)
	}
	last = info.State.LastSeq
	p := NewProjector(js, ProjectorConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	b.ResetTimer()
	start := time.Now()
	stop := runProjector(p)
	for p.Seq() < last {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "commits/s")
	_ = stop()
}
