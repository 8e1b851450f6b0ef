package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// ReplayOptions select the part of a stream a replay reads. Zero fields select
// everything: the whole of STUDYD_EVENTS, commits and rejections.
type ReplayOptions struct {
	// Stream is the stream to read (default EventsStream): audits of a copy or a
	// restored backup name theirs.
	Stream string
	// Subjects filter the stream (e.g. EventSubject(client) for one client's commits).
	Subjects []string
	// From and To bound the stream sequence, inclusive; To 0 is the stream's last
	// sequence when the replay starts, so a replay racing with appends ends.
	From, To uint64
	// Since and Until bound the time the stream stored a message (not the commit's
	// own At): the consumer starts at Since; Until (exclusive) ends the replay.
	Since, Until time.Time
	// Batch is how many messages one pull asks for (default 1024; following, the
	// client library's default).
	Batch int
	// Follow keeps the replay going past the stream's last sequence: it delivers new
	// messages as they are stored, until ctx ends (To and Until still end it). It is how
	// the projector tails the log.
	Follow bool
}

// StreamName is the stream o reads.
func (o ReplayOptions) StreamName() string {
	if o.Stream == "" {
		return EventsStream
	}
	return o.Stream
}

// ReplayBounds returns the first and last sequence a replay with o can deliver (for
// progress), and ok false if it has nothing to read.
func ReplayBounds(ctx context.Context, js jetstream.JetStream, o ReplayOptions) (first, last uint64, ok bool, err error) {
	st, err := js.Stream(ctx, o.StreamName())
	if err != nil {
		return 0, 0, false, fmt.Errorf("replay %s: %w", o.StreamName(), err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, 0, false, fmt.Errorf("replay %s: %w", o.StreamName(), err)
	}
	first, last = max(o.From, info.State.FirstSeq, 1), info.State.LastSeq
	if o.To != 0 && o.To < last {
		last = o.To
	}
	return first, last, info.State.Msgs > 0 && first <= last, nil
}

// readInactive is how long the server keeps a bounded replay's consumer after the
// reader stops pulling (it is also deleted when the replay ends).
const readInactive = 30 * time.Second

// Replay is the one reader of the log: it delivers the selected messages of a stream to
// fn in sequence order, through an ordered consumer (ephemeral, flow-controlled,
// recreated by the client library on a gap), until the selection ends, ctx ends (a
// following replay then returns nil), or fn returns an error (which Replay returns as
// is). The entry's Data is fn's to keep. The store's reads, the projector's tail, the
// rebuild's fold, audits and checkpoints all read through it.
func Replay(ctx context.Context, js jetstream.JetStream, o ReplayOptions, fn func(audit.Entry) error) error {
	name := o.StreamName()
	first, last, ok, err := ReplayBounds(ctx, js, o)
	if err != nil || (!ok && !o.Follow) {
		return err
	}
	if o.Follow {
		first, last = max(o.From, 1), o.To // 0: no end
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: o.Subjects}
	if !o.Follow {
		cfg.InactiveThreshold = readInactive
	}
	switch {
	case !o.Since.IsZero() && o.From <= 1:
		since := o.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	case first > 1:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, first
	default:
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	cons, err := js.OrderedConsumer(ctx, name, cfg)
	if err != nil {
		return fmt.Errorf("replay %s: %w", name, err)
	}
	var pull []jetstream.PullMessagesOpt
	if !o.Follow {
		ci := cons.CachedInfo()
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = js.DeleteConsumer(dctx, name, ci.Name) // best effort: it also expires on its own
		}()
		if ci.NumPending == 0 {
			return nil
		}
		batch := o.Batch
		if batch <= 0 {
			batch = 1024
		}
		pull = append(pull, jetstream.PullMaxMessages(int(min(ci.NumPending, uint64(batch)))))
	} else if o.Batch > 0 {
		pull = append(pull, jetstream.PullMaxMessages(o.Batch))
	}
	it, err := cons.Messages(pull...)
	if err != nil {
		return fmt.Errorf("replay %s: %w", name, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if o.Follow && ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("replay %s: %w", name, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("replay %s: %w", name, err)
		}
		seq := meta.Sequence.Stream
		if (last != 0 && seq > last) || (!o.Since.IsZero() && meta.Timestamp.Before(o.Since)) {
			return nil
		}
		if !o.Until.IsZero() && !meta.Timestamp.Before(o.Until) {
			return nil
		}
		if seq >= first {
			if err := fn(audit.Entry{Seq: seq, Subject: msg.Subject(), Stored: meta.Timestamp, Data: msg.Data(),
				MAC: msg.Headers().Get(audit.HeaderMAC)}); err != nil {
				return err
			}
		}
		if seq == last || (!o.Follow && meta.NumPending == 0) {
			return nil
		}
	}
}

// ReplayDecoded is Replay with the order-free work (sha256, decoding) spread over
// workers goroutines (0: GOMAXPROCS), while fn still sees every entry in sequence
// order (audit.ReplayDecoded over this stream).
func ReplayDecoded(ctx context.Context, js jetstream.JetStream, o ReplayOptions, workers int, fn func(audit.Decoded) error) error {
	return audit.ReplayDecoded(ctx, NewLog(js, o.Stream, o.Batch), o.Range(), workers, fn)
}

// ReplayLean is ReplayDecoded with lean records (audit.ReplayLean): an audit's replay,
// which verifies and folds the commits but neither exports nor keeps them.
func ReplayLean(ctx context.Context, js jetstream.JetStream, o ReplayOptions, workers int, fn func(audit.Decoded) error) error {
	return audit.ReplayLean(ctx, NewLog(js, o.Stream, o.Batch), o.Range(), workers, fn)
}

// Log is a stream as audit reads it (audit.Log).
type Log struct {
	js     jetstream.JetStream
	stream string
	batch  int
}

var _ audit.Log = Log{}

// NewLog returns the stream named stream ("": EventsStream) as an audit.Log; batch is
// ReplayOptions.Batch.
func NewLog(js jetstream.JetStream, stream string, batch int) Log {
	return Log{js: js, stream: stream, batch: batch}
}

func (l Log) options(r audit.Range) ReplayOptions {
	return ReplayOptions{Stream: l.stream, Subjects: r.Subjects, From: r.From, To: r.To, Since: r.Since, Until: r.Until, Batch: l.batch}
}

// Bounds implements audit.Log with ReplayBounds.
func (l Log) Bounds(ctx context.Context, r audit.Range) (first, last uint64, ok bool, err error) {
	return ReplayBounds(ctx, l.js, l.options(r))
}

// Replay implements audit.Log with Replay.
func (l Log) Replay(ctx context.Context, r audit.Range, fn func(audit.Entry) error) error {
	return Replay(ctx, l.js, l.options(r), fn)
}

// Range is the part of o an audit.Log selects by.
func (o ReplayOptions) Range() audit.Range {
	return audit.Range{Subjects: o.Subjects, From: o.From, To: o.To, Since: o.Since, Until: o.Until}
}

// ReplayCommits replays the selected commits (rejections and anything else skipped),
// decoded. An undecodable commit ends the replay with an error wrapping
// eventstore.ErrCorrupt (or ErrUnknownSchema): an audit must not skip one silently.
func ReplayCommits(ctx context.Context, js jetstream.JetStream, o ReplayOptions, fn func(eventstore.Record) error) error {
	if len(o.Subjects) == 0 {
		o.Subjects = []string{EventSubjects}
	}
	return Replay(ctx, js, o, func(e audit.Entry) error {
		if e.Kind() != audit.KindCommit {
			return nil
		}
		r, err := e.Record()
		if err != nil {
			return err
		}
		return fn(r)
	})
}

// ClientAsOf returns the client's last commit at or before sequence upToSeq, or stored
// at or before upToTime (one of them; both zero: the latest), with the time the stream
// stored it. A client with no commit by then gives a zero Record and no error.
//
// It is one direct get ("multi_last" with up_to_seq / up_to_time, nats-server 2.11+),
// which nats.go v1.55.0 does not wrap, so the request is made here; a stream without
// direct get is scanned with a subject-filtered ordered consumer instead.
func ClientAsOf(ctx context.Context, js jetstream.JetStream, stream string, client domain.ClientID, upToSeq uint64, upToTime time.Time) (eventstore.Record, time.Time, error) {
	if err := client.Validate(); err != nil {
		return eventstore.Record{}, time.Time{}, fmt.Errorf("as of: %w", err)
	}
	if stream == "" {
		stream = EventsStream
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return eventstore.Record{}, time.Time{}, fmt.Errorf("as of: %w", err)
	}
	if st.CachedInfo().Config.AllowDirect {
		return directAsOf(ctx, js, stream, client, upToSeq, upToTime)
	}
	var found audit.Entry
	err = Replay(ctx, js, ReplayOptions{Stream: stream, Subjects: []string{EventSubject(client)}, To: upToSeq},
		func(e audit.Entry) error {
			if !upToTime.IsZero() && e.Stored.After(upToTime) {
				return errStopReplay
			}
			found = e
			return nil
		})
	if err != nil && !errors.Is(err, errStopReplay) {
		return eventstore.Record{}, time.Time{}, fmt.Errorf("as of: %w", err)
	}
	if found.Seq == 0 {
		return eventstore.Record{}, time.Time{}, nil
	}
	r, err := found.Record()
	return r, found.Stored, err
}

var errStopReplay = errors.New("stop replay")

// directGetRequest is the server's JSApiMsgGetRequest, the fields used here.
type directGetRequest struct {
	MultiLastFor []string   `json:"multi_last"`
	UpToSeq      uint64     `json:"up_to_seq,omitempty"`
	UpToTime     *time.Time `json:"up_to_time,omitempty"`
}

func directAsOf(ctx context.Context, js jetstream.JetStream, stream string, client domain.ClientID, upToSeq uint64, upToTime time.Time) (eventstore.Record, time.Time, error) {
	req := directGetRequest{MultiLastFor: []string{EventSubject(client)}, UpToSeq: upToSeq}
	if !upToTime.IsZero() {
		// The server excludes a message stored at exactly up_to_time; "as of" includes it.
		t := upToTime.UTC().Add(time.Nanosecond)
		req.UpToTime = &t
	}
	body, err := json.Marshal(req)
	if err != nil {
		return eventstore.Record{}, time.Time{}, fmt.Errorf("as of: %w", err)
	}
	prefix := js.Options().APIPrefix
	if prefix == "" {
		prefix = jetstream.DefaultAPIPrefix
	}
	if !strings.HasSuffix(prefix, ".") {
		prefix += "."
	}
	nc := js.Conn()
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return eventstore.Record{}, time.Time{}, fmt.Errorf("as of: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(prefix+"DIRECT.GET."+stream, inbox, body); err != nil {
		return eventstore.Record{}, time.Time{}, fmt.Errorf("as of: %w", err)
	}
	// The answer is the message (if any), then an end-of-batch status; or one status.
	var found *nats.Msg
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return eventstore.Record{}, time.Time{}, fmt.Errorf("as of %s: %w", client, err)
		}
		status := m.Header.Get("Status")
		switch {
		case status == "" && len(m.Data) > 0 || m.Header.Get(jetstream.SequenceHeader) != "":
			found = m
			continue
		case status == "204": // end of batch
		case status == "404": // no message on the subject by then
			return eventstore.Record{}, time.Time{}, nil
		default:
			return eventstore.Record{}, time.Time{}, fmt.Errorf("as of %s: direct get answered %s %s", client, status, m.Header.Get("Description"))
		}
		break
	}
	if found == nil {
		return eventstore.Record{}, time.Time{}, nil
	}
	seq, err := strconv.ParseUint(found.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return eventstore.Record{}, time.Time{}, fmt.Errorf("as of %s: sequence header: %w", client, err)
	}
	stored, _ := time.Parse(time.RFC3339Nano, found.Header.Get(jetstream.TimeStampHeaer))
	e := audit.Entry{Seq: seq, Subject: found.Header.Get(jetstream.SubjectHeader), Stored: stored, Data: found.Data,
		MAC: found.Header.Get(audit.HeaderMAC)}
	r, err := e.Record()
	return r, stored, err
}
