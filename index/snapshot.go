package index

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// Snapshot format, version 1. Integers are (zigzag) varints unless said.
//
//	"WKIX" version:byte
//	block meta: maxOffset count
//	block live: roaring bitmap of the live offsets
//	section docs: per live offset, ascending: time id value:8 dims
//	section ×5 (system, ship, character, corporation, alliance), keys ascending:
//	    key kind:byte, then kind 0: n delta×n (a sorted list) | kind 1: len roaring
//	crc32c:4 (little endian) of everything before it
//
// A block is uvarint(len) and len bytes; a section is non-empty blocks
// ended by an empty one. Day sets are rebuilt from the times.
const (
	snapMagic   = "WKIX"
	snapVersion = 1
	blockSize   = 1 << 20 // a block is cut once it holds this many bytes
	maxBlock    = 1 << 31 // larger blocks are refused
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteTo writes a snapshot of the index to w and returns the bytes
// written. It holds the read lock throughout: queries go on, Add and
// Remove wait.
func (ix *Index) WriteTo(w io.Writer) (int64, error) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	bw := bufio.NewWriterSize(w, 1<<16)
	sw := &snapWriter{w: bw}
	sw.raw(append([]byte(snapMagic), snapVersion))
	sw.block(binary.AppendUvarint(binary.AppendUvarint(nil, ix.maxOffset), ix.live.GetCardinality()))
	var live bytes.Buffer
	if _, err := ix.live.WriteTo(&live); err != nil {
		return sw.n, fmt.Errorf("index: write snapshot: %w", err)
	}
	sw.block(live.Bytes())
	ix.writeDocs(sw)
	for dim := range ix.dims {
		ix.writePostings(sw, &ix.dims[dim])
	}
	sw.raw(binary.LittleEndian.AppendUint32(nil, sw.crc))
	if sw.err == nil {
		sw.err = bw.Flush()
	}
	if sw.err != nil {
		return sw.n, fmt.Errorf("index: write snapshot: %w", sw.err)
	}
	return sw.n, nil
}

func (ix *Index) writeDocs(sw *snapWriter) {
	var b []byte
	it := ix.live.Iterator()
	for it.HasNext() {
		i := uint64(it.Next()) - ix.base
		b = binary.AppendVarint(b, ix.times[i])
		b = binary.AppendVarint(b, ix.ids[i])
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(ix.values[i]))
		b = append(b, ix.dimsOf(i)...)
		if len(b) >= blockSize {
			sw.block(b)
			b = b[:0]
		}
	}
	sw.endSection(b)
}

func (ix *Index) writePostings(sw *snapWriter, t *table) {
	var b []byte
	var bm bytes.Buffer
	for _, i := range t.sorted() {
		s := &t.slots[i]
		p := ix.sets.view(s)
		b = binary.AppendVarint(b, s.key)
		if p.bm == nil {
			b = append(b, 0)
			b = binary.AppendUvarint(b, uint64(len(p.list)))
			prev := uint32(0)
			for _, x := range p.list {
				b = binary.AppendUvarint(b, uint64(x-prev))
				prev = x
			}
		} else {
			bm.Reset()
			if _, err := p.bm.WriteTo(&bm); err != nil && sw.err == nil {
				sw.err = err
			}
			b = append(b, 1)
			b = binary.AppendUvarint(b, uint64(bm.Len()))
			b = append(b, bm.Bytes()...)
		}
		if len(b) >= blockSize {
			sw.block(b)
			b = b[:0]
		}
	}
	sw.endSection(b)
}

// snapWriter writes blocks, counting bytes and their CRC; the first error
// sticks.
type snapWriter struct {
	w   io.Writer
	n   int64
	crc uint32
	err error
}

func (sw *snapWriter) raw(b []byte) {
	if sw.err != nil {
		return
	}
	n, err := sw.w.Write(b)
	sw.n += int64(n)
	sw.crc = crc32.Update(sw.crc, castagnoli, b)
	sw.err = err
}

func (sw *snapWriter) block(b []byte) {
	sw.raw(binary.AppendUvarint(nil, uint64(len(b))))
	sw.raw(b)
}

// endSection writes the last non-empty block b, if any, and the end mark.
func (sw *snapWriter) endSection(b []byte) {
	if len(b) > 0 {
		sw.block(b)
	}
	sw.block(nil)
}

// ReadIndex reads a snapshot written by WriteTo. It reads r through a
// buffer, so r should hold the snapshot alone. Input that is truncated,
// inconsistent or fails its checksum is refused with an error wrapping
// ErrCorrupt; another format version with ErrVersion.
func ReadIndex(r io.Reader) (*Index, error) {
	sr := &snapReader{r: bufio.NewReaderSize(r, 1<<16)}
	ix, err := sr.index()
	if err != nil {
		return nil, fmt.Errorf("index: read snapshot: %w", err)
	}
	return ix, nil
}

// snapReader reads blocks, keeping the CRC of what it read.
type snapReader struct {
	r   *bufio.Reader
	crc uint32
	buf []byte
}

