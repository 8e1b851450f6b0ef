package intake

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// pinHeader carries, on every delivery of a pinned consumer, the id of the pin.
const pinHeader = "Nats-Pin-Id"

// fenceRefresh is how often a fenced partition reads its consumer's ack floor.
const fenceRefresh = 100 * time.Millisecond

// fence keeps a client's commands in order across a takeover. When an instance is
// pinned a partition, commands delivered before may still be in the previous owner's
// hands (it died, or paused past pinnedTTL): they come back after AckWait, while
// newer ones are delivered at once. Until every command delivered before the takeover
// (those at or below top) is acknowledged, a command is held back if an older command
// of its client, delivered before the takeover, is still in the stream and was not
// settled here.
type fence struct {
	top     uint64          // the last sequence delivered when the takeover was seen
	floor   uint64          // the consumer's ack floor, as last read
	read    time.Time       // when floor was read
	settled map[uint64]bool // commands this instance acknowledged while fenced
}

// active reports whether the fence still holds anything back.
func (f *fence) active() bool { return f.floor < f.top }

// noteSettled notes a command this instance acknowledged: the stream may still hold
// it for a moment, and it must not hold back its client's next command.
func (f *fence) noteSettled(seq uint64) {
	if f.active() {
		f.settled[seq] = true
	}
}

// observePin notices a new pin on a group's deliveries. If the consumer has more
// commands in flight than were just delivered here, those delivered before may be
// another instance's, and the partition is fenced until they are acknowledged.
func (in *Intake) observePin(ctx context.Context, p *partition, items []item) {
	pin := p.pin
	for _, it := range items { // a group may span a change of pin
		if got := it.msg.Headers().Get(pinHeader); got != p.pin {
			pin = got
		}
	}
	if pin == p.pin {
		return
	}
	p.pin = pin
	p.owner.Store(pin)
	p.fence = fence{read: time.Now(), settled: make(map[uint64]bool)}
	info, err := p.cons.Info(ctx)
	switch {
	case err != nil:
		p.fence.top = ^uint64(0) // cannot tell what was delivered: check everything
	case info.NumAckPending <= distinct(items):
		return // nothing is in flight but what was just delivered here
	default:
		// Everything delivered so far may be another's: this group's redeliveries can
		// be older than a command the previous owner still holds.
		p.fence.floor, p.fence.top = info.AckFloor.Stream, info.Delivered.Stream
	}
	if p.fence.active() {
		in.cfg.Logger.Info("intake: partition taken over; fenced until the commands delivered before are settled",
			"partition", p.n, "ack_floor", p.fence.floor, "fenced_to", p.fence.top)
	}
}

// fenced reports whether it must wait: an older command of its client, delivered
// before this instance took the partition over, is still unsettled.
func (in *Intake) fenced(ctx context.Context, p *partition, it item) bool {
	f := &p.fence
	if !f.active() {
		return false
	}
	if time.Since(f.read) >= fenceRefresh {
		if info, err := p.cons.Info(ctx); err == nil {
			f.floor, f.read = info.AckFloor.Stream, time.Now()
			f.top = min(f.top, info.Delivered.Stream) // known now, if the takeover's read failed
		}
		if !f.active() {
			in.cfg.Logger.Info("intake: partition fence lifted", "partition", p.n)
			return false
		}
	}
	// The client's commands still in the stream, oldest first: any but those settled
	// here, delivered before the takeover and older than it, holds it back.
	for from := f.floor + 1; ; {
		older, err := in.stream.GetMsg(ctx, from, jetstream.WithGetMsgSubject(it.msg.Subject()))
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return false
		case err != nil:
			return true // cannot tell: wait, rather than risk the order
		case older.Sequence >= it.seq || older.Sequence > f.top:
			return false
		case !f.settled[older.Sequence]:
			return true
		}
		from = older.Sequence + 1
	}
}

// distinct is how many commands items holds: a redelivery may sit beside its original.
func distinct(items []item) int {
	seqs := make(map[uint64]bool, len(items))
	for _, it := range items {
		seqs[it.seq] = true
	}
	return len(seqs)
}
