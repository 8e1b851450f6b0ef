package recipe

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// embeddedJSON memoizes AppendEmbedded: canonical JSON → as embedded by encoding/json.
var embeddedJSON = memo[string]{maxBytes: memoBytes}

// AppendEmbedded appends a to dst exactly as encoding/json writes it inside another
// value: null when empty, otherwise compacted with <, >, & and U+2028/U+2029 escaped.
// It fails, as json.Marshal would, when a is not valid JSON. It lets a command's digest
// be written without encoding/json re-validating the same arguments for every client.
func (a Arguments) AppendEmbedded(dst []byte) ([]byte, error) {
	if a == "" {
		return append(dst, "null"...), nil
	}
	if s, ok := embeddedJSON.get(string(a)); ok {
		return append(dst, s...), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(a)); err != nil { // Compact checks the JSON too
		return dst, fmt.Errorf("recipe arguments: %w", err)
	}
	var esc bytes.Buffer
	json.HTMLEscape(&esc, buf.Bytes())
	s := esc.String()
	embeddedJSON.put(string(a), s)
	return append(dst, s...), nil
}
