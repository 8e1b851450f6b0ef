package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// partitionPrefix is where STUDYD_CMDS stores commands after its subject transform:
// studyd.cmd.<client> becomes studyd.part.<n>.<client>, n = hash(client) mod P.
const partitionPrefix = "studyd.part."

// pullExpiry bounds how long one pull request waits on the server.
const pullExpiry = 2 * time.Second

// ErrStreamConfig: STUDYD_CMDS exists with settings studyd cannot run with (waiting
// will not change them).
var ErrStreamConfig = errors.New("intake: stream configured otherwise")

// PartitionConsumer is the durable consumer of partition n.
func PartitionConsumer(n int) string { return "studyd-part-" + strconv.Itoa(n) }

// EnsureCommandsStream creates or checks STUDYD_CMDS: a work-queue stream of
// studyd.cmd.* whose subject transform partitions commands by client, so that one
// client's commands stay in order while partitions are processed in parallel. The
// partition count is fixed at creation: a mismatch is an error, because changing it
// would strand queued commands on partitions nobody consumes.
func EnsureCommandsStream(ctx context.Context, js jetstream.JetStream, partitions, replicas int) (jetstream.Stream, error) {
	want := jetstream.StreamConfig{
		Name:        client.CommandsStream,
		Description: "studyd commands, partitioned by client (work queue)",
		Subjects:    []string{"studyd.cmd.*"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
		MaxMsgSize:  domain.MaxCommandPayload + 64<<10,
		SubjectTransform: &jetstream.SubjectTransformConfig{
			Source:      "studyd.cmd.*",
			Destination: fmt.Sprintf("%s{{partition(%d,1)}}.{{wildcard(1)}}", partitionPrefix, partitions),
		},
	}
	s, err := js.Stream(ctx, client.CommandsStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, want)
		if err != nil {
			return nil, fmt.Errorf("create stream %s: %w", client.CommandsStream, err)
		}
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", client.CommandsStream, err)
	}
	got := s.CachedInfo().Config
	switch {
	case got.Retention != jetstream.WorkQueuePolicy:
		return nil, fmt.Errorf("%w: stream %s: retention is %s, want %s", ErrStreamConfig, client.CommandsStream, got.Retention, jetstream.WorkQueuePolicy)
	case got.SubjectTransform == nil || got.SubjectTransform.Destination != want.SubjectTransform.Destination:
		return nil, fmt.Errorf("%w: stream %s: subject transform is %+v, want %s (was it created with another --partitions?)",
			ErrStreamConfig, client.CommandsStream, got.SubjectTransform, want.SubjectTransform.Destination)
	}
	return s, nil
}

// Config tunes the command intake. Partitions is required; the rest may be zero.
type Config struct {
	Partitions int           // must match STUDYD_CMDS
	AckWait    time.Duration // how long a command may be in flight before redelivery (and takeover)
	Logger     *slog.Logger
	Metrics    *Metrics
	// Replies limits where outcomes go (header Studyd-Reply-To); the zero value allows
	// inboxes (_INBOX.). The prefix of the intake connection's own inboxes, which the
	// studyd.submit endpoint uses, is always added.
	Replies app.ReplyPolicy
	// PoisonAfter parks a command after it failed this many times in a row the same
	// way (default DefaultPoisonAfter).
	PoisonAfter int
}

// Intake consumes STUDYD_CMDS: one worker per partition, each holding at most one
// unacknowledged command (MaxAckPending 1), which keeps a client's commands in order
// even when several studyd instances pull from the same partition consumers. Instances
// share partitions through JetStream itself: whichever pulls gets the next command, and
// a dead instance's in-flight command is redelivered after AckWait.
type Intake struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	handler *app.Handler
	cfg     Config
	heads   []*head // per partition: the failures of its next command

	consumers []jetstream.Consumer // created by Prepare
}

