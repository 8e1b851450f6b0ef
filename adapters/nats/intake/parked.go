package intake

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/studyd/studyd/adapters/nats/client"
	"github.com/studyd/studyd/app"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// DefaultPoisonAfter is how many times in a row a command may fail the same way before
// it is parked.
const DefaultPoisonAfter = 5

// stuckAfter is the failures in a row after which a partition counts as stuck.
const stuckAfter = 3

// EnsureParkedStream creates or finds STUDYD_PARKED, where commands that failed the
// same way too often are kept with their payload until an operator re-drives them.
func EnsureParkedStream(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        client.ParkedStream,
		Description: "studyd commands parked after failing the same way repeatedly (studyctl parked)",
		Subjects:    []string{client.ParkedSubjects},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
		MaxMsgSize:  domain.MaxCommandPayload + 64<<10,
	})
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", client.ParkedStream, err)
	}
	return s, nil
}

// Stuck is a partition whose next command keeps failing.
type Stuck struct {
	Partition int
	Seq       uint64 // the command's STUDYD_CMDS sequence
	Failures  int    // in a row
	Err       string // the last failure
	Since     time.Time
}

func (s Stuck) String() string {
	return fmt.Sprintf("partition %d stuck since %s: command at %s seq %d failed %d times in a row: %s",
		s.Partition, s.Since.UTC().Format(time.RFC3339), client.CommandsStream, s.Seq, s.Failures, s.Err)
}

// head tracks the failures of the command at the head of one partition.
type head struct {
	gauge    prometheus.Gauge // studyd_partition_head_failures of the partition
	mu       sync.Mutex
	seq      uint64
	err      string
	failures int
	since    time.Time
}

// failed counts a failure of the command at seq and returns how many times in a row
// it failed the same way.
func (h *head) failed(seq uint64, err error) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seq != seq || h.err != err.Error() {
		if h.seq != seq {
			h.since = time.Now()
		}
		h.seq, h.err, h.failures = seq, err.Error(), 0
	}
	h.failures++
	return h.failures
}

// settled clears the head: its command is decided.
func (h *head) settled() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq, h.err, h.failures = 0, "", 0
}

// Stuck lists the partitions whose next command has failed at least 3 times in a row,
// by partition.
func (in *Intake) Stuck() []Stuck {
	var out []Stuck
	for n, h := range in.heads {
		h.mu.Lock()
		if h.failures >= stuckAfter {
			out = append(out, Stuck{Partition: n, Seq: h.seq, Failures: h.failures, Err: h.err, Since: h.since})
		}
		h.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Partition < out[j].Partition })
	return out
}

// poisoned reports whether a command that failed failures times in a row with err
// should be parked: the same failure PoisonAfter times, and not an outage (NATS
// unavailable is nobody's command's fault: it is waited out, the partition shows as
// stuck meanwhile).
func (in *Intake) poisoned(failures int, err error) bool {
	return failures >= in.cfg.PoisonAfter && !errors.Is(err, eventstore.ErrUnavailable)
}

// park moves a command that keeps failing to STUDYD_PARKED with its payload and
// records its rejection (code parked), so that its partition moves on. An error means
// neither is sure to be done: the command stays at the head and is retried.
func (in *Intake) park(ctx context.Context, msg jetstream.Msg, seq uint64, failures int, cause error) (client.Outcome, error) {
	subjectClient := domain.ClientID(msg.Subject()[strings.LastIndexByte(msg.Subject(), '.')+1:])
	cmd, err := client.DecodeCommand(msg.Headers().Get(client.HeaderContentType), msg.Data())
	if err != nil || cmd.ClientID != subjectClient {
		cmd = domain.Command{ClientID: subjectClient}
	}
	pm := nats.NewMsg(client.ParkedSubject(subjectClient))
	pm.Data = msg.Data()
	if ct := msg.Headers().Get(client.HeaderContentType); ct != "" {
		pm.Header.Set(client.HeaderContentType, ct)
	}
	errText := cause.Error()
	if len(errText) > 1024 {
		errText = errText[:1024]
	}
	pm.Header.Set(client.HeaderParkedSeq, strconv.FormatUint(seq, 10))
	pm.Header.Set(client.HeaderParkedSubject, msg.Subject())
	pm.Header.Set(client.HeaderParkedError, errText)
	pm.Header.Set(client.HeaderParkedFailures, strconv.Itoa(failures))
	pm.Header.Set(client.HeaderParkedAt, time.Now().UTC().Format(time.RFC3339Nano))
	if cmd.CommandID != "" {
		pm.Header.Set(client.HeaderParkedCommand, cmd.CommandID)
	}
	// Parking the same delivery twice (a retry after a lost ack) keeps one copy.
	ack, err := in.js.PublishMsg(ctx, pm, jetstream.WithMsgID("parked/"+strconv.FormatUint(seq, 10)))
	if err != nil {
		return client.Outcome{}, fmt.Errorf("park seq %d: %w", seq, err)
	}
	in.cfg.Logger.Error("command parked: it failed the same way repeatedly", "client", subjectClient, "command_id", cmd.CommandID,
		"seq", seq, "failures", failures, "parked_seq", ack.Sequence, "err", cause)
	cause = fmt.Errorf("%w: applying it failed %d times in a row with: %w; parked as %s seq %d with its payload (after fixing the cause: studyctl parked --redrive %d)",
		domain.ErrParked, failures, cause, client.ParkedStream, ack.Sequence, ack.Sequence)
	inc := app.Incoming{Subject: msg.Subject(), Client: subjectClient, ContentType: msg.Headers().Get(client.HeaderContentType),
		Payload: msg.Data(), Seq: seq}
	r, pos, err := in.handler.Reject(ctx, inc, cmd, cause)
	if err != nil {
		return client.Outcome{}, err
	}
	return rejected(r, pos), nil
}
