package bunzip

const (
	blockMagic = 0x314159265359
	finalMagic = 0x177245385090
	maxRepeat  = 2 << 20 // bzip2's bound on one RUNA/RUNB run
)

// block is one bzip2 block on its way through the Reader: the entropy
// stage fills tt, counts, origPtr and crc; a worker turns them into out.
type block struct {
	// tt holds the BWT output, one byte in the low bits of each entry.
	tt      []uint32
	counts  [256]uint32
	origPtr uint32
	crc     uint32 // the block's CRC as the stream states it
	out     []byte
	err     error
	done    chan struct{}
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
	if int(b.origPtr) >= len(b.tt) {
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
// move-to-front coding into b.tt, and counts the bytes.
func (e *entropy) symbols(b *block, symbols []byte, alpha int) error {
	br := e.br
	var mtf [256]byte
	copy(mtf[:], symbols)
	clear(b.counts[:])
	if cap(b.tt) < e.blockSize {
		b.tt = make([]uint32, e.blockSize)
	}
	tt := b.tt[:e.blockSize]
	n, run, runBit := 0, 0, 1
	eob := uint16(alpha - 1)
	for group := 0; ; group++ {
		if group >= len(e.selectors) {
			return br.fault(structural("too few selectors"))
		}
		tree := &e.trees[e.selectors[group]]
		for range 50 {
			sym, ok := tree.decode(br)
			if !ok {
				return br.fault(structural("invalid Huffman code"))
			}
			if sym < 2 { // RUNA, RUNB: a bijective base-2 run length
				run += runBit << sym
				runBit <<= 1
				if run > maxRepeat {
					return br.fault(structural("run too long"))
				}
				continue
			}
			if run > 0 {
				if run > len(tt)-n {
					return br.fault(structural("run past the block's end"))
				}
				c := mtf[0]
				b.counts[c] += uint32(run)
				v := uint32(c)
				for i := n; i < n+run; i++ {
					tt[i] = v
				}
				n += run
				run, runBit = 0, 1
			}
			if sym == eob {
				b.tt = tt[:n]
				return nil
			}
			if n >= len(tt) {
				return br.fault(structural("block larger than its size"))
			}
			k := int(sym - 1)
			c := mtf[k]
			copy(mtf[1:k+1], mtf[:k])
			mtf[0] = c
			tt[n] = uint32(c)
			b.counts[c]++
			n++
		}
	}
}
