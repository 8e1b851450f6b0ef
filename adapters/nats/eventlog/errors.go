package eventlog

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/studyd/studyd/eventstore"
)

// jsClusterUnavailable is the server's JSClusterNotAvailErr ("JetStream system
// temporarily unavailable"); nats.go v1.55.0 has no constant for it.
const jsClusterUnavailable jetstream.ErrorCode = 10008

// IsSequenceConflict reports the answer to a publish whose expected last subject
// sequence was not the subject's last: 10071 on R1 streams, 10164 on replicated ones
// (the clustered path checks before proposing). Matched by code, never by text.
func IsSequenceConflict(err error) bool {
	var ae *jetstream.APIError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// isUnavailable reports errors after which the same request may succeed: timeouts (the
// write may or may not have landed: retry with the same Nats-Msg-Id), no responders or
// a lost connection (a leader election, a restart), and the server's own "temporarily
// unavailable" answers.
func isUnavailable(err error) bool {
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse),
		errors.Is(err, nats.ErrDisconnected),
		errors.Is(err, nats.ErrConnectionReconnecting):
		return true
	}
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return ae.Code == http.StatusServiceUnavailable || ae.ErrorCode == jsClusterUnavailable
	}
	return false
}

// storeError wraps a JetStream error of operation op, adding ErrUnavailable when a retry
// may succeed. The cause stays in the chain for errors.Is/As.
func storeError(op string, err error) error {
	if isUnavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, eventstore.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// IsWrongLastSeq reports a compare-and-set failure (10071, or 10164 on replicated
// streams).
func IsWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}
