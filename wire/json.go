package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// scanJSON checks that b, already known to be valid JSON (json.Valid), has containers
// within the limits: no array longer than its key allows, no object with more than
// MaxContainerLen members, no deeper than MaxDepth. It allocates nothing unless a key
// holds an escape, and then only that key's length.
func scanJSON(b []byte) error {
	var stack [MaxDepth + 1]struct {
		frame
		count     int
		expectKey bool
	}
	depth := 0 // stack[0] is the document itself
	value := func(off int) error {
		top := &stack[depth]
		if depth == 0 || top.isMap {
			return nil
		}
		top.count++
		if limit := arrayLimitOf(top.key); top.count > limit {
			return fmt.Errorf("%soffset %d: more than %d elements in an array", keyName(top.key), off, limit)
		}
		return nil
	}
	for i := 0; i < len(b); {
		switch c := b[i]; c {
		case ' ', '\t', '\n', '\r', ':':
			i++
		case ',':
			if stack[depth].isMap {
				stack[depth].expectKey = true
			}
			i++
		case '{', '[':
			if err := value(i); err != nil {
				return err
			}
			ctxKey := stack[depth].key
			if depth+1 > MaxDepth {
				return fmt.Errorf("%soffset %d: nested deeper than %d levels", keyName(ctxKey), i, MaxDepth)
			}
			depth++
			stack[depth].frame = frame{isMap: c == '{', key: ctxKey}
			stack[depth].count, stack[depth].expectKey = 0, c == '{'
			if c == '{' {
				stack[depth].key = nil
			}
			i++
		case '}', ']':
			depth--
			if depth < 0 {
				return fmt.Errorf("offset %d: unbalanced %q", i, c)
			}
			i++
		case '"':
			end := stringEnd(b, i)
			top := &stack[depth]
			if top.isMap && top.expectKey {
				top.expectKey = false
				top.count++
				if top.count > MaxContainerLen {
					return fmt.Errorf("offset %d: more than %d members in an object", i, MaxContainerLen)
				}
				top.key = jsonKey(b[i:end])
			} else if err := value(i); err != nil {
				return err
			}
			i = end
		default: // a number, true, false or null
			if err := value(i); err != nil {
				return err
			}
			for i < len(b) && bytes.IndexByte([]byte(",:]} \t\r\n"), b[i]) < 0 {
				i++
			}
		}
	}
	return nil
}

// stringEnd returns the offset just past the JSON string starting at b[i] == '"'.
func stringEnd(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// jsonKey returns a quoted key's name, unescaped when it holds an escape (encoding/json
// would match "rec\u0069pes" to recipes).
func jsonKey(quoted []byte) []byte {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return inner
	}
	return []byte(s)
}

func keyName(key []byte) string {
	if len(key) == 0 || len(key) > 64 {
		return ""
	}
	return fmt.Sprintf("%q: ", key)
}
