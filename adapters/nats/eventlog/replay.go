package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
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
	// Batch is how many messages one pull asks for (default 1024).
	Batch int
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

// Replay delivers the selected messages of a stream to fn in sequence order, through an
// ordered consumer (ephemeral, flow-controlled, recreated by the client library on a
// gap), until the selection ends or fn returns an error (which Replay returns). The
// entry's Data is fn's to keep.
func Replay(ctx context.Context, js jetstream.JetStream, o ReplayOptions, fn func(audit.Entry) error) error {
	name := o.StreamName()
	first, last, ok, err := ReplayBounds(ctx, js, o)
	if err != nil || !ok {
		return err
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: o.Subjects, InactiveThreshold: scanInactive}
	switch {
	case !o.Since.IsZero() && o.From <= 1:
		since := o.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	default:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, first
	}
	cons, err := js.OrderedConsumer(ctx, name, cfg)
	if err != nil {
		return fmt.Errorf("replay %s: %w", name, err)
	}
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
	it, err := cons.Messages(jetstream.PullMaxMessages(int(min(ci.NumPending, uint64(batch)))))
	if err != nil {
		return fmt.Errorf("replay %s: %w", name, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("replay %s: %w", name, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("replay %s: %w", name, err)
		}
		seq := meta.Sequence.Stream
		if seq > last || (!o.Since.IsZero() && meta.Timestamp.Before(o.Since)) {
			return nil
		}
		if !o.Until.IsZero() && !meta.Timestamp.Before(o.Until) {
			return nil
		}
		if seq >= first {
			if err := fn(audit.Entry{Seq: seq, Subject: msg.Subject(), Stored: meta.Timestamp, Data: msg.Data()}); err != nil {
				return err
			}
		}
		if seq == last || meta.NumPending == 0 {
			return nil
		}
	}
}

// decodeBatch is how many entries one decode job holds: enough to amortise the
// hand-offs, small enough to keep the workers busy near the end of a replay.
const decodeBatch = 64

type decodeJob struct {
	items []audit.Decoded
	done  chan struct{}
}

// ReplayDecoded is Replay with the order-free work (sha256, decoding) spread over
// workers goroutines (0: GOMAXPROCS), while fn still sees every entry in sequence order
// on the caller's goroutine. Decoding dominates an audit replay, so this is what lets
// it keep up with the raw read on more than one core.
func ReplayDecoded(ctx context.Context, js jetstream.JetStream, o ReplayOptions, workers int, fn func(audit.Decoded) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ordered := make(chan *decodeJob, 4*workers)
	work := make(chan *decodeJob, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				for i := range j.items {
					j.items[i] = audit.Decode(j.items[i].Entry)
				}
				close(j.done)
			}
		}()
	}
	readErr := make(chan error, 1)
	go func() {
		defer close(ordered)
		defer close(work)
		j := &decodeJob{items: make([]audit.Decoded, 0, decodeBatch), done: make(chan struct{})}
		send := func() bool {
			select {
			case ordered <- j:
			case <-ctx.Done():
				return false
			}
			work <- j
			j = &decodeJob{items: make([]audit.Decoded, 0, decodeBatch), done: make(chan struct{})}
			return true
		}
		err := Replay(ctx, js, o, func(e audit.Entry) error {
			j.items = append(j.items, audit.Decoded{Entry: e})
			if len(j.items) == decodeBatch && !send() {
				return ctx.Err()
			}
			return nil
		})
		if err == nil && len(j.items) > 0 {
			send()
		}
		readErr <- err
	}()
	var fnErr error
	for j := range ordered {
		<-j.done
		if fnErr != nil {
			continue // drain, so the reader and workers finish
		}
		for i := range j.items {
			if fnErr = fn(j.items[i]); fnErr != nil {
				cancel()
				break
			}
		}
	}
	wg.Wait()
	err := <-readErr
	if fnErr != nil {
		return fnErr
	}
	return err
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
	e := audit.Entry{Seq: seq, Subject: found.Header.Get(jetstream.SubjectHeader), Stored: stored, Data: found.Data}
	r, err := e.Record()
	return r, stored, err
}