// New returns an intake applying commands, and recording rejections, with handler.
func New(nc *nats.Conn, js jetstream.JetStream, handler *app.Handler, cfg Config) *Intake {
	if cfg.AckWait == 0 {
		cfg.AckWait = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.PoisonAfter <= 0 {
		cfg.PoisonAfter = DefaultPoisonAfter
	}
	cfg.Replies = withOwnInbox(cfg.Replies, nc)
	heads := make([]*head, cfg.Partitions)
	for i := range heads {
		heads[i] = &head{gauge: cfg.Metrics.headFailures(i)}
	}
	return &Intake{nc: nc, js: js, handler: handler, cfg: cfg, heads: heads}
}

// withOwnInbox adds the prefix of nc's inboxes to p: the studyd.submit endpoint asks
// for its outcomes there.
func withOwnInbox(p app.ReplyPolicy, nc *nats.Conn) app.ReplyPolicy {
	if len(p.Prefixes) == 0 {
		p.Prefixes = app.DefaultReplyPrefixes
	}
	inbox := nc.NewInbox()
	own := inbox[:strings.LastIndexByte(inbox, '.')+1]
	if own != "" && !slices.Contains(p.Prefixes, own) {
		p.Prefixes = append(slices.Clone(p.Prefixes), own)
	}
	return p
}

// Prepare creates or updates the partition consumers. Run calls it if it has not
// succeeded yet; studyd calls it first to retry it while a cluster is not ready.
func (in *Intake) Prepare(ctx context.Context) error {
	if in.cfg.Partitions < 1 {
		return fmt.Errorf("intake: %d partitions (want those of %s, at least 1)", in.cfg.Partitions, client.CommandsStream)
	}
	if in.consumers != nil {
		return nil
	}
	consumers := make([]jetstream.Consumer, in.cfg.Partitions)
	for n := range in.cfg.Partitions {
		cons, err := in.js.CreateOrUpdateConsumer(ctx, client.CommandsStream, jetstream.ConsumerConfig{
			Durable:       PartitionConsumer(n),
			Description:   fmt.Sprintf("studyd partition %d", n),
			FilterSubject: fmt.Sprintf("%s%d.*", partitionPrefix, n),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       in.cfg.AckWait,
			MaxAckPending: 1,
			MaxDeliver:    -1,
		})
		if err != nil {
			return fmt.Errorf("consumer %s: %w", PartitionConsumer(n), err)
		}
		consumers[n] = cons
	}
	in.consumers = consumers
	return nil
}

// Run creates the partition consumers and processes commands until ctx is done; then
// it stops pulling, finishes the commands in hand, and returns.
func (in *Intake) Run(ctx context.Context) error {
	if err := in.Prepare(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for n, cons := range in.consumers {
		wg.Go(func() { in.work(ctx, n, cons) })
	}
	wg.Wait()
	return nil
}

// work applies one partition's commands in order until ctx is done.
//
// Each command is its own short fetch rather than a long-lived Messages iterator: with
// MaxAckPending 1 and pulls of one, the iterator was seen to stop delivering for good
// (3 of 21 probe runs, nats.go 1.55.0 / nats-server 2.15.3), while a fresh request per
// command cannot wedge — at worst it expires empty and the next one is sent. The short
// expiry also means a killed instance's requests vanish quickly instead of swallowing
// the partition's redeliveries, which would delay the takeover.
func (in *Intake) work(ctx context.Context, n int, cons jetstream.Consumer) {
	// A command in hand is finished even after shutdown starts, so that its append and
	// ack complete; ctx only stops the pulling.
	apply := context.WithoutCancel(ctx)
	for ctx.Err() == nil {
		batch, err := cons.Fetch(1, jetstream.FetchMaxWait(pullExpiry))
		if err != nil {
			// E.g. no leader while the cluster elects one: pause so that a persistent
			// error does not spin.
			in.cfg.Logger.Warn("intake: fetch", "err", err)
			pause(ctx, 100*time.Millisecond)
			continue
		}
		for msg := range batch.Messages() {
			in.process(apply, n, msg)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && ctx.Err() == nil {
			in.cfg.Logger.Warn("intake: fetch", "err", err)
			pause(ctx, 100*time.Millisecond)
		}
	}
}

// process applies one command message of partition n and settles it: ack when
// applied or rejected (a rejection is recorded first), nak with a delay when the
// failure is transient — unless it failed the same way PoisonAfter times in a row:
// then it is parked and acked, and the partition moves on.
func (in *Intake) process(ctx context.Context, n int, msg jetstream.Msg) {
	start := time.Now()
	meta, err := msg.Metadata()
	if err != nil {
		in.cfg.Logger.Error("intake: message without metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	seq := meta.Sequence.Stream
	out, transient := in.apply(ctx, msg, seq)
	if transient != nil {
		failures := in.heads[n].failed(seq, transient)
		in.heads[n].gauge.Set(float64(failures))
		if in.poisoned(failures, transient) {
			out, transient = in.park(ctx, msg, seq, failures, transient)
		}
	}
	if transient != nil {
		in.cfg.Metrics.transient.Inc()
		in.cfg.Logger.Warn("intake: will retry", "subject", msg.Subject(), "seq", seq, "err", transient)
		_ = msg.NakWithDelay(250 * time.Millisecond)
		return
	}
	in.heads[n].settled()
	in.heads[n].gauge.Set(0)
	if rt := msg.Headers().Get(client.HeaderReplyTo); rt != "" && in.cfg.Replies.Check(rt) == nil {
		in.reply(rt, out)
	}
	if err := msg.Ack(); err != nil {
		// Harmless: a redelivery is recognised by its client and command id and answered
		// as a duplicate.
		in.cfg.Logger.Warn("intake: ack", "seq", meta.Sequence.Stream, "err", err)
	}
	in.cfg.Metrics.observe(out, time.Since(start))
}

// apply admits and applies one command (app.Admit, app.Handler.Handle). It returns the
// outcome, or a transient error when nothing was decided and the command must be
// retried.
func (in *Intake) apply(ctx context.Context, msg jetstream.Msg, seq uint64) (client.Outcome, error) {
	inc := app.Incoming{
		Subject:     msg.Subject(),
		Client:      domain.ClientID(msg.Subject()[strings.LastIndexByte(msg.Subject(), '.')+1:]),
		ContentType: msg.Headers().Get(client.HeaderContentType),
		Payload:     msg.Data(),
		Seq:         seq,
	}
	cmd, err := app.Admit(inc, client.DecodeCommand)
	if rt := msg.Headers().Get(client.HeaderReplyTo); rt != "" {
		// studyd publishes the outcome with its own rights, which include writing the
		// log and the views: a reply subject that is not an inbox refuses the command
		// before anything is decided, and nothing is published to it.
		if rerr := in.cfg.Replies.Check(rt); rerr != nil {
			err = rerr
		}
	}
	if err == nil {
		var res app.Result
		res, err = in.handler.Handle(ctx, cmd, app.Source{Seq: seq, CorrelationID: msg.Headers().Get(nats.MsgIdHdr)})
		if err == nil {
			status := client.OutcomeApplied
			if res.Duplicate {
				status = client.OutcomeDuplicate
			}
			return client.Outcome{CommandID: cmd.CommandID, ClientID: cmd.ClientID, Status: status,
				Seq: res.Record.Position, Events: res.Record.Commit.Events}, nil
		}
	}
	if !domain.IsRejection(err) {
		return client.Outcome{}, err
	}
	// If the rejection cannot be recorded the command is retried later rather than
	// acknowledged unrecorded.
	r, pos, rerr := in.handler.Reject(ctx, inc, cmd, err)
	if rerr != nil {
		return client.Outcome{}, rerr
	}
	in.cfg.Logger.Info("command rejected", "client", r.Client, "command_id", r.CommandID, "seq", seq, "code", r.Code, "err", err)
	return rejected(r, pos), nil
}

// rejected is the outcome of a recorded rejection at pos.
func rejected(r eventstore.Rejection, pos uint64) client.Outcome {
	return client.Outcome{CommandID: r.CommandID, ClientID: r.Client, Status: client.OutcomeRejected, Seq: pos, Code: r.Code, Error: r.Error}
}

// reply publishes the outcome to the command's reply subject, if it named one.
func (in *Intake) reply(subject string, out client.Outcome) {
	if subject == "" {
		return
	}
	b, err := json.Marshal(out)
	if err == nil {
		err = in.nc.Publish(subject, b)
	}
	if err != nil {
		in.cfg.Logger.Warn("intake: reply", "subject", subject, "err", err)
	}
}

// pause waits d or until ctx is done.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