func (sr *snapReader) index() (*Index, error) {
	head := make([]byte, len(snapMagic)+1)
	if err := sr.full(head); err != nil {
		return nil, err
	}
	if string(head[:len(snapMagic)]) != snapMagic {
		return nil, fmt.Errorf("%w: not an index snapshot", ErrCorrupt)
	}
	if v := head[len(snapMagic)]; v != snapVersion {
		return nil, fmt.Errorf("%w: snapshot version %d", ErrVersion, v)
	}
	ix := New()
	if err := sr.live(ix); err != nil {
		return nil, err
	}
	var perDim [numDims]uint64
	if err := sr.docs(ix, &perDim); err != nil {
		return nil, err
	}
	alive := liveBits(ix)
	for dim := range ix.dims {
		if err := sr.postings(ix, &ix.dims[dim], alive); err != nil {
			return nil, err
		}
		// Each id a doc carries is one offset in one set: the totals agree
		// in any index this package wrote.
		var total uint64
		for _, s := range ix.dims[dim].slots {
			total += uint64(s.n)
		}
		if total != perDim[dim] {
			return nil, fmt.Errorf("%w: dimension %d: sets hold %d offsets, docs %d ids", ErrCorrupt, dim, total, perDim[dim])
		}
	}
	want := sr.crc
	var sum [4]byte
	if err := sr.full(sum[:]); err != nil {
		return nil, err
	}
	if binary.LittleEndian.Uint32(sum[:]) != want {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return ix, nil
}

// live reads the meta and live blocks.
func (sr *snapReader) live(ix *Index) error {
	b, err := sr.block()
	if err != nil {
		return err
	}
	dec := decoder{b: b}
	ix.maxOffset = dec.uvarint()
	count := dec.uvarint()
	if dec.err == nil && len(dec.b) > 0 {
		dec.fail("trailing bytes in meta block")
	}
	if dec.err != nil {
		return dec.err
	}
	if b, err = sr.block(); err != nil {
		return err
	}
	if n, err := ix.live.ReadFrom(bytes.NewReader(b)); err != nil || n != int64(len(b)) {
		return fmt.Errorf("%w: live bitmap: %v", ErrCorrupt, err)
	}
	if err := ix.live.Validate(); err != nil {
		return fmt.Errorf("%w: live bitmap: %w", ErrCorrupt, err)
	}
	if ix.live.GetCardinality() != count {
		return fmt.Errorf("%w: live bitmap holds %d offsets, meta says %d", ErrCorrupt, ix.live.GetCardinality(), count)
	}
	if count == 0 {
		return nil
	}
	lo, hi := uint64(ix.live.Minimum()), uint64(ix.live.Maximum())
	if lo == 0 || hi > ix.maxOffset || ix.maxOffset >= 1<<32 {
		return fmt.Errorf("%w: offsets [%d, %d] outside [1, max offset %d]", ErrCorrupt, lo, hi, ix.maxOffset)
	}
	return nil
}

// docs reads the per-offset section, rebuilds the day sets and counts the
// ids of each dimension. The
// per-offset slices grow with the docs actually read, so a corrupt live
// bitmap cannot make it allocate more than the input justifies.
func (sr *snapReader) docs(ix *Index, perDim *[numDims]uint64) error {
	it := ix.live.Iterator()
	for read := uint64(0); ; {
		b, err := sr.block()
		if err != nil || len(b) == 0 {
			if err == nil && it.HasNext() {
				err = fmt.Errorf("%w: fewer docs than live offsets", ErrCorrupt)
			}
			return err
		}
		dec := decoder{b: b}
		for len(dec.b) > 0 && dec.err == nil {
			if !it.HasNext() {
				return fmt.Errorf("%w: more docs than live offsets", ErrCorrupt)
			}
			off := it.Next()
			read++
			// Offsets are dense in a real index.
			if uint64(off)-uint64(ix.live.Minimum()) >= 16*read+1<<16 {
				return fmt.Errorf("%w: %d docs spread up to offset %d", ErrCorrupt, read, off)
			}
			ix.slot(uint64(off))
			i := uint64(off) - ix.base
			ix.times[i], ix.ids[i] = dec.varint(), dec.varint()
			ix.values[i] = math.Float64frombits(dec.fixed64())
			n, err := walkDims(dec.b, func(dim int, _ int64) { perDim[dim]++ })
			if dec.err != nil || err != nil {
				return fmt.Errorf("doc at offset %d: %w", off, errors.Join(dec.err, err))
			}
			ix.dimAt[i] = uint64(len(ix.arena))
			ix.arena = append(ix.arena, dec.bytes(uint64(n))...)
			s, _ := ix.days.upsert(dayOf(ix.times[i]))
			ix.sets.add(s, off) // offsets ascend: an append
		}
		if dec.err != nil {
			return dec.err
		}
	}
}

// liveBits returns the live offsets as a bit per slot, for quick checks.
func liveBits(ix *Index) []uint64 {
	for _, s := range ix.days.slots {
		if s.n != 0 {
			ix.dayKeys = append(ix.dayKeys, s.key)
		}
	}
	slices.Sort(ix.dayKeys)
	bits := make([]uint64, (len(ix.times)+63)/64)
	it := ix.live.Iterator()
	for it.HasNext() {
		i := uint64(it.Next()) - ix.base
		bits[i/64] |= 1 << (i % 64)
	}
	return bits
}

// postings reads one dimension section into t, checking that every set is
// well formed and holds live offsets only.
func (sr *snapReader) postings(ix *Index, t *table, alive []uint64) error {
	var scratch []uint32
	for {
		b, err := sr.block()
		if err != nil || len(b) == 0 {
			return err
		}
		dec := decoder{b: b}
		for len(dec.b) > 0 && dec.err == nil {
			key := dec.varint()
			p, err := readSet(&dec, ix, alive, scratch[:0])
			if err != nil {
				return fmt.Errorf("set %d: %w", key, err)
			}
			s, isNew := t.upsert(key)
			if !isNew {
				return fmt.Errorf("%w: set %d twice", ErrCorrupt, key)
			}
			if p.bm != nil {
				ix.sets.setBitmap(s, p.bm)
			} else {
				ix.sets.setList(s, p.list) // copies it
				scratch = p.list
			}
		}
		if dec.err != nil {
			return dec.err
		}
	}
}

// readSet reads one set, a list into buf's memory or a bitmap.
func readSet(dec *decoder, ix *Index, alive []uint64, buf []uint32) (postings, error) {
	switch dec.byte() {
	case 0:
		n := dec.count()
		if n == 0 {
			return postings{}, errors.Join(dec.err, fmt.Errorf("%w: empty set", ErrCorrupt))
		}
		list := slices.Grow(buf[:0], n)[:n]
		var x uint64
		for j := range list {
			d := dec.uvarint()
			if (j > 0 && d == 0) || d >= 1<<32 {
				return postings{}, fmt.Errorf("%w: unsorted list", ErrCorrupt)
			}
			x += d
			if x < ix.base || x-ix.base >= uint64(len(ix.times)) || alive[(x-ix.base)/64]&(1<<((x-ix.base)%64)) == 0 {
				return postings{}, errors.Join(dec.err, fmt.Errorf("%w: dead offset %d in set", ErrCorrupt, x))
			}
			list[j] = uint32(x)
		}
		return postings{list: list}, dec.err
	case 1:
		b := dec.bytes(dec.uvarint())
		if dec.err != nil {
			return postings{}, dec.err
		}
		bm := roaring.New()
		if n, err := bm.ReadFrom(bytes.NewReader(b)); err != nil || n != int64(len(b)) {
			return postings{}, fmt.Errorf("%w: bitmap: %v", ErrCorrupt, err)
		}
		if err := bm.Validate(); err != nil {
			return postings{}, fmt.Errorf("%w: bitmap: %w", ErrCorrupt, err)
		}
		if bm.IsEmpty() || bm.AndCardinality(ix.live) != bm.GetCardinality() {
			return postings{}, fmt.Errorf("%w: empty set or dead offsets in set", ErrCorrupt)
		}
		return postings{bm: bm}, nil
	}
	return postings{}, errors.Join(dec.err, fmt.Errorf("%w: unknown set kind", ErrCorrupt))
}

// block reads one block into a buffer reused by the next call.
func (sr *snapReader) block() ([]byte, error) {
	n, err := binary.ReadUvarint(byteCounter{sr})
	if err != nil {
		return nil, fmt.Errorf("%w: block length: %w", ErrCorrupt, unexpected(err))
	}
	if n > maxBlock {
		return nil, fmt.Errorf("%w: block of %d bytes", ErrCorrupt, n)
	}
	// Grow with what actually arrives, so a corrupt length cannot make us
	// allocate more than the input holds.
	sr.buf = sr.buf[:0]
	for uint64(len(sr.buf)) < n {
		chunk := min(n-uint64(len(sr.buf)), 1<<20)
		start := len(sr.buf)
		sr.buf = slices.Grow(sr.buf, int(chunk))[:start+int(chunk)]
		if err := sr.full(sr.buf[start:]); err != nil {
			return nil, err
		}
	}
	return sr.buf, nil
}

func (sr *snapReader) full(b []byte) error {
	if _, err := io.ReadFull(sr.r, b); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, unexpected(err))
	}
	sr.crc = crc32.Update(sr.crc, castagnoli, b)
	return nil
}

// byteCounter reads single bytes through the CRC.
type byteCounter struct{ sr *snapReader }

func (bc byteCounter) ReadByte() (byte, error) {
	c, err := bc.sr.r.ReadByte()
	if err == nil {
		bc.sr.crc = crc32.Update(bc.sr.crc, castagnoli, []byte{c})
	}
	return c, err
}

// unexpected turns io.EOF inside a snapshot into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
