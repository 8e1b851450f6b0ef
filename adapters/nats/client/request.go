package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// The request/reply of studyd's micro endpoints (queries, rebuild).

// QueryError is an error answer of a studyd micro endpoint (its Nats-Service-Error
// headers).
type QueryError struct {
	Code        string
	Description string
}

func (e *QueryError) Error() string { return fmt.Sprintf("%s (code %s)", e.Description, e.Code) }

// request sends a JSON request to a studyd micro endpoint and decodes the JSON answer
// into out; an error answer comes back as *QueryError. ctx bounds the wait (a default
// of 10 s applies if it has no deadline).
func request(ctx context.Context, nc *nats.Conn, subject string, body, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	msg, err := nc.RequestWithContext(ctx, subject, b)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("request %s: nothing serves it (is studyd running?): %w", subject, err)
		}
		return fmt.Errorf("request %s: %w", subject, err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		return &QueryError{Code: code, Description: msg.Header.Get(micro.ErrorHeader)}
	}
	if err := json.Unmarshal(msg.Data, out); err != nil {
		return fmt.Errorf("decode %s answer: %w", subject, err)
	}
	return nil
}
