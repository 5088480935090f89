package bench

import (
	"bytes"
	"encoding/binary"
)

// frameScanner follows a stream of server WebSocket frames fed to it in
// pieces, as reads return them, and reports each killmail_update's first
// killmail id when the last byte of its frame has been fed. It looks at
// a frame's header and first wsHeadBytes only; the rest is counted, not
// copied.
type frameScanner struct {
	// skip is how many payload bytes of the current frame are still to
	// come; pending is the id to report when they have (0: none).
	skip    int
	pending int64
	// carry holds the start of a frame whose header and head have not all
	// arrived yet.
	carry []byte
	// closed: the server sent a close frame.
	closed bool
}

// feed consumes p and calls found for each killmail_update completed in
// it, in order.
func (s *frameScanner) feed(p []byte, found func(id int64)) {
	if len(s.carry) > 0 {
		p = append(s.carry, p...)
		s.carry = nil
	}
	for len(p) > 0 {
		if s.skip > 0 {
			n := min(s.skip, len(p))
			s.skip -= n
			p = p[n:]
			if s.skip == 0 {
				s.done(found)
			}
			continue
		}
		op, size, hl, ok := frameHeader(p)
		if !ok || len(p) < hl+min(size, wsHeadBytes) {
			s.carry = append([]byte(nil), p...)
			return
		}
		head := p[hl : hl+min(size, wsHeadBytes)]
		s.pending = 0
		if op == 0x8 {
			s.closed = true
		} else if bytes.Contains(head[:min(len(head), 96)], updateEvent) {
			s.pending, _ = firstID(head)
		}
		p, s.skip = p[hl:], size
		if size == 0 {
			s.done(found)
		}
	}
}

// ended reports whether the server closed the stream.
func (s *frameScanner) ended() bool { return s.closed }

func (s *frameScanner) done(found func(int64)) {
	if s.pending != 0 {
		found(s.pending)
		s.pending = 0
	}
}

// frameHeader parses an unmasked frame header: opcode, payload size and
// header length; ok is false when p holds less than the header.
func frameHeader(p []byte) (op byte, size, hl int, ok bool) {
	if len(p) < 2 {
		return 0, 0, 0, false
	}
	op, size, hl = p[0]&0x0f, int(p[1]&0x7f), 2
	switch size {
	case 126:
		if len(p) < 4 {
			return 0, 0, 0, false
		}
		size, hl = int(binary.BigEndian.Uint16(p[2:])), 4
	case 127:
		if len(p) < 10 {
			return 0, 0, 0, false
		}
		size, hl = int(binary.BigEndian.Uint64(p[2:])&(1<<40-1)), 10
	}
	return op, size, hl, true
}
