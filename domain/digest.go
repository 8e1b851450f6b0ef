package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// Digest identifies the command's content: the same command sent again — as JSON or
// msgpack, in any field order — has the same digest; a command whose id is reused for
// another content has another. It is 32 hex digits of sha256 over the command's
// canonical JSON (json.Marshal's bytes, written by canonicalJSON), with its time in UTC.
func (c Command) Digest() string {
	c.At = c.At.UTC()
	b, err := c.canonicalJSON()
	if err != nil {
		// Only a time RFC 3339 cannot write, which Validate refuses first.
		b = []byte(c.CommandID + "\x00" + c.At.String())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// canonicalJSON writes what json.Marshal(c) writes, byte for byte (FuzzCanonicalJSON
// holds it to that), without reflection and without validating each recipe's
// arguments again: the publisher and studyd compute a digest for every command, and
// with encoding/json it was the largest single cost of deciding one.
func (c Command) canonicalJSON() ([]byte, error) {
	at, err := c.At.MarshalJSON()
	if err != nil {
		return nil, err
	}
	size := 256
	for _, r := range c.Recipes {
		size += 64 + len(r.Arguments)
	}
	o := jsonObject{b: make([]byte, 0, size)}
	o.str("type", string(c.Type))
	o.str("command_id", c.CommandID)
	o.str("client_id", string(c.ClientID))
	o.key("at")
	o.b = append(o.b, at...)
	o.strOmitEmpty("firefox_version", c.FirefoxVersion)
	o.strOmitEmpty("runner_status", string(c.RunnerStatus))
	if len(c.Actions) > 0 {
		o.key("actions")
		for i, a := range c.Actions {
			o.b = append(o.b, "[,"[min(i, 1)])
			e := jsonObject{b: o.b}
			e.str("name", a.Name)
			e.str("status", string(a.Status))
			o.b = e.end()
		}
		o.b = append(o.b, ']')
	}
	if len(c.Recipes) > 0 {
		o.key("recipes")
		for i, r := range c.Recipes {
			o.b = append(o.b, "[,"[min(i, 1)])
			e := jsonObject{b: o.b}
			e.key("id")
			e.b = strconv.AppendUint(e.b, uint64(r.ID), 10)
			e.str("action", r.Action)
			e.str("status", string(r.Status))
			e.key("arguments")
			if e.b, err = r.Arguments.AppendEmbedded(e.b); err != nil {
				return nil, err
			}
			o.b = e.end()
		}
		o.b = append(o.b, ']')
	}
	if c.StudiesEnabled {
		o.key("studies_enabled")
		o.b = append(o.b, "true"...)
	}
	if c.Study != nil {
		o.key("study")
		e := jsonObject{b: o.b}
		e.str("object", string(c.Study.Object))
		e.str("key", c.Study.Key)
		o.b = e.end()
	}
	o.strOmitEmpty("reason", string(c.Reason))
	o.strOmitEmpty("addon_id", c.AddonID)
	o.strOmitEmpty("preference", c.Preference)
	if c.Sideload {
		o.key("sideload")
		o.b = append(o.b, "true"...)
	}
	return o.end(), nil
}

// jsonObject writes a JSON object's fields in the order given, as encoding/json does.
type jsonObject struct {
	b      []byte
	fields int
}

// key writes a field's name (a plain ASCII name: never escaped) and its colon.
func (o *jsonObject) key(name string) {
	o.b = append(o.b, "{,"[min(o.fields, 1)], '"')
	o.b = append(append(o.b, name...), '"', ':')
	o.fields++
}

func (o *jsonObject) str(name, v string) {
	o.key(name)
	o.b = appendJSONString(o.b, v)
}

func (o *jsonObject) strOmitEmpty(name, v string) {
	if v != "" {
		o.str(name, v)
	}
}

func (o *jsonObject) end() []byte {
	if o.fields == 0 {
		o.b = append(o.b, '{')
	}
	return append(o.b, '}')
}

// appendJSONString writes s as encoding/json does (HTML escaping on, invalid UTF-8 as
// U+FFFD).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(append(b, s[start:i]...), `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(append(b, s[start:i]...), '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(append(b, s[start:]...), '"')
}

// CheckLimits returns ErrTooLarge if the state holds more than a client may
// (MaxEnrollmentsPerClient enrollments, MaxStateBytes in all).
func (c ClientState) CheckLimits() error {
	if n := len(c.Enrollments); n > MaxEnrollmentsPerClient {
		return fmt.Errorf("%w: the client would hold %d enrollments (at most %d per client)", ErrTooLarge, n, MaxEnrollmentsPerClient)
	}
	if n := c.StateBytes(); n > MaxStateBytes {
		return fmt.Errorf("%w: the client's enrollments would hold %d bytes (at most %d per client; every commit carries them)",
			ErrTooLarge, n, MaxStateBytes)
	}
	return nil
}

// StateBytes is about what the state's enrollments take in a commit: their text and
// values, and a fixed amount for each one's times, numbers and field names.
func (c ClientState) StateBytes() int {
	const perEnrollment = 160
	n := 0
	for _, e := range c.Enrollments {
		n += perEnrollment + len(e.Key) + len(e.Slug) + len(e.Action) + len(e.EnrollmentID) + len(e.Branch) +
			len(e.Preference) + len(e.AddonID) + len(e.AddonVersion) + len(e.Reason) + len(e.PreferenceType) +
			len(e.PreferenceBranchType) + len(e.BranchValue)
		for _, r := range e.Ratios {
			n += 8 + len(r.Slug)
		}
		for _, p := range e.Preferences {
			n += 2 + len(p)
		}
		for _, p := range e.Overridden {
			n += 2 + len(p)
		}
	}
	return n
}
