package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/domain"
)

// ErrNoCommandsStream: STUDYD_CMDS does not exist, so nothing would take a command.
// studyd creates it at start.
var ErrNoCommandsStream = errors.New("client: stream " + CommandsStream + " not found (is studyd running?)")

// PublishOptions tune PublishCommands. Zero fields take their defaults.
type PublishOptions struct {
	// JSON sends commands as JSON with Content-Type application/json instead of msgpack.
	JSON bool
	// InFlight bounds the publishes awaiting their PubAck (default 256).
	InFlight int
	// Rate limits publishing to this many commands per second; 0 means as fast as the
	// acks allow.
	Rate float64
	// AckTimeout is how long one publish waits for its PubAck before it is sent again
	// (default 5s). The Nats-Msg-Id is CommandMsgID (client, command id, body digest),
	// so a resend inside the stream's duplicate window is stored once.
	AckTimeout time.Duration
	// Retries bounds the resends of one command (default 10).
	Retries int
	// Acked, if set, is called after each PubAck, from one goroutine, in ack order.
	Acked func(domain.Command)
}

func (o PublishOptions) withDefaults() PublishOptions {
	if o.InFlight <= 0 {
		o.InFlight = 256
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 5 * time.Second
	}
	if o.Retries <= 0 {
		o.Retries = 10
	}
	return o
}

// PublishStats counts what PublishCommands did.
type PublishStats struct {
	Sent       int                        `json:"sent"`       // commands published (once each, however often resent)
	Acked      int                        `json:"acked"`      // commands whose PubAck arrived: the stream holds them
	Duplicates int                        `json:"duplicates"` // acks saying the stream already held the command
	Retries    int                        `json:"retries"`    // resends after a timeout or error
	PerType    map[domain.CommandType]int `json:"per_type"`   // acked commands by type
	Duration   time.Duration              `json:"duration_ns"`
}

// Rate is the acked commands per second.
func (s PublishStats) Rate() float64 {
	if s.Duration <= 0 {
		return 0
	}
	return float64(s.Acked) / s.Duration.Seconds()
}

// pubItem is one command awaiting its PubAck.
type pubItem struct {
	cmd domain.Command
	msg *nats.Msg
	fut jetstream.PubAckFuture // nil when the async publish itself failed: resend
}

// PublishCommands publishes every command next yields to studyd.cmd.<client> on
// JetStream, asynchronously with at most opts.InFlight PubAcks outstanding, each with
// CommandMsgID as Nats-Msg-Id; a publish whose ack times out or fails is sent again,
// up to opts.Retries times. A command counts as accepted only when its PubAck arrives.
// It returns the stats so far with the first error that stopped it (ctx's, or a
// command that could not be stored), and ErrNoCommandsStream before sending anything
// if STUDYD_CMDS does not exist. It is the load generator of studyctl simulate, the
// integration tests and the benchmarks.
func PublishCommands(ctx context.Context, nc *nats.Conn, next func() (domain.Command, bool), opts PublishOptions) (PublishStats, error) {
	opts = opts.withDefaults()
	stats := PublishStats{PerType: map[domain.CommandType]int{}}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(opts.InFlight),
		jetstream.WithPublishAsyncTimeout(opts.AckTimeout))
	if err != nil {
		return stats, fmt.Errorf("publish commands: %w", err)
	}
	if err := checkCommandsStream(ctx, js); err != nil {
		return stats, err
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, opts.InFlight) // one per publish awaiting its ack
	queue := make(chan pubItem, opts.InFlight)
	done := make(chan struct{})
	start := time.Now()
	go func() { // the waiter: owns the ack side of stats until done is closed
		defer close(done)
		for it := range queue {
			if ctx.Err() == nil {
				if err := awaitAck(ctx, js, it, opts, &stats); err != nil {
					cancel(err)
				}
			}
			<-slots
		}
	}()

	var pace time.Duration
	if opts.Rate > 0 {
		pace = time.Duration(float64(time.Second) / opts.Rate)
	}
	var sent int
	for ctx.Err() == nil {
		cmd, ok := next()
		if !ok {
			break
		}
		if pace > 0 {
			if err := sleepUntil(ctx, start.Add(time.Duration(sent)*pace)); err != nil {
				break
			}
		}
		msg, err := commandMsg(cmd, opts.JSON)
		if err != nil {
			cancel(err)
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		fut, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(CommandMsgID(cmd)))
		if err != nil {
			fut = nil // the waiter resends it synchronously
		}
		sent++
		queue <- pubItem{cmd: cmd, msg: msg, fut: fut}
	}
	close(queue)
	<-done
	stats.Sent = sent
	stats.Duration = time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return stats, fmt.Errorf("publish commands: %w", err)
	}
	return stats, nil
}

