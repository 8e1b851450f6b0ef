package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/studyd/studyd/domain"
)

// Submit sends cmd to studyd.submit and returns its outcome. It is the client side of
// intake.SubmitService, for studyctl and tests.
func Submit(ctx context.Context, nc *nats.Conn, cmd domain.Command) (Outcome, error) {
	body, err := json.Marshal(cmd)
	if err != nil {
		return Outcome{}, fmt.Errorf("submit: encode: %w", err)
	}
	return SubmitRaw(ctx, nc, ContentTypeJSON, body)
}

// SubmitRaw sends an already encoded command to studyd.submit.
func SubmitRaw(ctx context.Context, nc *nats.Conn, contentType string, body []byte) (Outcome, error) {
	msg := nats.NewMsg(SubmitSubject)
	msg.Data = body
	msg.Header.Set(HeaderContentType, contentType)
	reply, err := nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return Outcome{}, fmt.Errorf("submit: %w", err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		return Outcome{}, fmt.Errorf("submit: %s %s", code, reply.Header.Get(micro.ErrorHeader))
	}
	var out Outcome
	if err := json.Unmarshal(reply.Data, &out); err != nil {
		return Outcome{}, fmt.Errorf("submit: decode outcome: %w", err)
	}
	return out, nil
}
