// Package leaderget reads a stream's last message on a subject from the stream's
// leader. A direct get (what nats.go's stream and KV gets use when the stream allows
// them) is answered by any replica, preferring one on the client's own server, and a
// replica may trail the leader: by moments in steady state, by up to a tenth of the
// stream while it catches up after a fault (nats-server serves direct gets from a
// replica once it is 90 % synchronised). Whatever must see every acknowledged write
// reads here instead, with the JetStream API's plain message get.
package leaderget

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Timeout bounds one read when ctx has no earlier deadline.
const Timeout = 5 * time.Second

// Msg is a stored message as the message get returns it. Its Header is the raw
// NATS header block (decode it with nats.DecodeHeadersMsg).
type Msg struct {
	Subject string `json:"subject"`
	Seq     uint64 `json:"seq"`
	Header  []byte `json:"hdrs"`
	Data    []byte `json:"data"`
}

// Last fetches the last message on subject (wildcards allowed) in stream from the
// stream's leader. No such message is a zero Msg and no error.
func Last(ctx context.Context, nc *nats.Conn, stream, subject string) (Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	req, _ := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{subject})
	m, err := nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return Msg{}, err
	}
	var resp struct {
		Message *Msg                `json:"message"`
		Error   *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return Msg{}, fmt.Errorf("message get on %s: %w", stream, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return Msg{}, nil
	case resp.Error != nil:
		return Msg{}, fmt.Errorf("message get on %s: %w", stream, resp.Error)
	case resp.Message == nil:
		return Msg{}, fmt.Errorf("message get on %s: empty answer", stream)
	}
	return *resp.Message, nil
}

// KVDeleted reports whether m is a KV delete or purge marker: the key has no value.
func KVDeleted(m Msg) (bool, error) {
	if len(m.Header) == 0 {
		return false, nil
	}
	h, err := nats.DecodeHeadersMsg(m.Header)
	if err != nil {
		return false, fmt.Errorf("headers of %s: %w", m.Subject, err)
	}
	op := h.Get("KV-Operation")
	return op == "DEL" || op == "PURGE", nil
}
