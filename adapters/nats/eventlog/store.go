package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/adapters/nats/internal/leaderget"
	"github.com/studyd/studyd/audit"
	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

var _ eventstore.Store = (*Store)(nil)

// Store is the event log on STUDYD_EVENTS (see EnsureEventsStream). A commit is one
// message on studyd.evt.<client>; its Position is its stream sequence. Optimistic
// concurrency is the server's per-subject check (Nats-Expected-Last-Subject-Sequence),
// so any number of Stores, in any number of processes, may append concurrently.
//
// With a commit key (WithCommitKey) every commit and rejection is appended with its
// authentication code (header audit.HeaderMAC), and a client is loaded from its last
// commit that carries a valid one: a commit someone else wrote on studyd.evt.<client>
// — even one that names the right predecessor — never decides a command.
type Store struct {
	js     jetstream.JetStream
	key    *audit.CommitKey
	atomic bool // AppendBatch writes atomic batches (WithAtomicBatches)

	mu      sync.Mutex
	stream  jetstream.Stream   // looked up on first use; its cached info enables direct get
	applied jetstream.KeyValue // the applied-id index, looked up on first use
	refused jetstream.KeyValue // the refusal index, looked up on first use
	// heads maps a client whose subject ends in messages studyd did not write to the
	// sequence of its last authentic commit (what Load returned, and the handler will
	// expect) and the subject's real last sequence (what the server checks).
	heads map[domain.ClientID]head
}

type head struct{ authentic, last uint64 }

// StoreOption configures a Store.
type StoreOption func(*Store)

// WithAtomicBatches makes AppendBatch write a batch's commits as one JetStream atomic
// batch: on a server that syncs every write to disk (studyd --sync always) that is one
// fsync per batch instead of one per commit. A batch the server refuses as a whole (a
// conflict or a duplicate in it) is appended commit by commit, which tells each
// commit's outcome.
func WithAtomicBatches() StoreOption { return func(s *Store) { s.atomic = true } }

// WithCommitKey makes the Store authenticate what it appends with k and trust only
// commits authenticated by k.
func WithCommitKey(k *audit.CommitKey) StoreOption { return func(s *Store) { s.key = k } }

// NewStore returns a Store on js. It does no I/O: the stream is looked up on first use,
// so EnsureEventsStream may run before or after.
func NewStore(js jetstream.JetStream, opts ...StoreOption) *Store {
	s := &Store{js: js, heads: make(map[domain.ClientID]head)}
	for _, o := range opts {
		o(s)
	}
	return s
}

// sign sets msg's authentication code, if the Store has a key.
func (s *Store) sign(msg *nats.Msg) {
	if s.key == nil {
		return
	}
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	msg.Header.Set(audit.HeaderMAC, s.key.Sign(msg.Subject, msg.Data))
}

// authentic checks a stored message's code (its audit.HeaderMAC value); without a key
// everything is taken as studyd's.
func (s *Store) authentic(subject string, data []byte, mac string) error {
	if s.key == nil {
		return nil
	}
	return s.key.Verify(subject, data, mac)
}

// expectedLast translates the position the caller loaded into the sequence the server
// checks: they differ when foreign messages follow the client's last authentic commit.
func (s *Store) expectedLast(client domain.ClientID, expected uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.heads[client]; ok && h.authentic == expected {
		return h.last
	}
	return expected
}

func (s *Store) setHead(client domain.ClientID, h *head) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h == nil {
		delete(s.heads, client)
		return
	}
	s.heads[client] = *h
}

func (s *Store) eventsStream(ctx context.Context) (jetstream.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stream != nil {
		return s.stream, nil
	}
	st, err := s.js.Stream(ctx, EventsStream)
	if err != nil {
		return nil, storeError("look up stream "+EventsStream, err)
	}
	s.stream = st
	return st, nil
}

// msgID is the Nats-Msg-Id of a client's commit. The server dedups by id per stream,
// not per subject, so the id is scoped to the client: the same command id sent to two
// clients is two commands.
func msgID(client domain.ClientID, commandID string) string {
	return string(client) + "/" + commandID
}

