package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/domain"
)

// Parked commands: a command whose application failed the same way too many times in
// a row is moved, with its payload, to ParkedStream (and recorded as a rejection with
// code parked), so that its partition moves on. An operator lists them with
// ListParked and, after fixing the cause, re-drives one with Redrive.
const (
	// ParkedStream holds parked commands, one message each on ParkedSubject(client).
	ParkedStream = "STUDYD_PARKED"
	// ParkedSubjects selects every parked command.
	ParkedSubjects = "studyd.parked.>"

	// Headers of a parked command (besides the original Content-Type).
	HeaderParkedSeq      = "Studyd-Parked-Seq"      // its STUDYD_CMDS sequence
	HeaderParkedSubject  = "Studyd-Parked-Subject"  // the subject it was stored under in STUDYD_CMDS
	HeaderParkedError    = "Studyd-Parked-Error"    // the error it failed with, each time
	HeaderParkedFailures = "Studyd-Parked-Failures" // how many times in a row
	HeaderParkedAt       = "Studyd-Parked-At"       // when it was parked (RFC 3339)
	HeaderParkedCommand  = "Studyd-Parked-Command"  // its command id, when it decoded
)

// ParkedSubject is where client's parked commands are kept; "_" stands for a subject
// token that is not a valid client id.
func ParkedSubject(c domain.ClientID) string {
	if c.Validate() != nil {
		return "studyd.parked._"
	}
	return "studyd.parked." + string(c)
}

// Parked is one parked command as ListParked reports it.
type Parked struct {
	Seq         uint64          `json:"seq"` // its STUDYD_PARKED sequence: what Redrive takes
	Client      domain.ClientID `json:"client"`
	CommandID   string          `json:"command_id,omitempty"`
	CommandSeq  uint64          `json:"command_seq"` // its STUDYD_CMDS sequence
	Failures    int             `json:"failures"`
	Error       string          `json:"error"`
	At          time.Time       `json:"parked_at"`
	Bytes       int             `json:"bytes"`
	ContentType string          `json:"content_type,omitempty"`
}

// ErrNoParkedStream: STUDYD_PARKED does not exist (studyd creates it at start).
var ErrNoParkedStream = errors.New("client: stream " + ParkedStream + " not found (is studyd running?)")

// ListParked returns every parked command, oldest first.
func ListParked(ctx context.Context, js jetstream.JetStream) ([]Parked, error) {
	st, err := js.Stream(ctx, ParkedStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrNoParkedStream
	}
	if err != nil {
		return nil, fmt.Errorf("list parked: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("list parked: %w", err)
	}
	var out []Parked
	if info.State.Msgs == 0 {
		return out, nil
	}
	cons, err := js.OrderedConsumer(ctx, ParkedStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("list parked: %w", err)
	}
	for len(out) < int(info.State.Msgs) {
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("list parked: %w", err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("list parked: %w", err)
			}
			if meta.Sequence.Stream > info.State.LastSeq {
				return out, nil
			}
			out = append(out, parked(meta.Sequence.Stream, m.Subject(), m.Headers(), len(m.Data())))
			if meta.NumPending == 0 {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("list parked: %w", err)
		}
		if n == 0 {
			return out, nil // deleted (re-driven) meanwhile
		}
	}
	return out, nil
}

// ParkedCount is how many commands are parked now.
func ParkedCount(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	st, err := js.Stream(ctx, ParkedStream)
	if err != nil {
		return 0, fmt.Errorf("parked count: %w", err)
	}
	return st.CachedInfo().State.Msgs, nil
}

func parked(seq uint64, subject string, h nats.Header, size int) Parked {
	p := Parked{Seq: seq, Client: domain.ClientID(subject[len("studyd.parked."):]), CommandID: h.Get(HeaderParkedCommand),
		Error: h.Get(HeaderParkedError), Bytes: size, ContentType: h.Get(HeaderContentType)}
	p.CommandSeq, _ = strconv.ParseUint(h.Get(HeaderParkedSeq), 10, 64)
	p.Failures, _ = strconv.Atoi(h.Get(HeaderParkedFailures))
	p.At, _ = time.Parse(time.RFC3339Nano, h.Get(HeaderParkedAt))
	return p
}

// Redrive sends the parked command at seq back to its client's command subject, as it
// first arrived, removes it from STUDYD_PARKED once the command stream holds it again,
// and waits (until ctx ends) for its new outcome — which may be parked again if its
// cause is not fixed. A re-drive is a new message for the stream's dedup (its
// Nats-Msg-Id names the parked sequence), so it is decided anew.
func Redrive(ctx context.Context, nc *nats.Conn, seq uint64) (Outcome, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return Outcome{}, fmt.Errorf("redrive: %w", err)
	}
	st, err := js.Stream(ctx, ParkedStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return Outcome{}, ErrNoParkedStream
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("redrive: %w", err)
	}
	raw, err := st.GetMsg(ctx, seq)
	if err != nil {
		return Outcome{}, fmt.Errorf("redrive: parked seq %d: %w", seq, err)
	}
	p := parked(seq, raw.Subject, raw.Header, len(raw.Data))
	if err := p.Client.Validate(); err != nil {
		return Outcome{}, fmt.Errorf("redrive: parked seq %d has no valid client (subject %s): it cannot be routed", seq, raw.Subject)
	}
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return Outcome{}, fmt.Errorf("redrive: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := nats.NewMsg(CommandSubject(p.Client))
	msg.Data = raw.Data
	if p.ContentType != "" {
		msg.Header.Set(HeaderContentType, p.ContentType)
	}
	msg.Header.Set(HeaderReplyTo, inbox)
	if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID("redrive/"+strconv.FormatUint(seq, 10))); err != nil {
		return Outcome{}, fmt.Errorf("redrive: publish %s: %w", msg.Subject, err)
	}
	if err := st.DeleteMsg(ctx, seq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return Outcome{}, fmt.Errorf("redrive: the command is queued again, but removing parked seq %d failed: %w", seq, err)
	}
	reply, err := sub.NextMsgWithContext(ctx)
	if err != nil {
		return Outcome{}, fmt.Errorf("redrive: command %s is queued again, but no outcome came: %w", p.CommandID, err)
	}
	var out Outcome
	if err := json.Unmarshal(reply.Data, &out); err != nil {
		return Outcome{}, fmt.Errorf("redrive: decode outcome: %w", err)
	}
	return out, nil
}
