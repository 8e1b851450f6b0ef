package intake

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
)

// retryPause is how long a command that failed transiently waits before its next try.
const retryPause = 250 * time.Millisecond

// partition is one partition's worker: its consumer and what it knows of its pin.
type partition struct {
	n    int
	cons jetstream.Consumer
	pin  string // the pin id of the last delivery (the worker's own)
	// delivered is the consumer sequence of the last delivery: every delivery,
	// redeliveries too, takes the next one, so a gap is a delivery that never arrived.
	delivered uint64
	fence     fence
	// owner is the pin id this instance holds the partition by ("" when it does not),
	// for the balancer; yieldUntil (Unix ns) stops the puller, to hand the partition on.
	owner      atomic.Value
	yieldUntil atomic.Int64
	// pulling is true while the puller's request is open on the server, where it is one
	// of the consumer's waiting requests: the balancer counts instances by them.
	pulling atomic.Bool
	// held maps a client to its commands that were put back undecided, and when (or
	// when last found still queued). Only the oldest of them may be decided next: the
	// others, and any newer command of the client, are put back until it is settled,
	// however the server orders their redeliveries. An entry is forgotten when its
	// command is settled here, or, checked once it is older than twice AckWait, when
	// the stream no longer holds it (another instance settled it). Time alone does not
	// do: while a consumer leader is away, a put-back command can stay away longer, and
	// its client's newer command, come back first, would overtake it.
	held map[domain.ClientID]map[uint64]time.Time
}

// item is one command message in hand.
type item struct {
	msg    jetstream.Msg
	seq    uint64
	client domain.ClientID // the one its subject names
	start  time.Time
	// redelivered: the stream delivered it before, so it may have been applied
	// (app.Source.Redelivered).
	redelivered bool
}

// work applies partition n's commands until ctx is done, then finishes those in hand.
// One goroutine pulls while this one decides: the pull requests keep coming while a
// group is decided and appended, however long that takes, so the server keeps the
// partition pinned here (a pinned consumer passes to another instance after pinnedTTL
// without a request).
func (in *Intake) work(ctx context.Context, p *partition) {
	// At most Window commands are delivered and unacknowledged at once (MaxAckPending),
	// so the puller never waits on this channel for long.
	msgs := make(chan jetstream.Msg, in.cfg.Window)
	go in.pull(ctx, p, msgs)
	for group := groupOf(msgs, in.cfg.Window); len(group) > 0; group = groupOf(msgs, in.cfg.Window) {
		in.settleGroup(ctx, p, group)
	}
}

// newPartition is partition n's worker state.
func newPartition(n int, cons jetstream.Consumer) *partition {
	p := &partition{n: n, cons: cons, held: make(map[domain.ClientID]map[uint64]time.Time)}
	p.owner.Store("")
	return p
}

// pull sends partition p's deliveries to out until ctx is done, then closes it.
//
// Each pull is a fresh request for up to Window commands that expires after
// pullExpiryFor, so nothing can wedge a partition: at worst a request ends empty and the
// next is sent. While the balancer has it yield, it sends none.
func (in *Intake) pull(ctx context.Context, p *partition, out chan<- jetstream.Msg) {
	defer close(out)
	n, cons := p.n, p.cons
	for ctx.Err() == nil {
		if d := time.Until(time.Unix(0, p.yieldUntil.Load())); d > 0 {
			pause(ctx, d)
			continue
		}
		p.pulling.Store(true)
		batch, err := cons.Fetch(in.cfg.Window, jetstream.FetchMaxWait(pullExpiryFor()), jetstream.FetchPriorityGroup(PriorityGroup))
		if err != nil {
			p.pulling.Store(false)
			// E.g. no leader while the cluster elects one: pause so that a persistent
			// error does not spin.
			in.cfg.Logger.Warn("intake: fetch", "partition", n, "err", err)
			pause(ctx, 100*time.Millisecond)
			continue
		}
		for msg := range batch.Messages() {
			out <- msg
		}
		p.pulling.Store(false)
		switch err := batch.Error(); {
		case err == nil, errors.Is(err, nats.ErrTimeout), ctx.Err() != nil:
		case errors.Is(err, jetstream.ErrPinIDMismatch):
			// Another instance holds the partition (this one was gone past pinnedTTL, or
			// yielded it): the next request waits its turn.
			p.owner.Store("")
			in.cfg.Logger.Info("intake: partition pinned to another instance", "partition", n)
		default:
			in.cfg.Logger.Warn("intake: fetch", "partition", n, "err", err)
			pause(ctx, 100*time.Millisecond)
		}
	}
}

