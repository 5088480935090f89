package bunzip

import (
	"encoding/binary"
	"errors"
	"io"
)

// bitReader reads a bzip2 stream most significant bit first. Past the end
// of its input it reads zeros and counts them in pad, so that decoding
// needs no error check per read: a block that used padding is truncated.
type bitReader struct {
	r   io.Reader
	buf []byte
	pos int
	// v holds the next n bits, left-aligned. The bits below them are
	// zero or copies of the input bits that follow.
	v   uint64
	n   uint
	pad uint // the last pad of the n bits are zeros past the input's end
	eof bool
	err error // the input's read error other than io.EOF
}

func newBitReader(r io.Reader) *bitReader {
	return &bitReader{r: r, buf: make([]byte, 0, 64<<10)}
}

// refill makes n at least 57.
func (br *bitReader) refill() {
	if br.n > 56 {
		return
	}
	if len(br.buf)-br.pos >= 8 {
		br.v |= binary.BigEndian.Uint64(br.buf[br.pos:]) >> br.n
		br.pos += int(63-br.n) >> 3
		br.n |= 56
		return
	}
	for br.n <= 56 {
		if br.pos == len(br.buf) && !br.fill() {
			br.pad += 64 - br.n
			br.n = 64
			return
		}
		br.v |= uint64(br.buf[br.pos]) << (56 - br.n)
		br.pos++
		br.n += 8
	}
}

// fill reads more input; false at its end.
func (br *bitReader) fill() bool {
	for !br.eof {
		n, err := br.r.Read(br.buf[:cap(br.buf)])
		br.buf, br.pos = br.buf[:n], 0
		if err != nil {
			br.eof = true
			if !errors.Is(err, io.EOF) {
				br.err = err
			}
		}
		if n > 0 {
			return true
		}
	}
	return false
}

// bits reads k ≤ 32 bits.
func (br *bitReader) bits(k uint) uint32 {
	br.refill()
	x := uint32(br.v >> (64 - k))
	br.v <<= k
	br.n -= k
	return x
}

// bit reads one bit.
func (br *bitReader) bit() bool {
	return br.bits(1) == 1
}

// overrun says whether reads went past the end of the input.
func (br *bitReader) overrun() bool {
	return br.n < br.pad
}

// align skips to the next byte boundary of the input.
func (br *bitReader) align() {
	if br.overrun() {
		return
	}
	k := (br.n - br.pad) % 8
	br.v <<= k
	br.n -= k
}

// atEnd says whether the input is exhausted (at a byte boundary).
func (br *bitReader) atEnd() bool {
	br.refill()
	return br.n <= br.pad
}

// fault is what a damaged stream is reported as: the input's read error,
// a truncation, or err.
func (br *bitReader) fault(err error) error {
	switch {
	case br.err != nil:
		return br.err
	case br.overrun():
		return io.ErrUnexpectedEOF
	}
	return err
}
