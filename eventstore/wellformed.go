package eventstore

import (
	"encoding/binary"
	"fmt"
)

// wellFormed checks that b is exactly one msgpack value and that every array and map
// claims no more elements than there are bytes left to hold them. It runs before the
// reflective decode because msgpack v5.4.1 trusts a claimed array length and allocates
// it up front (its alloc limit never engages), so 5 hostile bytes could ask for
// gigabytes. The walk is iterative (no recursion depth to exhaust) and allocates nothing.
func wellFormed(b []byte) error {
	pos := 0
	pending := 1 // values still to read
	for pending > 0 {
		if pending > len(b)-pos {
			return fmt.Errorf("msgpack: %d values announced but only %d bytes left at offset %d", pending, len(b)-pos, pos)
		}
		pending--
		c := b[pos]
		pos++
		var skip, items, lenBytes int
		switch {
		case c <= 0x7f || c >= 0xe0: // positive and negative fixint
		case c <= 0x8f: // fixmap
			items = 2 * int(c&0x0f)
		case c <= 0x9f: // fixarray
			items = int(c & 0x0f)
		case c <= 0xbf: // fixstr
			skip = int(c & 0x1f)
		case c == 0xc0 || c == 0xc2 || c == 0xc3: // nil, false, true
		case c == 0xc1:
			return fmt.Errorf("msgpack: reserved code 0xc1 at offset %d", pos-1)
		case c == 0xc4 || c == 0xd9: // bin8, str8
			lenBytes = 1
		case c == 0xc5 || c == 0xda: // bin16, str16
			lenBytes = 2
		case c == 0xc6 || c == 0xdb: // bin32, str32
			lenBytes = 4
		case c == 0xc7, c == 0xc8, c == 0xc9: // ext8/16/32: length, then type byte
			lenBytes = 1 << (c - 0xc7)
			skip = 1
		case c == 0xca, c == 0xcb: // float32, float64
			skip = 4 << (c - 0xca)
		case c >= 0xcc && c <= 0xcf: // uint8..64
			skip = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3: // int8..64
			skip = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8: // fixext1..16, plus the type byte
			skip = 1 + 1<<(c-0xd4)
		case c == 0xdc || c == 0xde: // array16, map16
			n, err := readLen(b, pos, 2)
			if err != nil {
				return err
			}
			pos += 2
			items = n
			if c == 0xde {
				items *= 2
			}
		case c == 0xdd || c == 0xdf: // array32, map32
			n, err := readLen(b, pos, 4)
			if err != nil {
				return err
			}
			pos += 4
			items = n
			if c == 0xdf {
				items *= 2
			}
		}
		if lenBytes > 0 {
			n, err := readLen(b, pos, lenBytes)
			if err != nil {
				return err
			}
			pos += lenBytes
			skip += n
		}
		if skip > len(b)-pos {
			return fmt.Errorf("msgpack: value at offset %d needs %d bytes, %d left", pos, skip, len(b)-pos)
		}
		pos += skip
		pending += items
	}
	if pos != len(b) {
		return fmt.Errorf("%d trailing bytes after the envelope", len(b)-pos)
	}
	return nil
}

func readLen(b []byte, pos, size int) (int, error) {
	if len(b)-pos < size {
		return 0, fmt.Errorf("msgpack: truncated length at offset %d", pos)
	}
	switch size {
	case 1:
		return int(b[pos]), nil
	case 2:
		return int(binary.BigEndian.Uint16(b[pos:])), nil
	}
	return int(binary.BigEndian.Uint32(b[pos:])), nil
}
