package eventstore_test

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// mpNode is one parsed msgpack value, kept close to its wire form so that tests can
// write the same commit the many ways msgpack allows (other field orders, wider
// headers, bin for str, other timestamp sizes) that the encoder itself never uses.
type mpNode struct {
	kind  byte   // 'm' map, 'a' array, 's' str, 'b' bin, 'u' uint, 'i' int, 'n' nil, 't' bool, 'x' ext, 'f' float, 'r' raw
	raw   []byte // str/bin bytes, ext data, float bits, or (raw) bytes written as they are
	u     uint64 // uint value, int value (as bits), bool (0/1), ext type (as byte)
	items []mpNode
}

func parseMP(b []byte) (mpNode, []byte, error) {
	if len(b) == 0 {
		return mpNode{}, nil, fmt.Errorf("truncated")
	}
	c, b := b[0], b[1:]
	take := func(n int) ([]byte, error) {
		if n > len(b) {
			return nil, fmt.Errorf("truncated")
		}
		p := b[:n]
		b = b[n:]
		return p, nil
	}
	be := func(n int) (uint64, error) {
		p, err := take(n)
		if err != nil {
			return 0, err
		}
		var v uint64
		for _, x := range p {
			v = v<<8 | uint64(x)
		}
		return v, nil
	}
	items := func(kind byte, n int) (mpNode, []byte, error) {
		nd := mpNode{kind: kind}
		if kind == 'm' {
			n *= 2
		}
		for range n {
			it, rest, err := parseMP(b)
			if err != nil {
				return mpNode{}, nil, err
			}
			nd.items, b = append(nd.items, it), rest
		}
		return nd, b, nil
	}
	switch {
	case c <= 0x7f:
		return mpNode{kind: 'u', u: uint64(c)}, b, nil
	case c >= 0xe0:
		return mpNode{kind: 'i', u: uint64(int64(int8(c)))}, b, nil
	case c <= 0x8f:
		return items('m', int(c&0x0f))
	case c <= 0x9f:
		return items('a', int(c&0x0f))
	case c <= 0xbf:
		p, err := take(int(c & 0x1f))
		return mpNode{kind: 's', raw: p}, b, err
	}
	switch c {
	case 0xc0:
		return mpNode{kind: 'n'}, b, nil
	case 0xc2, 0xc3:
		return mpNode{kind: 't', u: uint64(c - 0xc2)}, b, nil
	case 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb:
		size := map[byte]int{0xc4: 1, 0xc5: 2, 0xc6: 4, 0xd9: 1, 0xda: 2, 0xdb: 4}[c]
		n, err := be(size)
		if err != nil {
			return mpNode{}, nil, err
		}
		p, err := take(int(n))
		kind := byte('s')
		if c < 0xd9 {
			kind = 'b'
		}
		return mpNode{kind: kind, raw: p}, b, err
	case 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		var n uint64
		var err error
		if c <= 0xc9 {
			n, err = be(1 << (c - 0xc7))
		} else {
			n = 1 << (c - 0xd4)
		}
		if err != nil {
			return mpNode{}, nil, err
		}
		typ, err := be(1)
		if err != nil {
			return mpNode{}, nil, err
		}
		p, err := take(int(n))
		return mpNode{kind: 'x', u: typ, raw: p}, b, err
	case 0xca, 0xcb:
		p, err := take(4 << (c - 0xca))
		return mpNode{kind: 'f', raw: p}, b, err
	case 0xcc, 0xcd, 0xce, 0xcf:
		v, err := be(1 << (c - 0xcc))
		return mpNode{kind: 'u', u: v}, b, err
	case 0xd0, 0xd1, 0xd2, 0xd3:
		size := 1 << (c - 0xd0)
		v, err := be(size)
		shift := 64 - 8*size
		return mpNode{kind: 'i', u: uint64(int64(v<<shift) >> shift)}, b, err
	case 0xdc, 0xdd:
		n, err := be(2 << (c - 0xdc))
		if err != nil {
			return mpNode{}, nil, err
		}
		return items('a', int(n))
	case 0xde, 0xdf:
		n, err := be(2 << (c - 0xde))
		if err != nil {
			return mpNode{}, nil, err
		}
		return items('m', int(n))
	}
	return mpNode{}, nil, fmt.Errorf("code %#x", c)
}