// Append implements eventstore.Store with one publish: the encoded commit on the
// client's subject, expecting the client's last sequence to be expected (0: no message
// yet), with the command as Nats-Msg-Id.
func (s *Store) Append(ctx context.Context, c eventstore.Commit, expected uint64) (eventstore.Record, error) {
	msg, raw, err := s.commitMsg(c)
	if err != nil {
		return eventstore.Record{}, err
	}
	ack, err := s.js.PublishMsg(ctx, msg, s.appendOpts(c, expected)...)
	return s.appended(ctx, c, expected, raw, ack, err)
}

// appendTimeout bounds how long AppendBatch waits for the acknowledgements of one batch.
const appendTimeout = 10 * time.Second

// AppendBatch appends commits of distinct clients with the same checks as Append, but
// publishes all of them before awaiting any acknowledgement, so that a batch costs the
// server's work and about one round trip rather than one round trip per commit. Each
// commit succeeds or fails on its own; the outcomes are in the order of batch. A commit
// whose acknowledgement does not come within appendTimeout fails with ErrUnavailable
// (it may still have been stored: a retry finds it as a duplicate).
func (s *Store) AppendBatch(ctx context.Context, batch []eventstore.Pending) []eventstore.Appended {
	ctx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	if s.atomic && len(batch) > 1 {
		if out, err := s.appendAtomic(ctx, batch); err == nil {
			return out
		}
	}
	out := make([]eventstore.Appended, len(batch))
	futures := make([]jetstream.PubAckFuture, len(batch))
	raws := make([][]byte, len(batch))
	for i, p := range batch {
		msg, raw, err := s.commitMsg(p.Commit)
		if err == nil {
			futures[i], err = s.js.PublishMsgAsync(msg, s.appendOpts(p.Commit, p.Expected)...)
		}
		if err != nil {
			out[i].Err = storeError("append "+string(p.Commit.Client), err)
			futures[i] = nil
			continue
		}
		raws[i] = raw
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		p := batch[i]
		select {
		case ack := <-f.Ok():
			out[i].Record, out[i].Err = s.appended(ctx, p.Commit, p.Expected, raws[i], ack, nil)
		case err := <-f.Err():
			out[i].Record, out[i].Err = s.appended(ctx, p.Commit, p.Expected, raws[i], nil, err)
		case <-ctx.Done():
			out[i].Err = storeError("append "+string(p.Commit.Client), ctx.Err())
		}
	}
	return out
}

// commitMsg is the signed message that appends c, and its encoded bytes.
func (s *Store) commitMsg(c eventstore.Commit) (*nats.Msg, []byte, error) {
	raw, err := eventstore.EncodeCommit(c)
	if err != nil {
		return nil, nil, fmt.Errorf("append %s: %w", c.Client, err)
	}
	msg := &nats.Msg{Subject: EventSubject(c.Client), Data: raw, Header: nats.Header{}}
	s.sign(msg)
	return msg, raw, nil
}

// appendOpts are the checks of c's publish: the client's subject still ends at
// expected, and the command is not stored yet.
func (s *Store) appendOpts(c eventstore.Commit, expected uint64) []jetstream.PublishOpt {
	return []jetstream.PublishOpt{
		jetstream.WithExpectLastSequencePerSubject(s.expectedLast(c.Client, expected)),
		jetstream.WithMsgID(msgID(c.Client, c.CommandID)),
		jetstream.WithExpectStream(EventsStream),
	}
}

// appended turns the server's answer to c's publish into Append's result.
func (s *Store) appended(ctx context.Context, c eventstore.Commit, expected uint64, raw []byte, ack *jetstream.PubAck, err error) (eventstore.Record, error) {
	op := "append " + string(c.Client)
	switch {
	case IsConflict(err):
		// The check runs before dedup, so a retry whose first try landed answers here
		// too: the client's latest commit tells a lost race from a duplicate.
		return eventstore.Record{}, s.conflictOrDuplicate(ctx, c, expected, err)
	case err != nil:
		return eventstore.Record{}, storeError(op, err)
	case ack.Duplicate:
		// Within the dedup window with the right expected position: the server answers
		// with the original's sequence.
		orig, err := s.Get(ctx, ack.Sequence)
		if err != nil {
			return eventstore.Record{}, fmt.Errorf("%s: fetch the original of duplicate %s: %w", op, c.CommandID, err)
		}
		return eventstore.Record{}, &eventstore.DuplicateError{Original: orig}
	}
	s.setHead(c.Client, nil) // the subject ends in this authentic commit now
	// Return what a reader will decode (UTC times, nil empties), not the caller's value.
	return eventstore.Record{Position: ack.Sequence, Commit: c.Canonical(), Hash: eventstore.Hash(raw)}, nil
}

