// Package inflight serves micro requests concurrently, a bounded number at once.
package inflight

import (
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/micro"
)

// Limiter serves micro requests each on its own goroutine, at most n at once: a
// handler that waits (for an outcome, for the views to reach min_seq) never holds up
// the requests behind it. A request beyond n is answered 503 at once. Wait blocks
// until every request in hand has been answered, for a drain.
type Limiter struct {
	slots chan struct{}
	wg    sync.WaitGroup
}

// New returns a Limiter serving at most n requests at once.
func New(n int) *Limiter { return &Limiter{slots: make(chan struct{}, n)} }

// Serve runs handle(req) on its own goroutine, or answers 503 if n are in hand.
func (f *Limiter) Serve(req micro.Request, handle func(micro.Request)) {
	select {
	case f.slots <- struct{}{}:
	default:
		_ = req.Error("503", "busy: "+strconv.Itoa(cap(f.slots))+" requests in flight; retry shortly", nil)
		return
	}
	f.wg.Go(func() {
		defer func() { <-f.slots }()
		handle(req)
	})
}

// Wait blocks until every request in hand has been handled.
func (f *Limiter) Wait() { f.wg.Wait() }
