package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/eventstore"
)

// The rejection policy: which commands studyd refuses, with what code, and what it
// records. Every way a command comes in (the STUDYD_CMDS intake, the studyd.submit
// endpoint) goes through Admit and Reject, so that they refuse alike.

// Incoming is a command as it arrived, before it is decoded.
type Incoming struct {
	Subject     string          // where it arrived: studyd.cmd.<client>, studyd.submit
	Client      domain.ClientID // the client its subject names; "" when the subject names none
	ContentType string
	Payload     []byte
	Seq         uint64 // its STUDYD_CMDS sequence; 0 if it was not queued
}

// Decoder turns a command's bytes into a command by their content type (the wire
// codec). Its errors wrap domain.ErrMalformed or domain.ErrUnsupportedContent.
type Decoder func(contentType string, body []byte) (domain.Command, error)

// Admit decodes in with decode and checks what can be checked before deciding: its
// size, its encoding, and that it goes to the client it names. A refusal is an error
// for which IsRejection holds; the command is returned as far as it was decoded.
func Admit(in Incoming, decode Decoder) (domain.Command, error) {
	if len(in.Payload) > domain.MaxCommandPayload {
		return domain.Command{ClientID: in.Client}, fmt.Errorf("%w: command is %d bytes (at most %d)",
			domain.ErrOversize, len(in.Payload), domain.MaxCommandPayload)
	}
	cmd, err := decode(in.ContentType, in.Payload)
	if err != nil {
		return domain.Command{ClientID: in.Client}, err
	}
	// The command id goes into headers and keys on the way in (Nats-Msg-Id) and into
	// the refusal's own record: check it before anything is built from it.
	if err := domain.ValidateCommandID(cmd.CommandID); err != nil {
		if len(cmd.CommandID) > domain.MaxCommandIDLen {
			cmd.CommandID = strings.ToValidUTF8(cmd.CommandID[:domain.MaxCommandIDLen], "") // recorded as far as it is usable
		}
		return cmd, err
	}
	switch {
	case in.Client != "" && cmd.ClientID != in.Client:
		return cmd, fmt.Errorf("%w: subject is for client %q but the command's client_id is %q (publish to studyd.cmd.%s)",
			domain.ErrSubjectMismatch, in.Client, cmd.ClientID, cmd.ClientID)
	case in.Client == "":
		// Nothing routes it yet: its own client id must be usable as a subject token.
		if err := cmd.ClientID.Validate(); err != nil {
			return cmd, err
		}
	}
	return cmd, nil
}

// Reject records the refusal of in (cmd as far as it was decoded, cause the error from
// Admit or Handle) in the log, and returns the rejection with its position. A client
// id that is not a valid subject token is recorded as no client (studyd.rej._).
func (h *Handler) Reject(ctx context.Context, in Incoming, cmd domain.Command, cause error) (eventstore.Rejection, uint64, error) {
	client := cmd.ClientID
	if client == "" {
		client = in.Client
	}
	if client.Validate() != nil {
		client = ""
	}
	r := eventstore.Rejection{
		CommandID: cmd.CommandID,
		Client:    client,
		Subject:   in.Subject,
		Code:      domain.ClassifyRejection(cause),
		Error:     cause.Error(),
		At:        time.Now().UTC(),
		Payload:   in.Payload, // the codec keeps the first MaxRejectedPayload bytes
		StreamSeq: in.Seq,
	}
	pos, err := h.store.Reject(ctx, r)
	if err != nil {
		return eventstore.Rejection{}, 0, fmt.Errorf("record rejection of %s: %w", in.Subject, err)
	}
	h.rememberRefusal(ctx, r, pos)
	return r, pos, nil
}

// rememberRefusal writes the recorded rejection r, at pos, to the refusal index if it
// is a refusal by decision, so that Rejected finds it when the command comes back.
// Other refusals are not looked up, so indexing them would only cost a write each. A failure is logged, not
// returned: the refusal is recorded, which is what the caller needs, and an index that
// misses it only means a resend of the command is refused and recorded again — a
// second record of the same refusal, as before the index existed. The write replaces
// the id's earlier refusal: two refusals of one id recorded at once (on two instances)
// may leave the index at the earlier of the two, a refusal of that command all the same.
func (h *Handler) rememberRefusal(ctx context.Context, r eventstore.Rejection, pos uint64) {
	if h.refusals == nil || !r.Code.ByDecision() || r.CommandID == "" || r.Client == "" {
		return
	}
	if err := h.refusals.RememberRefusal(ctx, r.Client, r.CommandID, pos); err != nil {
		h.log.Warn("refusal recorded but not indexed: a resend of the command will be recorded again",
			"client", r.Client, "command_id", r.CommandID, "seq", pos, "err", err)
	}
}
