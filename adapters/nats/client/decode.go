package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/studyd/studyd/domain"
)

// ErrMalformed: a command's bytes are not a single valid JSON or msgpack command.
// The texts of ErrMalformed and ErrUnsupportedContent are kept from before the split of
// adapters/nats: they are part of recorded rejections.
var ErrMalformed = errors.New("natsadapter: malformed command")

// ErrUnsupportedContent: a command arrived with a Content-Type studyd does not read.
var ErrUnsupportedContent = errors.New("natsadapter: unsupported content type")

// DecodeCommand decodes one command body by its Content-Type: msgpack
// (application/msgpack) or JSON (application/json). Without a Content-Type a body whose
// first non-blank byte is '{' is JSON — a msgpack command is a map and never starts so —
// and anything else msgpack, so `nats pub` works with or without the header. Unknown
// fields and trailing bytes are errors, so that a misspelt field is reported instead of
// silently dropped.
func DecodeCommand(contentType string, body []byte) (domain.Command, error) {
	var cmd domain.Command
	if contentType == "" && looksLikeJSON(body) {
		contentType = ContentTypeJSON
	}
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
			return domain.Command{}, fmt.Errorf("%w: not a msgpack command (%s) nor a JSON object; send JSON with header %s: %s",
				ErrMalformed, strings.TrimPrefix(err.Error(), "msgpack: "), HeaderContentType, ContentTypeJSON)
		}
		if r.Len() != 0 {
			return domain.Command{}, fmt.Errorf("%w: msgpack: %d trailing bytes after the command", ErrMalformed, r.Len())
		}
	default:
		return domain.Command{}, fmt.Errorf("%w: %q (use %s or %s)", ErrUnsupportedContent, contentType, ContentTypeJSON, ContentTypeMsgpack)
	}
	return cmd, nil
}

// looksLikeJSON reports whether body starts, after blanks, with a JSON object.
func looksLikeJSON(body []byte) bool {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}

// EncodeCommand is the native (msgpack) form of a command.
func EncodeCommand(cmd domain.Command) ([]byte, error) {
	b, err := msgpack.Marshal(&cmd)
	if err != nil {
		return nil, fmt.Errorf("encode command %s: %w", cmd.CommandID, err)
	}
	return b, nil
}
