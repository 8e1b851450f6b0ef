package wire

import (
	"encoding/binary"
	"fmt"
)

// frame is one open container during a scan.
type frame struct {
	left  int    // items (a map's keys and values) still to read
	isMap bool   // a map, whose items alternate key, value
	key   []byte // a map's current key; an array's own key (the key it sits under)
}

// scanMsgpack checks that b is exactly one msgpack value whose containers fit the
// limits: every announced count no larger than the bytes left (an item takes at least
// one), no array longer than its key allows, no map larger than MaxContainerLen, no
// deeper than MaxDepth, every string or extension within the bytes left. It allocates
// nothing, and its error names the key and the offset.
func scanMsgpack(b []byte) error {
	var stack [MaxDepth + 1]frame
	stack[0] = frame{left: 1}
	depth, pos := 0, 0
	for depth >= 0 {
		f := &stack[depth]
		if f.left == 0 {
			depth--
			continue
		}
		f.left--
		isKey := f.isMap && f.left%2 == 1
		start := pos
		if pos >= len(b) {
			return fmt.Errorf("offset %d: the body ends where a value was due", pos)
		}
		c := b[pos]
		pos++
		var skip, lenBytes, items int
		container, isMap := false, false
		switch {
		case c <= 0x7f || c >= 0xe0: // fixint
		case c <= 0x8f:
			container, isMap, items = true, true, int(c&0x0f)
		case c <= 0x9f:
			container, items = true, int(c&0x0f)
		case c <= 0xbf:
			skip = int(c & 0x1f)
		case c == 0xc0 || c == 0xc2 || c == 0xc3:
		case c == 0xc1:
			return fmt.Errorf("offset %d: reserved code 0xc1", start)
		case c == 0xc4 || c == 0xd9:
			lenBytes = 1
		case c == 0xc5 || c == 0xda:
			lenBytes = 2
		case c == 0xc6 || c == 0xdb:
			lenBytes = 4
		case c >= 0xc7 && c <= 0xc9: // ext8/16/32: length, then the type byte
			lenBytes = 1 << (c - 0xc7)
			skip = 1
		case c == 0xca || c == 0xcb:
			skip = 4 << (c - 0xca)
		case c >= 0xcc && c <= 0xcf:
			skip = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3:
			skip = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8: // fixext, plus the type byte
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc || c == 0xde:
			container, isMap, lenBytes = true, c == 0xde, 2
		case c == 0xdd || c == 0xdf:
			container, isMap, lenBytes = true, c == 0xdf, 4
		}
		n := 0
		if lenBytes > 0 {
			if lenBytes > len(b)-pos {
				return fmt.Errorf("offset %d: a %d-byte length is cut off by the end of the body", start, lenBytes)
			}
			switch lenBytes {
			case 1:
				n = int(b[pos])
			case 2:
				n = int(binary.BigEndian.Uint16(b[pos:]))
			case 4:
				n = int(binary.BigEndian.Uint32(b[pos:]))
			}
			pos += lenBytes
		}
		if container {
			if lenBytes > 0 {
				items = n
			}
			ctxKey := f.key
			if err := checkContainer(ctxKey, isMap, items, depth+1, len(b)-pos, start); err != nil {
				return err
			}
			if isMap {
				items *= 2
			}
			if isKey { // a container as a map key: no field of ours has one
				return fmt.Errorf("offset %d: a map key must be a string", start)
			}
			depth++
			stack[depth] = frame{left: items, isMap: isMap}
			if !isMap {
				stack[depth].key = ctxKey
			}
			continue
		}
		skip += n
		if skip > len(b)-pos {
			return fmt.Errorf("offset %d: a value of %d bytes but only %d bytes follow", start, skip, len(b)-pos)
		}
		if isKey {
			f.key = nil // a key that is no string names no field
			if c >= 0xa0 && c <= 0xbf || c == 0xd9 || c == 0xda || c == 0xdb || c >= 0xc4 && c <= 0xc6 {
				f.key = b[pos : pos+skip]
			}
		}
		pos += skip
	}
	if pos != len(b) {
		return fmt.Errorf("offset %d: %d trailing bytes after the command", pos, len(b)-pos)
	}
	return nil
}

// checkContainer checks a container header read at offset off, before it is opened.
func checkContainer(key []byte, isMap bool, n, depth, left, off int) error {
	what, limit := "array", arrayLimitOf(key)
	if isMap {
		what, limit = "map", MaxContainerLen
	}
	name := keyName(key)
	switch {
	case depth > MaxDepth:
		return fmt.Errorf("%soffset %d: nested deeper than %d levels", name, off, MaxDepth)
	case n > limit:
		return fmt.Errorf("%soffset %d: %s header declares %d elements; at most %d are accepted", name, off, what, n, limit)
	case n > left:
		return fmt.Errorf("%soffset %d: %s header declares %d elements but only %d bytes follow", name, off, what, n, left)
	}
	return nil
}