// conflictOrDuplicate decides what a failed concurrency check means: if the client's
// latest commit is c's command, or lists it among its recent commands, c was already
// applied (*DuplicateError with that commit); otherwise another writer moved first.
func (s *Store) conflictOrDuplicate(ctx context.Context, c eventstore.Commit, expected uint64, cause error) error {
	op := "append " + string(c.Client)
	latest, err := s.LoadLatest(ctx, c.Client) // the server said the subject moved: a replica may not have seen it
	if err != nil {
		return fmt.Errorf("%s: check for a duplicate after a conflict: %w", op, err)
	}
	if latest.Position != 0 && latest.Commit.CommandID == c.CommandID {
		return &eventstore.DuplicateError{Original: latest}
	}
	for _, a := range latest.Commit.Recent {
		if a.CommandID != c.CommandID || a.Position == 0 {
			continue
		}
		orig, err := s.Get(ctx, a.Position)
		if err != nil {
			return fmt.Errorf("%s: fetch the original of duplicate %s at %d: %w", op, c.CommandID, a.Position, err)
		}
		if orig.Commit.Client == c.Client && orig.Commit.CommandID == c.CommandID {
			return &eventstore.DuplicateError{Original: orig}
		}
	}
	return fmt.Errorf("%s: expected position %d, latest is %d: %w (%w)", op, expected, latest.Position, eventstore.ErrConflict, cause)
}

// Load implements eventstore.Store with one direct get of the last message on the
// client's subject. On a replicated stream a replica may answer it from behind the
// leader (see internal/leaderget): the record may trail the log by its last commits.
// LoadLatest does not.
func (s *Store) Load(ctx context.Context, client domain.ClientID) (eventstore.Record, error) {
	op := "load " + string(client)
	if err := client.Validate(); err != nil {
		return eventstore.Record{}, fmt.Errorf("%s: %w", op, err)
	}
	st, err := s.eventsStream(ctx)
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("%s: %w", op, err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, EventSubject(client))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return eventstore.Record{}, nil
	}
	if err != nil {
		return eventstore.Record{}, storeError(op, err)
	}
	return s.loaded(ctx, client, msg.Sequence, msg.Subject, msg.Data, msg.Header.Get(audit.HeaderMAC))
}

// LoadLatest is Load read from the stream's leader, which has every acknowledged
// commit: app.Handler reads it before a refusal, which a stale record must never
// decide, for a redelivered command and after a conflict. It costs a JetStream API
// request instead of a direct get (about twice the time: BenchmarkLoad).
func (s *Store) LoadLatest(ctx context.Context, client domain.ClientID) (eventstore.Record, error) {
	op := "load latest " + string(client)
	if err := client.Validate(); err != nil {
		return eventstore.Record{}, fmt.Errorf("%s: %w", op, err)
	}
	m, err := leaderget.Last(ctx, s.js.Conn(), EventsStream, EventSubject(client))
	if err != nil {
		return eventstore.Record{}, storeError(op, err)
	}
	if m.Seq == 0 {
		return eventstore.Record{}, nil
	}
	var mac string
	if len(m.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(m.Header)
		if err != nil {
			return eventstore.Record{}, fmt.Errorf("%s: headers at %d: %w: %w", op, m.Seq, eventstore.ErrCorrupt, err)
		}
		mac = h.Get(audit.HeaderMAC)
	}
	return s.loaded(ctx, client, m.Seq, m.Subject, m.Data, mac)
}

