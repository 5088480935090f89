package bunzip

import (
	"encoding/binary"
	"math/bits"
)

const (
	// maxChains is how many stretches of a block are walked at once.
	maxChains = 64
	// maxStretches is how many stretches a block is cut into: many more
	// than maxChains, so that few chains are left to walk at the end.
	maxStretches = 512
	// minStretch is the shortest stretch worth walking on its own.
	minStretch = 1024
	chainStart = 1 << 31     // marks a row where a stretch starts
	maxRows    = 1 << 20     // a power of two above bzip2's 900,000 rows
	rowMask    = maxRows - 1 // a row index
	// chunkLen is the size of the pieces of scratch space chains fill; a
	// block's bytes and maxStretches part-filled chunks fit in maxRows.
	chunkLen = 256
)

// inverter is a worker's scratch space for the last stage of a block:
// the inverse BWT, the initial run-length decoding and the CRC.
type inverter struct {
	crc crcer
	// tt is the block's rows: tt[j] = next<<8 | the byte of row j, where
	// next is the row that follows j in the text.
	tt  []uint32
	pre []byte
	// buf holds the chains' bytes in chunks of chunkLen; a chain that
	// fills its chunk goes on in the next free one. A block's chunks fit
	// in maxRows bytes.
	buf *[maxRows]byte
	// link[i] is the chunk that follows chunk i in its chain, -1 for a
	// chain's last chunk.
	link []int32
}

// chain is one walk through a stretch of a block.
type chain struct {
	row      uint32 // the next row to visit
	id       uint32 // the chain's index in starts
	pos, end int    // where the next byte goes in buf; its chunk's end
}

// invert turns b's BWT output into b.out and checks its CRC.
func (v *inverter) invert(b *block) error {
	v.pre = v.walk(b, v.pre[:0])
	b.out = unRLE(b.out[:0], v.pre)
	if got := v.crc.update(0, b.out); got != b.crc {
		return structural("block checksum mismatch")
	}
	return nil
}

// walk appends the block's bytes, in order, to pre. bwt[j] is the byte
// of row j of the sorted rotations' last column; a first pass links each
// row to the one that follows it in the text. Following those links one
// at a time waits on a cache miss per byte, so the walk cuts the block
// into up to maxStretches stretches at rows spread over it, follows
// maxChains of them at a time in turns (their misses overlap), stops each
// where another starts, and joins them in text order. As in the
// reference decoder, the text is the cycle through its first row,
// repeated to the block's length (periodic blocks can link rows in
// several shorter cycles).
func (v *inverter) walk(b *block, pre []byte) []byte {
	n, origPtr := len(b.bwt), b.origPtr
	if v.tt == nil {
		v.tt = make([]uint32, maxRows)
	}
	tt := v.tt[:n]
	link(tt, b.bwt, &b.counts, b.runs)
	var starts [maxStretches]uint32
	starts[0] = tt[origPtr] >> 8 & rowMask
	tt[starts[0]] |= chainStart
	k := 1
	want := min(maxStretches, n/minStretch)
	for ; k < want; k++ {
		s := uint32(k * n / want)
		if tt[s]&chainStart != 0 {
			break
		}
		tt[s] |= chainStart
		starts[k] = s
	}
	var ends [maxStretches]uint32
	var last, head [maxStretches]int
	v.follow(tt, starts[:k], ends[:k], head[:k], last[:k])
	for c := 0; len(pre) < n; {
		for i := head[c]; ; i = int(v.link[i]) {
			if v.link[i] < 0 {
				pre = append(pre, v.buf[i*chunkLen:last[c]]...)
				break
			}
			pre = append(pre, v.buf[i*chunkLen:(i+1)*chunkLen]...)
		}
		c = stretchAt(starts[:k], want, n, ends[c])
		if c == 0 {
			break
		}
	}
	for len(pre) < n {
		pre = append(pre, pre[:min(len(pre), n-len(pre))]...)
	}
	return pre[:n]
}

// stretchAt returns the stretch that starts at row: 0 or the one at
// k*n/want.
func stretchAt(starts []uint32, want, n int, row uint32) int {
	k := int(uint64(row) * uint64(want) / uint64(n))
	for c := max(k, 1); c <= k+1 && c < len(starts); c++ {
		if starts[c] == row {
			return c
		}
	}
	return 0
}