// groupOf waits for the next value of ch, then takes those that have arrived behind
// it, up to max. It returns nothing once ch is closed.
func groupOf[T any](ch <-chan T, max int) []T {
	first, ok := <-ch
	if !ok {
		return nil
	}
	group := []T{first}
	for len(group) < max {
		select {
		case m, ok := <-ch:
			if !ok {
				return group
			}
			group = append(group, m)
		default:
			return group
		}
	}
	return group
}

// settleGroup decides and settles a group of partition p's commands, in waves: a wave
// takes the first unsettled command of each client, so a client's commands are
// decided in order, one wave after another, while distinct clients' commands are
// appended together. A client one of whose commands cannot be settled now (held by
// the fence, or failing until shutdown) has its later commands put back too.
func (in *Intake) settleGroup(ctx context.Context, p *partition, msgs []jetstream.Msg) {
	apply := context.WithoutCancel(ctx) // a command in hand is finished even during shutdown
	start := time.Now()
	items := make([]item, 0, len(msgs))
	lost := false
	for _, msg := range msgs {
		meta, err := msg.Metadata()
		if err != nil {
			in.cfg.Logger.Error("intake: message without metadata", "subject", msg.Subject(), "err", err)
			_ = msg.Term()
			continue
		}
		lost = lost || p.delivered != 0 && meta.Sequence.Consumer != p.delivered+1
		p.delivered = meta.Sequence.Consumer
		items = append(items, item{msg: msg, seq: meta.Sequence.Stream, client: subjectClient(msg), start: start,
			redelivered: meta.NumDelivered > 1})
	}
	// Redeliveries can come back in another order than the commands were published.
	slices.SortFunc(items, func(a, b item) int { return cmp.Compare(a.seq, b.seq) })
	in.observePin(apply, p, items, lost)
	queued := in.stillQueued(apply)
	for len(items) > 0 {
		var wave, later []item
		inWave := make(map[domain.ClientID]bool)
		for _, it := range items {
			switch oldest, ok := p.oldestHeld(it.client, 2*in.cfg.AckWait, queued); {
			case ok && it.seq > oldest:
				p.hold(it)
				in.putBack(it)
			case inWave[it.client]:
				later = append(later, it)
			case in.fenced(apply, p, it):
				p.hold(it)
				in.putBack(it)
			default:
				inWave[it.client] = true
				wave = append(wave, it)
			}
		}
		for _, it := range in.settleWave(ctx, p, wave) {
			p.hold(it)
		}
		items = later
	}
}

// hold notes that it was put back: its client's later commands wait for it.
func (p *partition) hold(it item) {
	if p.held[it.client] == nil {
		p.held[it.client] = make(map[uint64]time.Time)
	}
	p.held[it.client][it.seq] = time.Now()
}

// oldestHeld is the oldest of client's commands put back and not known to be settled,
// if any. An entry older than recheck is looked up with queued (is its command still in
// the stream?): forgotten if not, held for another recheck if so.
func (p *partition) oldestHeld(client domain.ClientID, recheck time.Duration, queued func(seq uint64) bool) (uint64, bool) {
	var oldest uint64
	for seq, since := range p.held[client] {
		if time.Since(since) >= recheck {
			if !queued(seq) {
				delete(p.held[client], seq)
				continue
			}
			p.held[client][seq] = time.Now()
		}
		if oldest == 0 || seq < oldest {
			oldest = seq
		}
	}
	if oldest == 0 {
		delete(p.held, client)
	}
	return oldest, oldest != 0
}

