package natsadapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/studyd/studyd/domain"
)

// ErrMalformed: a command's bytes are not a single valid JSON or msgpack command.
var ErrMalformed = errors.New("natsadapter: malformed command")

// ErrUnsupportedContent: a command arrived with a Content-Type studyd does not read.
var ErrUnsupportedContent = errors.New("natsadapter: unsupported content type")

// DecodeCommand decodes one command body by its Content-Type: msgpack (the default, or
// application/msgpack) or JSON (application/json). Unknown fields and trailing bytes
// are errors, so that a misspelt field is reported instead of silently dropped.
func DecodeCommand(contentType string, body []byte) (domain.Command, error) {
	var cmd domain.Command
	switch contentType {
	case ContentTypeJSON:
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cmd); err != nil {
			return domain.Command{}, fmt.Errorf("%w: json: %w", ErrMalformed, err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return domain.Command{}, fmt.Errorf("%w: json: trailing data after the command", ErrMalformed)
		}
	case "", ContentTypeMsgpack:
		r := bytes.NewReader(body)
		dec := msgpack.NewDecoder(r)
		dec.DisallowUnknownFields(true)
		if err := dec.Decode(&cmd); err != nil {
			return domain.Command{}, fmt.Errorf("%w: msgpack: %w", ErrMalformed, err)
		}
		if r.Len() != 0 {
			return domain.Command{}, fmt.Errorf("%w: msgpack: %d trailing bytes after the command", ErrMalformed, r.Len())
		}
	default:
		return domain.Command{}, fmt.Errorf("%w: %q (use %s or %s)", ErrUnsupportedContent, contentType, ContentTypeJSON, ContentTypeMsgpack)
	}
	return cmd, nil
}

// EncodeCommand is the native (msgpack) form of a command.
func EncodeCommand(cmd domain.Command) ([]byte, error) {
	b, err := msgpack.Marshal(&cmd)
	if err != nil {
		return nil, fmt.Errorf("encode command %s: %w", cmd.CommandID, err)
	}
	return b, nil
}