// link fills tt from a block's BWT output bwt: row j gets the byte
// bwt[j] and the row that follows it in the text (counts are bwt's byte
// counts). A run of one byte links to consecutive rows, so runs (those
// of bwt's long runs) take a loop of their own.
func link(tt []uint32, bwt []byte, counts *[256]uint32, runs []byteRun) {
	var next [256]uint32
	sum := uint32(0)
	for c, k := range counts {
		next[c] = sum
		sum += k
	}
	tt = tt[:len(bwt)]
	i := 0
	for _, r := range runs {
		for ; i < int(r.start); i++ {
			c := bwt[i]
			j := next[c]
			next[c]++
			tt[j] = uint32(i)<<8 | uint32(bwt[j])
		}
		c := bwt[i]
		j := next[c]
		next[c] += r.n
		dst, src := tt[j:j+r.n], bwt[j:j+r.n]
		for t := range dst {
			dst[t] = uint32(i+t)<<8 | uint32(src[t])
		}
		i += int(r.n)
	}
	for ; i < len(bwt); i++ {
		c := bwt[i]
		j := next[c]
		next[c]++
		tt[j] = uint32(i)<<8 | uint32(bwt[j])
	}
}

// follow walks the stretches that start at starts, maxChains at a time
// in turns, into v.buf, each until a row where a stretch starts (which it
// records in ends). Stretch c's bytes are in the chunks from head[c] on,
// its last chunk up to last[c].
func (v *inverter) follow(tt []uint32, starts, ends []uint32, head, last []int) {
	if v.buf == nil {
		v.buf = new([maxRows]byte)
		v.link = make([]int32, maxRows/chunkLen)
	}
	w := &walker{tt: tt, buf: v.buf, links: v.link, starts: starts, ends: ends, head: head, last: last}
	live := min(len(starts), maxChains)
	for c := range live {
		w.begin(c, c)
	}
	w.next = live
	rows, buf := (*[maxRows]uint32)(tt[:maxRows]), v.buf
	for live > 0 {
		for a := 0; a < live; {
			ch := &w.chains[a&(maxChains-1)]
			x := rows[ch.row&rowMask]
			if x&chainStart != 0 {
				live = w.finish(a, live)
				continue
			}
			buf[ch.pos&rowMask] = byte(x)
			ch.pos++
			ch.row = x >> 8 & rowMask
			if ch.pos == ch.end {
				w.grow(ch)
			}
			a++
		}
	}
}

// walker is the state of follow.
type walker struct {
	tt           []uint32
	buf          *[maxRows]byte
	links        []int32
	starts, ends []uint32
	head, last   []int
	chains       [maxChains]chain
	next, free   int // the next stretch to start; the next free chunk
}

// begin starts stretch c as chain a in chunk free, with its first byte.
func (w *walker) begin(a, c int) {
	x := w.tt[w.starts[c]]
	at := w.free * chunkLen
	w.buf[at&rowMask] = byte(x)
	w.links[w.free] = -1
	w.head[c] = w.free
	w.free++
	w.chains[a] = chain{row: x >> 8 & rowMask, id: uint32(c), pos: at + 1, end: at + chunkLen}
}

// finish ends chain a, which reached the start of a stretch, and puts the
// next stretch in its place; it returns how many chains are left.
//
//go:noinline
func (w *walker) finish(a, live int) int {
	ch := &w.chains[a]
	w.ends[ch.id], w.last[ch.id] = ch.row, ch.pos
	if w.next < len(w.starts) {
		w.begin(a, w.next)
		w.next++
		return live
	}
	live--
	*ch = w.chains[live]
	return live
}

// grow moves ch on to the next free chunk.
//
//go:noinline
func (w *walker) grow(ch *chain) {
	w.links[ch.pos/chunkLen-1] = int32(w.free)
	w.links[w.free] = -1
	ch.pos, ch.end = w.free*chunkLen, (w.free+1)*chunkLen
	w.free++
}

// unRLE appends src to dst with bzip2's initial run-length coding
// undone: four equal bytes are followed by a count of more copies.
func unRLE(dst, src []byte) []byte {
	i, n := 0, len(src)
	for i < n {
		j := runAt(src, i)
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

// runAt returns the first j ≥ i where four equal bytes start in src, or
// some j with j+3 ≥ len(src) when there is none. It compares eight
// neighbouring pairs of bytes at a time.
func runAt(src []byte, i int) int {
	const lo7, hi = 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	for ; i+9 <= len(src); i += 6 {
		d := binary.LittleEndian.Uint64(src[i:]) ^ binary.LittleEndian.Uint64(src[i+1:])
		z := ^((d&lo7 + lo7) | d) & hi // the high bit of each zero byte: an equal pair
		if r := z & (z >> 8) & (z >> 16); r != 0 {
			return i + bits.TrailingZeros64(r)/8
		}
	}
	for i+3 < len(src) && !(src[i] == src[i+1] && src[i] == src[i+2] && src[i] == src[i+3]) {
		i++
	}
	return i
}