// stillQueued returns a lookup of whether STUDYD_CMDS still holds the command at a
// sequence: the work queue keeps a command until it is acknowledged, here or by
// another instance. When the stream cannot tell (a fault), the answer is yes: holding
// a client's commands a while longer is safe, deciding them out of order is not.
func (in *Intake) stillQueued(ctx context.Context) func(seq uint64) bool {
	return func(seq uint64) bool {
		ctx, cancel := context.WithTimeout(ctx, queuedTimeout)
		defer cancel()
		_, err := in.stream.GetMsg(ctx, seq)
		return !errors.Is(err, jetstream.ErrMsgNotFound)
	}
}

// queuedTimeout bounds one stillQueued lookup (the decider waits for it).
const queuedTimeout = time.Second

// release forgets a settled command of its client's held ones.
func (p *partition) release(it item) {
	if h := p.held[it.client]; h != nil {
		delete(h, it.seq)
		if len(h) == 0 {
			delete(p.held, it.client)
		}
	}
}

// settleWave decides and settles commands of distinct clients together, and returns
// those it could not settle (they failed until shutdown and were put back).
func (in *Intake) settleWave(ctx context.Context, p *partition, wave []item) (unsettled []item) {
	apply := context.WithoutCancel(ctx)
	incs := make([]app.Incoming, len(wave))
	cmds := make([]domain.Command, len(wave))
	errs := make([]error, len(wave))
	var reqs []app.Request
	var which []int // reqs[k] is wave[which[k]]
	for i, it := range wave {
		incs[i], cmds[i], errs[i] = in.admit(it.msg, it.seq)
		if errs[i] == nil {
			reqs = append(reqs, app.Request{Cmd: cmds[i], Src: in.source(it)})
			which = append(which, i)
		}
	}
	results := make([]app.Result, len(wave))
	for k, r := range in.handler.HandleBatch(apply, reqs) {
		results[which[k]], errs[which[k]] = r.Result, r.Err
	}
	for i, it := range wave {
		out, err := in.conclude(apply, incs[i], cmds[i], results[i], errs[i])
		if err != nil {
			var ok bool
			if out, ok = in.retry(ctx, p, it, err); !ok {
				unsettled = append(unsettled, it)
				continue
			}
		}
		in.settled(p, it, out)
	}
	return unsettled
}

// retry applies a command that failed transiently again, in place, until it is
// settled — or, once it has failed the same way PoisonAfter times in a row, parks it so
// that the partition moves on. The partition waits meanwhile, as a client's later
// commands must. If ctx ends first the command is put back (ok false).
func (in *Intake) retry(ctx context.Context, p *partition, it item, err error) (out client.Outcome, ok bool) {
	apply := context.WithoutCancel(ctx)
	h := in.heads[p.n]
	for {
		failures := h.failed(it.seq, err)
		h.gauge.Set(float64(failures))
		if in.poisoned(failures, err) {
			if out, err = in.park(apply, it.msg, it.seq, failures, err); err == nil {
				return out, true
			}
		}
		in.cfg.Metrics.transient.Inc()
		in.cfg.Logger.Warn("intake: will retry", "subject", it.msg.Subject(), "seq", it.seq, "err", err)
		pause(ctx, retryPause)
		if ctx.Err() != nil {
			_ = it.msg.Nak()
			return client.Outcome{}, false
		}
		_ = it.msg.InProgress() // still ours: no redelivery while it is retried
		if out, err = in.apply(apply, it); err == nil {
			return out, true
		}
	}
}

// settled finishes a decided command: the outcome goes to its reply subject, the
// message is acknowledged, and the command is counted.
func (in *Intake) settled(p *partition, it item, out client.Outcome) {
	h := in.heads[p.n]
	h.settled()
	h.gauge.Set(0)
	if rt := it.msg.Headers().Get(client.HeaderReplyTo); rt != "" && in.cfg.Replies.Check(rt) == nil {
		in.reply(rt, out)
	}
	if err := it.msg.Ack(); err != nil {
		// Harmless: a redelivery is recognised by its client and command id and answered
		// as a duplicate.
		in.cfg.Logger.Warn("intake: ack", "seq", it.seq, "err", err)
	}
	p.fence.noteSettled(it.seq)
	p.release(it)
	in.cfg.Metrics.observe(out, time.Since(it.start))
}

// putBack returns a command to the partition undecided, to be delivered again shortly.
func (in *Intake) putBack(it item) {
	_ = it.msg.NakWithDelay(retryPause)
}
