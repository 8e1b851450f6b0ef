package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/studyd/studyd/eventstore"
)

// MaxAtomicBatch is the most commits one atomic batch holds (the server's default
// limit is 1,000 messages).
const MaxAtomicBatch = 1000

// The headers of JetStream's atomic batch publish (ADR-50).
const (
	headerBatchID       = "Nats-Batch-Id"
	headerBatchSequence = "Nats-Batch-Sequence"
	headerBatchCommit   = "Nats-Batch-Commit"
)

// batchAck is the server's answer to a batch's last message.
type batchAck struct {
	Stream string              `json:"stream"`
	Seq    uint64              `json:"seq"`
	Count  int                 `json:"count"`
	Error  *jetstream.APIError `json:"error,omitempty"`
}

// appendAtomic writes batch as one atomic batch: every commit keeps Append's checks
// (the client's subject still ends at the expected sequence, the command's
// Nats-Msg-Id), and the server stores all of them or none. The commits are stored at
// consecutive sequences, the last one the acknowledgement names. Any error means the
// batch as a whole was not confirmed; the caller appends commit by commit, which finds
// what was stored.
func (s *Store) appendAtomic(ctx context.Context, batch []eventstore.Pending) ([]eventstore.Appended, error) {
	if len(batch) > MaxAtomicBatch {
		return nil, fmt.Errorf("atomic batch of %d commits: at most %d", len(batch), MaxAtomicBatch)
	}
	nc := s.js.Conn()
	id := nuid.Next()
	raws := make([][]byte, len(batch))
	var reply *nats.Msg
	for i, p := range batch {
		msg, raw, err := s.commitMsg(p.Commit)
		if err != nil {
			return nil, err
		}
		raws[i] = raw
		msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(s.expectedLast(p.Commit.Client, p.Expected), 10))
		msg.Header.Set(jetstream.MsgIDHeader, msgID(p.Commit.Client, p.Commit.CommandID))
		msg.Header.Set(headerBatchID, id)
		msg.Header.Set(headerBatchSequence, strconv.Itoa(i+1))
		if i < len(batch)-1 {
			if err := nc.PublishMsg(msg); err != nil {
				return nil, storeError("append batch", err)
			}
			continue
		}
		msg.Header.Set(headerBatchCommit, "1")
		if reply, err = nc.RequestMsgWithContext(ctx, msg); err != nil {
			return nil, storeError("append batch", err)
		}
	}
	var ack batchAck
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return nil, storeError("append batch", fmt.Errorf("acknowledgement %q: %w", reply.Data, err))
	}
	if ack.Error != nil {
		return nil, storeError("append batch", ack.Error)
	}
	if ack.Stream != EventsStream || ack.Count != len(batch) || ack.Seq < uint64(len(batch)) {
		return nil, storeError("append batch", errors.New("acknowledgement of another batch: "+string(reply.Data)))
	}
	first := ack.Seq - uint64(len(batch)) + 1
	out := make([]eventstore.Appended, len(batch))
	for i, p := range batch {
		s.setHead(p.Commit.Client, nil)
		out[i].Record = eventstore.Record{Position: first + uint64(i), Commit: p.Commit.Canonical(), Hash: eventstore.Hash(raws[i])}
	}
	return out, nil
}
