package client

import (
	"errors"
	"fmt"
	"strings"

	"github.com/studyd/studyd/domain"
	"github.com/studyd/studyd/wire"
)

// ErrMalformed: a command's bytes are not a single valid JSON or msgpack command.
// Errors of DecodeCommand: the domain's, so that the app layer classifies a refusal
// without knowing the codec.
var (
	// ErrMalformed: a command's bytes are not a single valid JSON or msgpack command.
	ErrMalformed = domain.ErrMalformed
	// ErrUnsupportedContent: a command arrived with a Content-Type studyd does not read.
	ErrUnsupportedContent = domain.ErrUnsupportedContent
)

// DecodeCommand decodes one command body by its Content-Type: msgpack
// (application/msgpack) or JSON (application/json). Without a Content-Type a body whose
// first non-blank byte is '{' is JSON — a msgpack command is a map and never starts so —
// and anything else msgpack, so `nats pub` works with or without the header. Unknown
// fields and trailing bytes are errors, so that a misspelt field is reported instead of
// silently dropped.
//
// It is wire.DecodeCommand, bounded: lengths, counts and depth are checked against the
// bytes present and the documented limits before anything is allocated, and a refusal
// names the field and the offset. Errors wrap ErrMalformed (also for a body over
// wire.MaxBody) or ErrUnsupportedContent, with this package's texts.
func DecodeCommand(contentType string, body []byte) (domain.Command, error) {
	cmd, err := wire.DecodeCommand(contentType, body)
	switch {
	case err == nil:
		return cmd, nil
	case errors.Is(err, wire.ErrUnsupportedContent):
		return domain.Command{}, fmt.Errorf("%w%s", ErrUnsupportedContent, strings.TrimPrefix(err.Error(), wire.ErrUnsupportedContent.Error()))
	case errors.Is(err, wire.ErrMalformed):
		return domain.Command{}, fmt.Errorf("%w%s", ErrMalformed, strings.TrimPrefix(err.Error(), wire.ErrMalformed.Error()))
	default:
		return domain.Command{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
}

// EncodeCommand is the native (msgpack) form of a command.
func EncodeCommand(cmd domain.Command) ([]byte, error) { return wire.EncodeCommand(cmd) }
