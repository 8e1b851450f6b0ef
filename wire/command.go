package wire

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

// Content types of a command body (header Content-Type).
const (
	ContentTypeJSON    = "application/json"
	ContentTypeMsgpack = "application/msgpack"
)

// Errors DecodeCommand returns (wrapped).
var (
	// ErrMalformed: the bytes are not a single valid JSON or msgpack command within
	// the limits.
	ErrMalformed = errors.New("wire: malformed command")
	// ErrUnsupportedContent: a Content-Type studyd does not read.
	ErrUnsupportedContent = errors.New("wire: unsupported content type")
	// ErrTooLarge: a body larger than MaxBody.
	ErrTooLarge = errors.New("wire: body too large")
)

// DecodeCommand decodes one command body by its Content-Type: msgpack
// (application/msgpack) or JSON (application/json). Without a Content-Type a body whose
// first non-blank byte is '{' is JSON — a msgpack command is a map and never starts so —
// and anything else msgpack, so `nats pub` works with or without the header. Unknown
// fields and trailing bytes are errors, so that a misspelt field is reported instead of
// silently dropped.
//
// Before anything is decoded the body's structure is checked against the limits (see
// the package doc): a hostile header announcing four billion recipes is refused with
// its offset, never allocated for.
//
// A panic of the underlying decoders is an answer too: msgpack v5.4.1 panics on a nil
// `at` ("reflect: call of reflect.Value.IsNil on struct Value"), which before this
// recovery killed studyd with a five-byte body, again after every restart.
func DecodeCommand(contentType string, body []byte) (cmd domain.Command, err error) {
	defer func() {
		if r := recover(); r != nil {
			cmd, err = domain.Command{}, fmt.Errorf("%w: the decoder failed on this body (%v)", ErrMalformed, r)
		}
	}()
	if len(body) > MaxBody {
		return domain.Command{}, fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(body), MaxBody)
	}
	if contentType == "" && looksLikeJSON(body) {
		contentType = ContentTypeJSON
	}
	switch contentType {
	case ContentTypeJSON:
		if !json.Valid(body) {
			// Decode for encoding/json's own words (it stops at the first error, and
			// json.Valid has proved there is one before anything is built).
			var v struct{}
			err := json.Unmarshal(body, &v)
			if err == nil {
				err = errors.New("invalid JSON")
			}
			return domain.Command{}, fmt.Errorf("%w: json: %s", ErrMalformed, strings.TrimPrefix(err.Error(), "json: "))
		}
		if err := scanJSON(body); err != nil {
			return domain.Command{}, fmt.Errorf("%w: json: %w", ErrMalformed, err)
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cmd); err != nil {
			// encoding/json's messages mostly say "json: " themselves; say it once.
			return domain.Command{}, fmt.Errorf("%w: json: %s", ErrMalformed, strings.TrimPrefix(err.Error(), "json: "))
		}
		if _, err := dec.Token(); err != io.EOF {
			return domain.Command{}, fmt.Errorf("%w: json: trailing data after the command", ErrMalformed)
		}
	case "", ContentTypeMsgpack:
		if err := scanMsgpack(body); err != nil {
			return domain.Command{}, fmt.Errorf("%w: msgpack: %w", ErrMalformed, err)
		}
		r := bytes.NewReader(body)
		dec := msgpack.NewDecoder(r)
		dec.DisallowUnknownFields(true)
		if err := dec.Decode(&cmd); err != nil {
			return domain.Command{}, fmt.Errorf("%w: not a msgpack command (%s) nor a JSON object; send JSON with header Content-Type: %s",
				ErrMalformed, strings.TrimPrefix(err.Error(), "msgpack: "), ContentTypeJSON)
		}
		if r.Len() != 0 {
			return domain.Command{}, fmt.Errorf("%w: msgpack: %d trailing bytes after the command", ErrMalformed, r.Len())
		}
	default:
		return domain.Command{}, fmt.Errorf("%w: %q (use %s or %s)", ErrUnsupportedContent, contentType, ContentTypeJSON, ContentTypeMsgpack)
	}
	return cmd, nil
}

// CheckJSON checks a JSON request body (a query, a rebuild request) against the same
// structural limits, so that a handler may then decode it with encoding/json.
func CheckJSON(body []byte) error {
	if len(body) > MaxBody {
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(body), MaxBody)
	}
	if !json.Valid(body) {
		return fmt.Errorf("%w: json: not valid JSON", ErrMalformed)
	}
	if err := scanJSON(body); err != nil {
		return fmt.Errorf("%w: json: %w", ErrMalformed, err)
	}
	return nil
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
