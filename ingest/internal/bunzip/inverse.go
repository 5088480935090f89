package bunzip

const (
	// maxChains is how many stretches of a block are walked at once.
	maxChains = 64
	// minStretch is the shortest stretch worth a chain of its own.
	minStretch = 4096
	chainStart = 1 << 31   // marks a row where a chain starts
	rowMask    = 1<<20 - 1 // a row index; blocks hold at most 900,000
)

// inverter is a worker's scratch space for the last stage of a block:
// the inverse BWT, the initial run-length decoding and the CRC.
type inverter struct {
	crc    *crcTable
	pre    []byte
	chains [maxChains][]byte
}

// invert turns b's BWT output into b.out and checks its CRC.
func (v *inverter) invert(b *block) error {
	v.pre = v.walk(b.tt, v.pre[:0], b.origPtr, &b.counts)
	b.out = unRLE(b.out[:0], v.pre)
	if got := v.crc.update(0, b.out); got != b.crc {
		return structural("block checksum mismatch")
	}
	return nil
}

// walk appends the block's bytes, in order, to pre. tt[j] holds the
// byte of row j of the sorted rotations' last column; a first pass links
// each row to the one that follows it in the text. Following those links
// one at a time waits on a cache miss per byte, so the walk starts
// chains at up to maxChains rows spread over the block, follows them in
// turns (their misses overlap), stops each where another starts, and
// joins the stretches in text order. As in the reference decoder, the
// text is the cycle through its first row, repeated to the block's length
// (periodic blocks can link rows in several shorter cycles).
func (v *inverter) walk(tt []uint32, pre []byte, origPtr uint32, counts *[256]uint32) []byte {
	var next [256]uint32
	sum := uint32(0)
	for c, k := range counts {
		next[c] = sum
		sum += k
	}
	for i := range tt {
		c := byte(tt[i])
		j := next[c]
		next[c]++
		tt[j] |= uint32(i) << 8
	}
	n := len(tt)
	var starts, rows, ends [maxChains]uint32
	starts[0] = tt[origPtr] >> 8 & rowMask
	tt[starts[0]] |= chainStart
	k := 1
	for want := min(maxChains, n/minStretch); k < want; {
		s := uint32(k * n / want)
		if tt[s]&chainStart != 0 {
			break
		}
		tt[s] |= chainStart
		starts[k] = s
		k++
	}
	var active [maxChains]int
	for c := range k {
		x := tt[starts[c]]
		v.chains[c] = append(v.chains[c][:0], byte(x))
		rows[c] = x >> 8 & rowMask
		active[c] = c
	}
	for live := k; live > 0; {
		for a := 0; a < live; {
			c := active[a]
			x := tt[rows[c]]
			if x&chainStart != 0 {
				ends[c] = rows[c]
				live--
				active[a] = active[live]
				continue
			}
			v.chains[c] = append(v.chains[c], byte(x))
			rows[c] = x >> 8 & rowMask
			a++
		}
	}
	for c := 0; len(pre) < n; {
		pre = append(pre, v.chains[c]...)
		c = chainAt(starts[:k], ends[c])
		if c == 0 {
			break
		}
	}
	for len(pre) < n {
		pre = append(pre, pre[:min(len(pre), n-len(pre))]...)
	}
	return pre[:n]
}

// chainAt returns the chain that starts at row.
func chainAt(starts []uint32, row uint32) int {
	for c, s := range starts {
		if s == row {
			return c
		}
	}
	return 0
}

// unRLE appends src to dst with bzip2's initial run-length coding
// undone: four equal bytes are followed by a count of more copies.
func unRLE(dst, src []byte) []byte {
	i, n := 0, len(src)
	for i < n {
		j := i
		for j+3 < n && !(src[j] == src[j+1] && src[j] == src[j+2] && src[j] == src[j+3]) {
			j++
		}
		if j+3 >= n { // no run left
			return append(dst, src[i:]...)
		}
		dst = append(dst, src[i:j+4]...)
		i = j + 4
		if i == n {
			break
		}
		c, more := src[j], int(src[i])
		i++
		at := len(dst)
		dst = append(dst, make([]byte, more)...)
		if c != 0 {
			tail := dst[at:]
			for k := range tail {
				tail[k] = c
			}
		}
	}
	return dst
}