// loaded turns the last message on client's subject, at seq, into the client's latest
// record: itself if studyd wrote it, else the last commit on the subject that studyd did.
func (s *Store) loaded(ctx context.Context, client domain.ClientID, seq uint64, subject string, data []byte, mac string) (eventstore.Record, error) {
	if err := s.authentic(subject, data, mac); err != nil {
		return s.loadAuthentic(ctx, client, seq)
	}
	s.setHead(client, nil)
	r, err := record(seq, data)
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("load %s: %w", client, err)
	}
	if r.Commit.Client != client {
		return eventstore.Record{}, fmt.Errorf("load %s: %w: the commit at %d on %s is client %q's", client, eventstore.ErrCorrupt, seq, subject, r.Commit.Client)
	}
	return r, nil
}

// loadAuthentic is Load when the subject's last message, at last, was not written by
// studyd: it reads the client's subject and returns the last commit that was, or the
// empty record if none was. The rare path — a forgery on the log — pays a scan of one
// client's commits.
func (s *Store) loadAuthentic(ctx context.Context, client domain.ClientID, last uint64) (eventstore.Record, error) {
	op := "load " + string(client)
	var found eventstore.Record
	err := s.scan(ctx, op, EventSubject(client), eventstore.Query{To: last}, func(e audit.Entry) error {
		if s.authentic(e.Subject, e.Data, e.MAC) != nil {
			return nil
		}
		r, err := record(e.Seq, e.Data)
		if err != nil || r.Commit.Client != client {
			return nil // authentic but unreadable: not a state to decide on
		}
		found = r
		return nil
	})
	if err != nil {
		return eventstore.Record{}, err
	}
	s.setHead(client, &head{authentic: found.Position, last: last})
	return found, nil
}

// Get implements eventstore.Store: the message at stream sequence pos, which must be
// a commit (a rejection or nothing there is ErrNotFound).
func (s *Store) Get(ctx context.Context, pos uint64) (eventstore.Record, error) {
	op := fmt.Sprintf("get %d", pos)
	msg, err := s.getAuthentic(ctx, op, pos, EventPrefix)
	if err != nil {
		return eventstore.Record{}, err
	}
	r, err := record(msg.Sequence, msg.Data)
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("%s: %w", op, err)
	}
	return r, nil
}

// getAuthentic is one direct get of the message at stream sequence pos, which must be
// on a subject under prefix and written by studyd (with a commit key, carry a valid
// code); anything else there, or nothing, is ErrNotFound.
func (s *Store) getAuthentic(ctx context.Context, op string, pos uint64, prefix string) (*jetstream.RawStreamMsg, error) {
	if pos == 0 {
		return nil, fmt.Errorf("%s: %w", op, eventstore.ErrNotFound)
	}
	st, err := s.eventsStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	msg, err := st.GetMsg(ctx, pos)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("%s: %w", op, eventstore.ErrNotFound)
	}
	if err != nil {
		return nil, storeError(op, err)
	}
	if !strings.HasPrefix(msg.Subject, prefix) {
		return nil, fmt.Errorf("%s: %w (a message on %s)", op, eventstore.ErrNotFound, msg.Subject)
	}
	if err := s.authentic(msg.Subject, msg.Data, msg.Header.Get(audit.HeaderMAC)); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, eventstore.ErrNotFound, err)
	}
	return msg, nil
}

// record decodes the commit at seq (eventstore.DecodeRecord), naming the sequence in an
// error.
func record(seq uint64, data []byte) (eventstore.Record, error) {
	r, err := eventstore.DecodeRecord(seq, data)
	if err != nil {
		return eventstore.Record{}, fmt.Errorf("sequence %d: %w", seq, err)
	}
	return r, nil
}

