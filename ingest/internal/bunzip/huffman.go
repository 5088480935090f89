package bunzip

const (
	maxCodeLen = 20
	maxAlpha   = 258 // RUNA, RUNB, up to 255 move-to-front positions, end of block
	lutBits    = 10
)

// huffman decodes one of a block's prefix codes: codes of up to lutBits
// bits in one table look-up, longer ones by their canonical ranges.
type huffman struct {
	// lut maps the next lutBits bits to symbol<<5 | length; 0 when the
	// code is longer.
	lut [1 << lutBits]uint16
	// limit[l] is the end of the codes of length ≤ l, left-aligned to
	// maxCodeLen bits.
	limit [maxCodeLen + 1]uint32
	// first[l] is the first code of length l; offset[l] the index in
	// syms of its symbol.
	first  [maxCodeLen + 1]uint32
	offset [maxCodeLen + 1]uint16
	syms   [maxAlpha]uint16 // by (length, symbol)
	maxLen uint
}

// build sets the code up from its lengths (1…20 each), assigned as bzip2
// does: by length, then by symbol.
func (h *huffman) build(lengths []uint8) error {
	var count [maxCodeLen + 1]uint32
	h.maxLen = 0
	for _, l := range lengths {
		count[l]++
		h.maxLen = max(h.maxLen, uint(l))
	}
	code, idx := uint32(0), uint16(0)
	for l := 1; l <= maxCodeLen; l++ {
		h.first[l], h.offset[l] = code, idx
		idx += uint16(count[l])
		code += count[l]
		if code > 1<<l {
			return structural("oversubscribed Huffman code")
		}
		h.limit[l] = code << (maxCodeLen - l)
		code <<= 1
	}
	next := h.offset
	for s, l := range lengths {
		h.syms[next[l]] = uint16(s)
		next[l]++
	}
	clear(h.lut[:])
	for l := 1; l <= lutBits && l <= int(h.maxLen); l++ {
		for k := range count[l] {
			sym := h.syms[uint32(h.offset[l])+k]
			lo := (h.first[l] + k) << (lutBits - l)
			hi := lo + 1<<(lutBits-l)
			for i := lo; i < hi; i++ {
				h.lut[i] = sym<<5 | uint16(l)
			}
		}
	}
	return nil
}

// long decodes a code longer than lutBits from the bits at the top of v
// (at least maxCodeLen of them); l is its length, 0 for bits that are no
// code.
func (h *huffman) long(v uint64) (sym uint16, l uint) {
	p := uint32(v >> (64 - maxCodeLen))
	for l := uint(lutBits + 1); l <= h.maxLen; l++ {
		if p < h.limit[l] {
			return h.syms[uint32(h.offset[l])+p>>(maxCodeLen-l)-h.first[l]], l
		}
	}
	return 0, 0
}
