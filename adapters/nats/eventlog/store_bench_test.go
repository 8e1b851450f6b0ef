package eventlog_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/eventlog"
	"github.com/studyd/studyd/adapters/nats/natstest"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// benchStudies sizes the benchmark commits: a client in a handful of studies.
const benchStudies = 3

func benchStore(b *testing.B, opts ...eventlog.StoreOption) (*eventlog.Store, jetstream.JetStream) {
	b.Helper()
	_, _, js := natstest.Start(b)
	if _, err := eventlog.EnsureEventsStream(b.Context(), js, 1); err != nil {
		b.Fatal(err)
	}
	return eventlog.NewStore(js, opts...), js
}

// latencies collects per-operation durations and reports their percentiles.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	pct := func(p float64) float64 {
		return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds())
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkAppend measures the hot path with a warm client cache: the expected position
// is known, so a command costs one publish. "serial" appends one at a time; "writers-N"
// has N goroutines, each with its own clients, appending concurrently.
// BenchmarkAppend is one append per operation; the -authenticated variants append with
// a commit key (HMAC-SHA256 header, as studyd does by default), so that the pair prices it.
func BenchmarkAppend(b *testing.B) {
	key := testCommitKey(b)
	for _, writers := range []int{1, 8, 32} {
		for _, auth := range []bool{false, true} {
			name := "serial"
			if writers > 1 {
				name = "writers-" + strconv.Itoa(writers)
			}
			var opts []eventlog.StoreOption
			if auth {
				name += "-authenticated"
				opts = append(opts, eventlog.WithCommitKey(key))
			}
			b.Run(name, func(b *testing.B) {
				s, _ := benchStore(b, opts...)
				var lat latencies
				var next atomic.Int64
				var wg sync.WaitGroup
				errs := make(chan error, writers)
				b.ResetTimer()
				start := time.Now()
				for w := range writers {
					wg.Go(func() {
						last := map[domain.ClientID]eventstore.Record{}
						for {
							i := next.Add(1) - 1
							if i >= int64(b.N) {
								return
							}
							client := domain.ClientID(fmt.Sprintf("w%d-c%d", w, i%64))
							prev := last[client]
							c := crashCommit(client, prev, "cmd-"+strconv.FormatInt(i, 10), benchStudies)
							t0 := time.Now()
							r, err := s.Append(b.Context(), c, prev.Position)
							lat.add(time.Since(t0))
							if err != nil {
								errs <- err
								return
							}
							last[client] = r
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commits/s")
				lat.report(b)
			})
		}
	}
}

// BenchmarkLoad measures loading a random client (one direct get of its last commit and
// its decode) from a log of many clients with several commits each; /latest, the same
// with LoadLatest (a message get the stream leader answers), what a refusal and a
// redelivery pay.
func BenchmarkLoad(b *testing.B) {
	const clients, perClient = 2000, 3
	s, _ := benchStore(b)
	for i := range clients {
		client := domain.ClientID("c" + strconv.Itoa(i))
		var prev eventstore.Record
		for j := range perClient {
			r, err := s.Append(b.Context(), crashCommit(client, prev, fmt.Sprintf("cmd-%d", j), benchStudies), prev.Position)
			if err != nil {
				b.Fatal(err)
			}
			prev = r
		}
	}
	for _, way := range []struct {
		name string
		load func(context.Context, domain.ClientID) (eventstore.Record, error)
	}{{"direct", s.Load}, {"latest", s.LoadLatest}} {
		b.Run(way.name, func(b *testing.B) {
			var lat latencies
			for b.Loop() {
				client := domain.ClientID("c" + strconv.Itoa(rand.IntN(clients)))
				t0 := time.Now()
				r, err := way.load(b.Context(), client)
				lat.add(time.Since(t0))
				if err != nil || r.Position == 0 {
					b.Fatalf("%s(%s): %v (position %d)", way.name, client, err, r.Position)
				}
			}
			b.StopTimer()
			lat.report(b)
		})
	}
}

// BenchmarkRawAsyncPublish is the ceiling: js.PublishAsync of payloads the size of a
// benchmark commit, without concurrency checks, ids or encoding, on the same stream
// configuration. Append's commits/s divided by this msgs/s is the price of the store.
func BenchmarkRawAsyncPublish(b *testing.B) {
	_, js := benchStore(b)
	payload, err := eventstore.EncodeCommit(crashCommit("c1", eventstore.Record{}, "cmd-1", benchStudies))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if _, err := js.PublishAsync("studyd.evt.c"+strconv.Itoa(i%4096), payload); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("async publishes not acknowledged within a minute")
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
}
