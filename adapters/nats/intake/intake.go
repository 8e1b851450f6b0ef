package intake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
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

// pullExpiry bounds how long one pull request waits on the server. It is shorter than
// pinnedTTL, so that an idle owner's next request keeps its pin.
const pullExpiry = time.Second

// pullExpiryFor is a pull request's expiry: between half of pullExpiry and all of it,
// drawn afresh for every request. When a partition is handed on, the server pins it
// to the oldest waiting request. With one fixed expiry every instance re-sends its
// requests in step with its start, so the same instance's requests were always the
// oldest and it won every handover: with three instances the last one started never
// got a partition (two benchmark runs ended 5,792 / 6,208 / 0 and 7,986 / 8,814 / 0).
func pullExpiryFor() time.Duration {
	return pullExpiry/2 + rand.N(pullExpiry/2+1)
}

// pinnedTTL is how long a partition stays pinned to an instance that sends no pull
// request: a dead instance's partitions pass to another one after it.
const pinnedTTL = 2 * time.Second

// PriorityGroup is the partition consumers' one priority group. Its policy is pinned:
// the server delivers a partition's commands to one instance at a time.
const PriorityGroup = "studyd"

// DefaultWindow is how many of a partition's commands may be in hand at once.
const DefaultWindow = 128

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
	// Window is how many commands of one partition may be in hand at once (the
	// consumer's MaxAckPending); default DefaultWindow. 1 decides one command at a time.
	Window int
}

// Intake consumes STUDYD_CMDS: one worker per partition. A partition's consumer is
// pinned to one instance at a time (a priority group with the pinned policy), which
// takes up to Window of its commands at once, decides them in order per client and
// appends the commits of distinct clients together (app.Handler.HandleBatch). A
// command is acknowledged once its commit or rejection is stored. When an instance
// stops pulling, the server pins the partition to another after pinnedTTL; the new
// owner holds back a client's commands while an older one of that client may still be
// in the old owner's hands (see fence), so a client's commands stay in order across a
// takeover.
type Intake struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	handler *app.Handler
	cfg     Config
	heads   []*head // per partition: the failures of its next command

	consumers []jetstream.Consumer // created by Prepare
	stream    jetstream.Stream     // STUDYD_CMDS, looked up by Prepare (the fence reads it)
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
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
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
	stream, err := in.js.Stream(ctx, client.CommandsStream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", client.CommandsStream, err)
	}
	consumers := make([]jetstream.Consumer, in.cfg.Partitions)
	for n := range in.cfg.Partitions {
		cons, err := in.js.CreateOrUpdateConsumer(ctx, client.CommandsStream, jetstream.ConsumerConfig{
			Durable:        PartitionConsumer(n),
			Description:    fmt.Sprintf("studyd partition %d", n),
			FilterSubject:  fmt.Sprintf("%s%d.*", partitionPrefix, n),
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        in.cfg.AckWait,
			MaxAckPending:  in.cfg.Window,
			MaxDeliver:     -1,
			PriorityPolicy: jetstream.PriorityPolicyPinned,
			PriorityGroups: []string{PriorityGroup},
			PinnedTTL:      pinnedTTL,
		})
		if err != nil {
			return fmt.Errorf("consumer %s: %w", PartitionConsumer(n), err)
		}
		consumers[n] = cons
	}
	in.consumers, in.stream = consumers, stream
	return nil
}

// Run creates the partition consumers and processes commands until ctx is done; then
// it stops pulling, finishes the commands in hand, and returns.
func (in *Intake) Run(ctx context.Context) error {
	if err := in.Prepare(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}
	parts := make([]*partition, len(in.consumers))
	var wg sync.WaitGroup
	for n, cons := range in.consumers {
		parts[n] = newPartition(n, cons)
		wg.Go(func() { in.work(ctx, parts[n]) })
	}
	wg.Go(func() { in.balance(ctx, parts) })
	wg.Wait()
	return nil
}

// apply admits and applies one command (app.Admit, app.Handler.Handle). It returns the
// outcome, or a transient error when nothing was decided and the command must be
// retried.
func (in *Intake) apply(ctx context.Context, it item) (client.Outcome, error) {
	inc, cmd, err := in.admit(it.msg, it.seq)
	var res app.Result
	if err == nil {
		res, err = in.handler.Handle(ctx, cmd, in.source(it))
	}
	return in.conclude(ctx, inc, cmd, res, err)
}

// admit decodes one command message (app.Admit) and checks where its outcome is to go.
func (in *Intake) admit(msg jetstream.Msg, seq uint64) (app.Incoming, domain.Command, error) {
	inc := app.Incoming{
		Subject:     msg.Subject(),
		Client:      subjectClient(msg),
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
	return inc, cmd, err
}

// source is where a command came from, for the commit, and whether the stream
// delivered it before.
func (in *Intake) source(it item) app.Source {
	return app.Source{Seq: it.seq, CorrelationID: it.msg.Headers().Get(nats.MsgIdHdr), Redelivered: it.redelivered}
}

// subjectClient is the client a command message's subject names.
func subjectClient(msg jetstream.Msg) domain.ClientID {
	return domain.ClientID(msg.Subject()[strings.LastIndexByte(msg.Subject(), '.')+1:])
}

func (in *Intake) conclude(ctx context.Context, inc app.Incoming, cmd domain.Command, res app.Result, err error) (client.Outcome, error) {
	return conclude(ctx, in.handler, in.cfg.Logger, inc, cmd, res, err)
}

// conclude turns the handler's answer into the command's outcome: applied or
// duplicate; a rejection is recorded first (if that fails, the command is retried
// later rather than acknowledged unrecorded), unless the command was refused by its
// decision the same way before — a resend is answered with its first refusal; any
// other error is transient.
func conclude(ctx context.Context, h *app.Handler, log *slog.Logger, inc app.Incoming, cmd domain.Command, res app.Result, err error) (client.Outcome, error) {
	if err == nil {
		status := client.OutcomeApplied
		if res.Duplicate {
			status = client.OutcomeDuplicate
		}
		return client.Outcome{CommandID: cmd.CommandID, ClientID: cmd.ClientID, Status: status,
			Seq: res.Record.Position, Events: res.Record.Commit.Events}, nil
	}
	if !domain.IsRejection(err) {
		return client.Outcome{}, err
	}
	if code := domain.ClassifyRejection(err); code.ByDecision() {
		if r, pos, ok, rerr := h.Rejected(ctx, cmd.ClientID, cmd.CommandID); rerr == nil && ok && r.Code == code {
			return rejected(r, pos), nil
		}
	}
	r, pos, rerr := h.Reject(ctx, inc, cmd, err)
	if rerr != nil {
		return client.Outcome{}, rerr
	}
	log.Info("command rejected", "client", r.Client, "command_id", r.CommandID, "seq", inc.Seq, "code", r.Code, "err", err)
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
