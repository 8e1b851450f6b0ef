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

// IsConflict reports a failed compare-and-set: a publish whose expected last subject
// sequence was not the subject's last (10071 on R1 streams, 10164 on replicated ones,
// where the clustered path checks before proposing; matched by code, never by text),
// or the KV layer's translation of it (a Create on an existing key, an Update on a
// stale revision). It is the one such check: the store's append, the checkpoints and
// the projector's views and lease all use it.
func IsConflict(err error) bool {
	var ae *jetstream.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
	}
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
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

// isTooLarge reports a message larger than the server (max_payload) or the stream
// (max_msg_size) accepts: the same message will never fit, so it is not retryable.
func isTooLarge(err error) bool {
	var ae *jetstream.APIError
	return errors.Is(err, nats.ErrMaxPayload) ||
		errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum
}

// storeError wraps a JetStream error of operation op, adding ErrUnavailable when a retry
// may succeed. The cause stays in the chain for errors.Is/As.
func storeError(op string, err error) error {
	if isTooLarge(err) {
		return fmt.Errorf("%s: %w: %w", op, eventstore.ErrTooLarge, err)
	}
	if isUnavailable(err) {
		return fmt.Errorf("%s: %w: %w", op, eventstore.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
