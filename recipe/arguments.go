// Package recipe holds a Normandy recipe's own data: its arguments exactly as Normandy
// published them (canonical JSON, carried as a JSON object or a msgpack map) and the
// fields of them studyd reads (Study, its branches and preferences). It knows nothing
// of clients, commands or events; the domain decides what a recipe means.
package recipe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/vmihailenco/msgpack/v5"
)

// MaxArgumentsLen bounds one recipe's arguments in canonical JSON. It is a bound on a
// hostile client, not a schema: real recipes' arguments are a few hundred bytes, and
// they are recorded in the log with the recipe's uptake.
const MaxArgumentsLen = 64 << 10

// Arguments is a recipe's arguments object exactly as Normandy's server published
// it (for an add-on study, with the install outcome the client adds), held as canonical
// JSON: object keys sorted, no insignificant space, numbers as written. It is the
// recipe's data, not studyd's schema: every field of every action is accepted and kept,
// and only the fields studyd uses are read (Study). Commands carry it as a
// JSON object or a msgpack map; "" is a recipe without arguments.
type Arguments string

// New returns v (typically a map or a struct with json tags) as recipe
// arguments.
func New(v any) (Arguments, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("recipe arguments: %w", err)
	}
	return Parse(b)
}

// Must is New for arguments built by the program itself
// (examples, tests, the simulator); it panics if v has no JSON form.
func Must(v any) Arguments {
	a, err := New(v)
	if err != nil {
		panic(err)
	}
	return a
}

// Parse canonicalises one JSON value. null is "".
func Parse(b []byte) (Arguments, error) {
	if a, ok := parsedJSON.getBytes(b); ok {
		return a, nil
	}
	a, err := parse(b)
	if err == nil {
		parsedJSON.put(string(b), a)
	}
	return a, err
}

func parse(b []byte) (Arguments, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("recipe arguments: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errors.New("recipe arguments: trailing data after the arguments")
	}
	return canonical(v)
}

// canonical encodes a decoded JSON value: encoding/json sorts map keys and writes a
// json.Number as it was read.
func canonical(v any) (Arguments, error) {
	if v == nil {
		return "", nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("recipe arguments: %w", err)
	}
	return Arguments(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// MarshalJSON writes the arguments as the JSON value they are (null when empty).
func (a Arguments) MarshalJSON() ([]byte, error) {
	if a == "" {
		return []byte("null"), nil
	}
	return []byte(a), nil
}

// UnmarshalJSON accepts any JSON value and keeps it whole, canonicalised.
func (a *Arguments) UnmarshalJSON(b []byte) error {
	v, err := Parse(b)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// EncodeMsgpack writes the arguments as a msgpack value (maps with sorted keys).
func (a Arguments) EncodeMsgpack(enc *msgpack.Encoder) error {
	if a == "" {
		return enc.EncodeNil()
	}
	// Sorting stays on for the rest of enc's value, as it always did.
	enc.SetSortMapKeys(true)
	b, ok := encodedMsgp.get(string(a))
	if !ok {
		var err error
		if b, err = a.encodeMsgpack(); err != nil {
			return err
		}
		encodedMsgp.put(string(a), b)
	}
	return msgpack.RawMessage(b).EncodeMsgpack(enc)
}

func (a Arguments) encodeMsgpack() ([]byte, error) {
	dec := json.NewDecoder(strings.NewReader(string(a)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("recipe arguments: %w", err)
	}
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(fromJSONNumbers(v)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeMsgpack reads any msgpack value whose map keys are strings and keeps it whole,
// as canonical JSON.
func (a *Arguments) DecodeMsgpack(dec *msgpack.Decoder) error {
	raw, err := dec.DecodeRaw()
	if err != nil {
		return err
	}
	if out, ok := decodedMsgp.getBytes(raw); ok {
		*a = out
		return nil
	}
	out, err := decodeMsgpack(raw)
	if err != nil {
		return err
	}
	decodedMsgp.put(string(raw), out)
	*a = out
	return nil
}

// decodeMsgpack decodes one msgpack value (raw, whole) as canonical JSON.
func decodeMsgpack(raw []byte) (Arguments, error) {
	v, err := msgpack.NewDecoder(bytes.NewReader(raw)).DecodeInterface()
	if err != nil {
		return "", err
	}
	if v, err = toJSONValue(v); err != nil {
		return "", err
	}
	return canonical(v)
}

// fromJSONNumbers turns json.Numbers into msgpack integers or floats.
func fromJSONNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fromJSONNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fromJSONNumbers(e)
		}
	}
	return v
}

// toJSONValue checks that a decoded msgpack value has a JSON form: string map keys,
// finite numbers. Integers keep their exact decimal form.
func toJSONValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, string:
		return v, nil
	case int8, int16, int32, int64, uint8, uint16, uint32, uint64:
		return json.Number(fmt.Sprint(x)), nil
	case float32:
		return toJSONValue(float64(x))
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, invalidf("recipe arguments hold %v, which has no JSON form", x)
		}
		return x, nil
	case []byte:
		return string(x), nil
	case map[string]any:
		for k, e := range x {
			j, err := toJSONValue(e)
			if err != nil {
				return nil, err
			}
			x[k] = j
		}
		return x, nil
	case []any:
		for i, e := range x {
			j, err := toJSONValue(e)
			if err != nil {
				return nil, err
			}
			x[i] = j
		}
		return x, nil
	}
	return nil, invalidf("recipe arguments hold a %T, which has no JSON form (map keys must be strings)", v)
}

// ErrInvalid is wrapped by every error of arguments that fail a check of this package
// (a value without a JSON form, a field of the wrong type, an unknown preference type).
// The error's text is the problem alone; the domain wraps it into its own ErrInvalid.
var ErrInvalid = errors.New("recipe: invalid")

// invalidError is a failed check: its text says what is wrong, and it matches
// ErrInvalid and whatever its cause wraps.
type invalidError struct{ err error }

func invalidf(format string, a ...any) error {
	return &invalidError{err: fmt.Errorf(format, a...)}
}

func (e *invalidError) Error() string        { return e.err.Error() }
func (e *invalidError) Unwrap() error        { return e.err }
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }
