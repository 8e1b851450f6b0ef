package eventlog

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/eventstore"
)

func TestErrorTranslation(t *testing.T) {
	// nats.go wraps the server's answer as "nats: %w"; match through the wrapping.
	api := func(code int, errCode jetstream.ErrorCode) error {
		return fmt.Errorf("nats: %w", &jetstream.APIError{Code: code, ErrorCode: errCode, Description: "whatever the server says"})
	}
	tests := []struct {
		name        string
		err         error
		conflict    bool
		unavailable bool
	}{
		{"wrong last sequence", api(400, jetstream.JSErrCodeStreamWrongLastSequence), true, false},
		{"wrong last sequence, clustered", api(400, jetstream.JSErrCodeStreamWrongLastSequenceConstant), true, false},
		{"cluster temporarily unavailable", api(503, 10008), false, true},
		{"any 503", api(503, 10023), false, true},
		{"stream not found", api(404, jetstream.JSErrCodeStreamNotFound), false, false},
		{"message too big", api(400, jetstream.JSErrCodeStreamMessageExceedsMaximum), false, false},
		{"timeout", nats.ErrTimeout, false, true},
		{"deadline", fmt.Errorf("publish: %w", context.DeadlineExceeded), false, true},
		{"no responders", nats.ErrNoResponders, false, true},
		{"no stream response", jetstream.ErrNoStreamResponse, false, true},
		{"reconnecting", nats.ErrConnectionReconnecting, false, true},
		{"cancelled by the caller", context.Canceled, false, false},
		{"closed for good", nats.ErrConnectionClosed, false, false},
		{"kv create on an existing key", fmt.Errorf("create: %w", jetstream.ErrKeyExists), true, false},
		{"kv update on a stale revision", jetstream.ErrKeyRevisionMismatch, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsConflict(tt.err); got != tt.conflict {
				t.Errorf("IsConflict: got %t, want %t", got, tt.conflict)
			}
			if got := isUnavailable(tt.err); got != tt.unavailable {
				t.Errorf("isUnavailable: got %t, want %t", got, tt.unavailable)
			}
			wrapped := storeError("op", tt.err)
			if got := errors.Is(wrapped, eventstore.ErrUnavailable); got != tt.unavailable {
				t.Errorf("storeError is ErrUnavailable: got %t, want %t", got, tt.unavailable)
			}
			if !errors.Is(wrapped, tt.err) {
				t.Errorf("storeError lost the cause %v", tt.err)
			}
		})
	}
}
