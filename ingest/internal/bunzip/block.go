package bunzip

import "encoding/binary"

const (
	bulkRun    = 32 // the shortest run of a byte the walk links in bulk
	blockMagic = 0x314159265359
	finalMagic = 0x177245385090
	maxRepeat  = 2 << 20 // bzip2's bound on one RUNA/RUNB run
)

// block is one bzip2 block on its way through the Reader: the entropy
// stage fills bwt, counts, runs, origPtr and crc; a worker turns them
// into out.
type block struct {
	// bwt is the BWT output: the last column of the sorted rotations.
	bwt    []byte
	counts [256]uint32
	// runs are the stretches of bwt, in order, that repeat one byte at
	// least bulkRun times.
	runs    []byteRun
	origPtr uint32
	crc     uint32 // the block's CRC as the stream states it
	out     []byte
	err     error
	done    chan struct{}
}

// byteRun is a stretch of a block's bwt that repeats one byte.
type byteRun struct {
	start, n uint32
}

// entropy is the sequential stage: it parses stream headers, block
// headers and the Huffman/MTF/RLE2 coding, up to the BWT.
type entropy struct {
	br        *bitReader
	blockSize int
	streamCRC uint32
	inStream  bool

	trees     [6]huffman
	selectors []uint8
	lengths   [maxAlpha]uint8
}

// next fills b with the next block of the input. It returns false at a
// clean end of the input.
func (e *entropy) next(b *block) (bool, error) {
	br := e.br
	for {
		if !e.inStream {
			if e.blockSize > 0 && br.atEnd() {
				return false, br.fault(nil)
			}
			if err := e.header(); err != nil {
				return false, err
			}
		}
		switch magic := uint64(br.bits(24))<<24 | uint64(br.bits(24)); magic {
		case blockMagic:
			return true, e.block(b)
		case finalMagic:
			want := br.bits(32)
			if br.overrun() || br.err != nil {
				return false, br.fault(nil)
			}
			if want != e.streamCRC {
				return false, structural("stream checksum mismatch")
			}
			br.align()
			e.inStream = false
		default:
			return false, br.fault(structural("bad block magic"))
		}
	}
}

// header reads a stream's "BZh" and block size.
func (e *entropy) header() error {
	br := e.br
	magic, level := br.bits(24), br.bits(8)
	if br.overrun() || br.err != nil {
		return br.fault(nil)
	}
	if magic != 'B'<<16|'Z'<<8|'h' || level < '1' || level > '9' {
		return structural("bad stream header")
	}
	e.blockSize = 100_000 * int(level-'0')
	e.streamCRC = 0
	e.inStream = true
	return nil
}

// block decodes one block after its magic.
func (e *entropy) block(b *block) error {
	br := e.br
	b.crc = br.bits(32)
	e.streamCRC = (e.streamCRC<<1 | e.streamCRC>>31) ^ b.crc
	if br.bit() {
		return br.fault(structural("deprecated randomized block"))
	}
	b.origPtr = br.bits(24)
	var symbols [256]byte
	numSymbols := 0
	used := br.bits(16)
	for hi := range 16 {
		if used&(0x8000>>hi) == 0 {
			continue
		}
		bits := br.bits(16)
		for lo := range 16 {
			if bits&(0x8000>>lo) != 0 {
				symbols[numSymbols] = byte(hi<<4 | lo)
				numSymbols++
			}
		}
	}
	if numSymbols == 0 {
		return br.fault(structural("no symbols"))
	}
	nTrees := int(br.bits(3))
	if nTrees < 2 || nTrees > 6 {
		return br.fault(structural("bad number of Huffman trees"))
	}
	if err := e.readSelectors(nTrees); err != nil {
		return err
	}
	alpha := numSymbols + 2
	for t := range nTrees {
		if err := e.readLengths(alpha); err != nil {
			return err
		}
		if err := e.trees[t].build(e.lengths[:alpha]); err != nil {
			return br.fault(err)
		}
	}
	if err := e.symbols(b, symbols[:numSymbols], alpha); err != nil {
		return err
	}
	if br.overrun() || br.err != nil {
		return br.fault(nil)
	}
	if int(b.origPtr) >= len(b.bwt) {
		return structural("origPtr out of range")
	}
	return nil
}

