package eventlog_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/audit/audittest"
	"github.com/studyd/studyd/projections"
)

var (
	benchOnce sync.Once
	benchLog  *audittest.Log
	benchErr  error
)

// benchStream fills STUDYD_EVENTS on a fresh embedded server with a simulated
// fleet's log: 400 clients over 7 days, about 10k commits plus rejections.
func benchStream(b *testing.B) (jetstream.JetStream, int) {
	b.Helper()
	benchOnce.Do(func() { benchLog, benchErr = audittest.Fleet(400, 7, 5) })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	_, _, js := natstest.Start(b)
	ctx := context.Background()
	if _, err := eventlog.EnsureEventsStream(ctx, js, 1); err != nil {
		b.Fatal(err)
	}
	for i, e := range benchLog.Entries {
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: e.Subject, Data: e.Data}); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 4095 {
			<-js.PublishAsyncComplete()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishing the bench log timed out")
	}
	return js, len(benchLog.Entries)
}

// BenchmarkReplay compares, on the same stream in the same run, a raw ordered-consumer
// read with the full audit path: replay + decode + hash chain + legality check +
// running digest + both folds. Figures are messages (and events) per second.
func BenchmarkReplay(b *testing.B) {
	js, n := benchStream(b)
	ctx := context.Background()
	events := 0
	for _, e := range benchLog.Entries {
		if e.Kind() == audit.KindCommit {
			r, _ := e.Record()
			events += len(r.Commit.Events)
		}
	}
	report := func(b *testing.B, start time.Time) {
		secs := time.Since(start).Seconds()
		b.ReportMetric(float64(n*b.N)/secs, "msgs/s")
		b.ReportMetric(float64(events*b.N)/secs, "events/s")
	}
	bytes := 0
	for _, e := range benchLog.Entries {
		bytes += len(e.Data)
	}
	b.Logf("%d messages, %d events, %d bytes (%d per message)", n, events, bytes, bytes/n)
	for _, batch := range []int{256, 4096} {
		b.Run("raw-batch-"+strconv.Itoa(batch), func(b *testing.B) {
			start := time.Now()
			for range b.N {
				if err := eventlog.Replay(ctx, js, eventlog.ReplayOptions{Batch: batch}, func(audit.Entry) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			report(b, start)
		})
	}
	b.Run("raw", func(b *testing.B) {
		start := time.Now()
		for range b.N {
			got := 0
			if err := eventlog.Replay(ctx, js, eventlog.ReplayOptions{}, func(audit.Entry) error { got++; return nil }); err != nil {
				b.Fatal(err)
			}
			if got != n {
				b.Fatalf("replayed %d, want %d", got, n)
			}
		}
		report(b, start)
	})
	// The audit replays: sequential (Replay, each entry decoded whole on the reader's
	// goroutine, as Verifier.Add does), decoded whole on workers (ReplayDecoded), and
	// lean as an audit reads (ReplayLean).
	sequential := func(ctx context.Context, js jetstream.JetStream, o eventlog.ReplayOptions, _ int, fn func(audit.Decoded) error) error {
		return eventlog.Replay(ctx, js, o, func(e audit.Entry) error { return fn(audit.Decode(e)) })
	}
	for _, p := range []struct {
		name   string
		replay func(context.Context, jetstream.JetStream, eventlog.ReplayOptions, int, func(audit.Decoded) error) error
	}{{"verify+folds", sequential}, {"verify+folds-parallel-decode", eventlog.ReplayDecoded}, {"verify+folds-lean", eventlog.ReplayLean}} {
		b.Run(p.name, func(b *testing.B) {
			start := time.Now()
			for range b.N {
				v := audit.NewVerifier(audit.VerifyOptions{Complete: true})
				u, s := projections.NewUptake(), projections.NewStudies()
				err := p.replay(ctx, js, eventlog.ReplayOptions{}, 0, func(d audit.Decoded) error {
					if r, ok := v.AddDecoded(d); ok {
						u.Apply(r.Position, &r.Commit)
						s.Apply(r.Position, &r.Commit)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				if r := v.Finish(); r.Err() != nil || r.Messages != uint64(n) {
					b.Fatalf("verify: %v after %d messages, want none after %d", r.Err(), r.Messages, n)
				}
			}
			report(b, start)
		})
	}
}