// Read implements eventstore.Store with a Replay from q.From, filtered to the
// client's subject when q.Client is set. It stops at q.To or at the stream's last
// sequence when called. Since/Until select on commit.At, which the server does not
// index (it is the command's time, not the storage time), so a time range is a scan.
func (s *Store) Read(ctx context.Context, q eventstore.Query, fn func(eventstore.Record) error) error {
	filter := EventSubjects
	if q.Client != "" {
		if err := q.Client.Validate(); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		filter = EventSubject(q.Client)
	}
	return s.scan(ctx, "read", filter, q, func(e audit.Entry) error {
		if s.authentic(e.Subject, e.Data, e.MAC) != nil {
			return nil // not studyd's: never read as anyone's history
		}
		r, err := record(e.Seq, e.Data)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if !q.Matches(r.Commit.Client, r.Commit.At) {
			return nil
		}
		return fn(r)
	})
}

// Reject implements eventstore.Store: one publish on studyd.rej.<client>. A rejection
// with a command id is published with a Nats-Msg-Id, so recording the same refusal
// twice within the dedup window keeps one (its position is returned both times).
func (s *Store) Reject(ctx context.Context, r eventstore.Rejection) (uint64, error) {
	raw, err := eventstore.EncodeRejection(r)
	if err != nil {
		return 0, fmt.Errorf("reject: %w", err)
	}
	var opts []jetstream.PublishOpt
	opts = append(opts, jetstream.WithExpectStream(EventsStream))
	// A redelivery of one stream message is recorded once; every other refusal is a
	// record of its own, even of a command id refused before (say, resent with another
	// body): keyed by client and command id alone, the stream's dedup window dropped it.
	// The key holds no publisher text (a command id can be anything it sent).
	// A refusal on studyd.submit, before the command reached the stream, is recorded
	// once per request.
	if r.StreamSeq != 0 {
		opts = append(opts, jetstream.WithMsgID(fmt.Sprintf("rej/%s/%d", r.Client, r.StreamSeq)))
	}
	msg := &nats.Msg{Subject: RejectionSubject(r.Client), Data: raw}
	s.sign(msg)
	ack, err := s.js.PublishMsg(ctx, msg, opts...)
	if err != nil {
		return 0, storeError("reject", err)
	}
	return ack.Sequence, nil
}

// Rejections implements eventstore.Store like Read, on the rejection subjects.
func (s *Store) Rejections(ctx context.Context, q eventstore.Query, fn func(uint64, eventstore.Rejection) error) error {
	filter := RejectionSubjects
	if q.Client != "" {
		filter = RejectionSubject(q.Client)
	}
	return s.scan(ctx, "rejections", filter, q, func(e audit.Entry) error {
		r, err := eventstore.DecodeRejection(e.Data)
		if err != nil {
			return fmt.Errorf("rejections: sequence %d: %w", e.Seq, err)
		}
		if !q.Matches(r.Client, r.At) {
			return nil
		}
		return fn(e.Seq, r)
	})
}

// Rejection implements eventstore.Store like Get: one direct get of the message at
// stream sequence pos, which must be a rejection studyd recorded (with a commit key,
// one carrying a valid code; anything else there is ErrNotFound).
func (s *Store) Rejection(ctx context.Context, pos uint64) (eventstore.Rejection, error) {
	op := fmt.Sprintf("rejection at %d", pos)
	msg, err := s.getAuthentic(ctx, op, pos, RejectionPrefix)
	if err != nil {
		return eventstore.Rejection{}, err
	}
	r, err := eventstore.DecodeRejection(msg.Data)
	if err != nil {
		return eventstore.Rejection{}, fmt.Errorf("%s: %w", op, err)
	}
	return r, nil
}

// scan replays the messages on filter from q.From through min(q.To, the stream's last
// sequence at the call), in order: the stop sequence is fixed first, so that a read
// racing with appends ends. each's errors are returned as they are; the replay's own
// are the store's (ErrUnavailable when a retry may succeed).
func (s *Store) scan(ctx context.Context, op, filter string, q eventstore.Query, each func(audit.Entry) error) error {
	var eachErr error
	err := Replay(ctx, s.js, ReplayOptions{Subjects: []string{filter}, From: q.From, To: q.To, Batch: 256},
		func(e audit.Entry) error {
			eachErr = each(e)
			return eachErr
		})
	switch {
	case eachErr != nil:
		return eachErr
	case err != nil:
		return storeError(op, err)
	}
	return nil
}