// mpStyle says how writeMP spells each kind of value; the zero style is the compact
// form msgpack itself writes.
type mpStyle struct {
	wide      bool // 32-bit map/array/str headers, 64-bit integers
	strAsBin  bool // strings as bin (msgpack decodes bin into a string field)
	ext8Times bool // timestamps under an ext8 header instead of fixext
	time12    bool // every timestamp in its 12-byte form
}

func writeMP(b []byte, n mpNode, st mpStyle) []byte {
	hdr := func(fix, fixMax byte, c16, c32 byte, l int) []byte {
		switch {
		case !st.wide && l <= int(fixMax):
			return append(b, fix|byte(l))
		case !st.wide && l <= 0xffff:
			return binary.BigEndian.AppendUint16(append(b, c16), uint16(l))
		}
		return binary.BigEndian.AppendUint32(append(b, c32), uint32(l))
	}
	switch n.kind {
	case 'm':
		b = hdr(0x80, 15, 0xde, 0xdf, len(n.items)/2)
		for _, it := range n.items {
			b = writeMP(b, it, st)
		}
		return b
	case 'a':
		b = hdr(0x90, 15, 0xdc, 0xdd, len(n.items))
		for _, it := range n.items {
			b = writeMP(b, it, st)
		}
		return b
	case 's', 'b':
		switch {
		case n.kind == 'b' || st.strAsBin:
			if st.wide {
				b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(len(n.raw)))
			} else {
				b = append(b, 0xc4, byte(len(n.raw)))
			}
		default:
			b = hdr(0xa0, 31, 0xda, 0xdb, len(n.raw))
		}
		return append(b, n.raw...)
	case 'u':
		if st.wide {
			return binary.BigEndian.AppendUint64(append(b, 0xcf), n.u)
		}
		if n.u <= 0x7f {
			return append(b, byte(n.u))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xcf), n.u)
	case 'i':
		return binary.BigEndian.AppendUint64(append(b, 0xd3), n.u)
	case 'n':
		return append(b, 0xc0)
	case 'r':
		return append(b, n.raw...)
	case 't':
		return append(b, 0xc2+byte(n.u))
	case 'f':
		return append(append(b, 0xca+byte(len(n.raw)/8)), n.raw...)
	case 'x':
		data := n.raw
		if n.u == 0xff && st.time12 && len(data) != 12 {
			data = time12(data)
		}
		if st.ext8Times || !slices.Contains([]int{1, 2, 4, 8, 16}, len(data)) {
			return append(append(b, 0xc7, byte(len(data)), byte(n.u)), data...)
		}
		code := map[int]byte{1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8}[len(data)]
		return append(append(b, code, byte(n.u)), data...)
	}
	panic("unknown kind " + string(n.kind))
}

// time12 rewrites a 4- or 8-byte msgpack timestamp in the 12-byte form.
func time12(data []byte) []byte {
	var sec, nsec uint64
	switch len(data) {
	case 4:
		sec = uint64(binary.BigEndian.Uint32(data))
	case 8:
		v := binary.BigEndian.Uint64(data)
		sec, nsec = v&0x3_ffff_ffff, v>>34
	default:
		return data
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(nsec))
	return binary.BigEndian.AppendUint64(out, sec)
}

// mapEntries calls fn on every map in n (n included), outermost first.
func mapEntries(n *mpNode, fn func(m *mpNode)) {
	if n.kind == 'm' {
		fn(n)
	}
	for i := range n.items {
		mapEntries(&n.items[i], fn)
	}
}

// reverseFields reverses the entry order of every map, except that the envelope keeps
// its schema first (which DecodeCommit requires).
func reverseFields(root mpNode) mpNode {
	root = cloneMP(root)
	mapEntries(&root, func(m *mpNode) {
		from := 0
		if m == &root {
			from = 1
		}
		for i, j := from, len(m.items)/2-1; i < j; i, j = i+1, j-1 {
			m.items[2*i], m.items[2*j] = m.items[2*j], m.items[2*i]
			m.items[2*i+1], m.items[2*j+1] = m.items[2*j+1], m.items[2*i+1]
		}
	})
	return root
}

func cloneMP(n mpNode) mpNode {
	n.items = slices.Clone(n.items)
	for i := range n.items {
		n.items[i] = cloneMP(n.items[i])
	}
	return n
}
