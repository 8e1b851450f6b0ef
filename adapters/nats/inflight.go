package natsadapter

import (
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/micro"
)

// inFlight serves micro requests each on its own goroutine, at most n at once: a
// handler that waits (for an outcome, for the views to reach min_seq) never holds up
// the requests behind it. A request beyond n is answered 503 at once. wait blocks
// until every request in hand has been answered, for a drain.
type inFlight struct {
	slots chan struct{}
	wg    sync.WaitGroup
}

func newInFlight(n int) *inFlight { return &inFlight{slots: make(chan struct{}, n)} }

func (f *inFlight) serve(req micro.Request, handle func(micro.Request)) {
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

func (f *inFlight) wait() { f.wg.Wait() }