// checkCommandsStream fails with ErrNoCommandsStream if STUDYD_CMDS is missing.
func checkCommandsStream(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := js.Stream(ctx, CommandsStream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return ErrNoCommandsStream
	case err != nil:
		return fmt.Errorf("look up stream %s: %w", CommandsStream, err)
	}
	return nil
}

// awaitAck waits for one command's PubAck, resending it on a timeout or error.
func awaitAck(ctx context.Context, js jetstream.JetStream, it pubItem, opts PublishOptions, stats *PublishStats) error {
	var ack *jetstream.PubAck
	if it.fut != nil {
		// A backstop beyond the async publisher's own ack timeout.
		timer := time.NewTimer(2 * opts.AckTimeout)
		select {
		case ack = <-it.fut.Ok():
		case <-it.fut.Err():
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return context.Cause(ctx)
		}
		timer.Stop()
	}
	var err error
	for attempt := 0; ack == nil && attempt < opts.Retries; attempt++ {
		stats.Retries++
		if attempt > 0 {
			if err := sleepUntil(ctx, time.Now().Add(time.Duration(attempt)*100*time.Millisecond)); err != nil {
				return err
			}
		}
		ack, err = resend(ctx, js, it.msg, opts.AckTimeout)
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			if serr := checkCommandsStream(ctx, js); errors.Is(serr, ErrNoCommandsStream) {
				return serr
			}
		}
	}
	if ack == nil {
		return fmt.Errorf("command %s: no PubAck after %d resends: %w", it.cmd.CommandID, opts.Retries, err)
	}
	stats.Acked++
	stats.PerType[it.cmd.Type]++
	if ack.Duplicate {
		stats.Duplicates++
	}
	if opts.Acked != nil {
		opts.Acked(it.cmd)
	}
	return nil
}

// resend publishes msg again synchronously; its Nats-Msg-Id header is kept.
func resend(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, timeout time.Duration) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	again := &nats.Msg{Subject: msg.Subject, Data: msg.Data, Header: msg.Header}
	ack, err := js.PublishMsg(ctx, again)
	if err != nil {
		return nil, fmt.Errorf("resend: %w", err)
	}
	return ack, nil
}

// commandMsg is cmd as a message on its client's command subject, msgpack or JSON.
func commandMsg(cmd domain.Command, asJSON bool) (*nats.Msg, error) {
	msg := nats.NewMsg(CommandSubject(cmd.ClientID))
	var err error
	if asJSON {
		msg.Data, err = json.Marshal(cmd)
		msg.Header.Set(HeaderContentType, ContentTypeJSON)
	} else {
		msg.Data, err = EncodeCommand(cmd)
	}
	if err != nil {
		return nil, fmt.Errorf("encode command %s: %w", cmd.CommandID, err)
	}
	return msg, nil
}

// sleepUntil waits until t or ctx is done.
func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// PublishAndWait publishes one command to JetStream (msgpack, Nats-Msg-Id =
// CommandMsgID) asking for its outcome on a fresh inbox (header Studyd-Reply-To), and
// waits for that outcome until ctx is done. If the stream already held the command (a
// resend inside the dedup window) no outcome would come to the inbox: it asks
// studyd.submit instead, which answers with the outcome the log records. It returns
// ErrNoCommandsStream when no stream takes the command.
func PublishAndWait(ctx context.Context, nc *nats.Conn, cmd domain.Command) (Outcome, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return Outcome{}, fmt.Errorf("publish and wait: %w", err)
	}
	msg, err := commandMsg(cmd, false)
	if err != nil {
		return Outcome{}, err
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return Outcome{}, fmt.Errorf("publish and wait: subscribe %s: %w", inbox, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg.Header.Set(HeaderReplyTo, inbox)
	ack, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(CommandMsgID(cmd)))
	if err != nil {
		if errors.Is(err, jetstream.ErrNoStreamResponse) {
			return Outcome{}, fmt.Errorf("publish and wait: %w", ErrNoCommandsStream)
		}
		return Outcome{}, fmt.Errorf("publish and wait: publish %s: %w", msg.Subject, err)
	}
	if ack.Duplicate {
		out, err := SubmitRaw(ctx, nc, ContentTypeMsgpack, msg.Data)
		if err != nil {
			return Outcome{}, fmt.Errorf("publish and wait: command %s was sent before: %w", cmd.CommandID, err)
		}
		return out, nil
	}
	reply, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("publish and wait: command %s is queued, but no outcome came: %w", cmd.CommandID, err)
	}
	var out Outcome
	if err := json.Unmarshal(reply.Data, &out); err != nil {
		return Outcome{}, fmt.Errorf("publish and wait: decode outcome: %w", err)
	}
	return out, nil
}