// readSelectors reads which tree codes each group of 50 symbols.
func (e *entropy) readSelectors(nTrees int) error {
	br := e.br
	n := int(br.bits(15))
	if n == 0 {
		return br.fault(structural("no selectors"))
	}
	mtf := [6]uint8{0, 1, 2, 3, 4, 5}
	e.selectors = e.selectors[:0]
	for range n {
		k := 0
		for br.bit() {
			k++
			if k >= nTrees {
				return br.fault(structural("selector out of range"))
			}
		}
		s := mtf[k]
		copy(mtf[1:k+1], mtf[:k])
		mtf[0] = s
		e.selectors = append(e.selectors, s)
	}
	return nil
}

// readLengths reads one tree's delta-coded code lengths.
func (e *entropy) readLengths(alpha int) error {
	br := e.br
	l := int(br.bits(5))
	for i := range alpha {
		for {
			if l < 1 || l > maxCodeLen {
				return br.fault(structural("Huffman code length out of range"))
			}
			if !br.bit() {
				break
			}
			if br.bit() {
				l--
			} else {
				l++
			}
		}
		e.lengths[i] = uint8(l)
	}
	return nil
}

// symbols decodes the block's symbols, undoes RUNA/RUNB and the
// move-to-front coding into b.bwt, and counts the bytes. It keeps the bit
// reader's state in locals and decodes most codes with one table look-up
// (see huffman), going through br only to refill near its buffer's end.
func (e *entropy) symbols(b *block, symbols []byte, alpha int) error {
	br := e.br
	var mtf [256]byte
	copy(mtf[:], symbols)
	clear(b.counts[:])
	b.runs = b.runs[:0]
	if cap(b.bwt) < e.blockSize {
		b.bwt = make([]byte, e.blockSize)
	}
	bwt := b.bwt[:e.blockSize]
	n, run, runBit := 0, 0, 1
	eob := uint16(alpha - 1)
	v, nb, buf, pos := br.v, br.n, br.buf, br.pos
	for group := 0; ; group++ {
		if group >= len(e.selectors) {
			br.v, br.n, br.pos = v, nb, pos
			return br.fault(structural("too few selectors"))
		}
		tree := &e.trees[e.selectors[group]]
		for range 50 {
			if nb < maxCodeLen {
				if len(buf)-pos >= 8 {
					v |= binary.BigEndian.Uint64(buf[pos:]) >> nb
					pos += int(63-nb) >> 3
					nb |= 56
				} else {
					br.v, br.n, br.pos = v, nb, pos
					br.refill()
					v, nb, buf, pos = br.v, br.n, br.buf, br.pos
				}
			}
			var sym uint16
			if x := tree.lut[v>>(64-lutBits)]; x != 0 {
				l := uint(x & 31)
				v <<= l
				nb -= l
				sym = x >> 5
			} else {
				s, l := tree.long(v)
				if l == 0 {
					br.v, br.n, br.pos = v, nb, pos
					return br.fault(structural("invalid Huffman code"))
				}
				v <<= l
				nb -= l
				sym = s
			}
			if sym < 2 { // RUNA, RUNB: a bijective base-2 run length
				run += runBit << sym
				runBit <<= 1
				if run > maxRepeat {
					br.v, br.n, br.pos = v, nb, pos
					return br.fault(structural("run too long"))
				}
				continue
			}
			if run > 0 {
				if run > len(bwt)-n {
					br.v, br.n, br.pos = v, nb, pos
					return br.fault(structural("run past the block's end"))
				}
				c := mtf[0]
				b.counts[c] += uint32(run)
				fill(bwt[n:n+run], c)
				if run >= bulkRun {
					b.runs = append(b.runs, byteRun{start: uint32(n), n: uint32(run)})
				}
				n += run
				run, runBit = 0, 1
			}
			if sym == eob {
				b.bwt = bwt[:n]
				br.v, br.n, br.pos = v, nb, pos
				return nil
			}
			if n >= len(bwt) {
				br.v, br.n, br.pos = v, nb, pos
				return br.fault(structural("block larger than its size"))
			}
			k := int(sym - 1)
			c := mtf[k]
			if k < 16 {
				for ; k > 0; k-- {
					mtf[k] = mtf[k-1]
				}
			} else {
				copy(mtf[1:k+1], mtf[:k])
			}
			mtf[0] = c
			bwt[n] = c
			b.counts[c]++
			n++
		}
	}
}

// fill sets all of s to w: long runs by doubling copies.
func fill(s []byte, w byte) {
	if len(s) < 32 {
		for i := range s {
			s[i] = w
		}
		return
	}
	if w == 0 {
		clear(s)
		return
	}
	s[0] = w
	for k := 1; k < len(s); k *= 2 {
		copy(s[k:], s[:k])
	}
}
