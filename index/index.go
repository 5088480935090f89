package index

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
)

// ErrOffsetRange is returned by Add for an offset of 0 or one the 32-bit
// bitmaps cannot hold.
var ErrOffsetRange = errors.New("index: offset out of range [1, 2^32)")

const secondsPerDay = 86400

// Index is the in-memory index of killmails by dimension and day. Make one
// with New or ReadIndex. It is safe for concurrent use: one RWMutex guards
// everything, queries and WriteTo take it for reading, Add and Remove for
// writing.
//
// Per offset it keeps the kill time, killmail id and value in slices
// indexed by offset-base, and the dimensions (for Remove) encoded in one
// byte arena. The slices cover the live offsets densely, as the write log
// assigns them.
type Index struct {
	mu sync.RWMutex

	live      *roaring.Bitmap
	maxOffset uint64

	base   uint64 // offset of slot 0
	times  []int64
	ids    []int64
	values []float64
	dimAt  []uint64 // position in arena of the offset's dimensions

	arena   []byte
	garbage int    // arena bytes no live offset points at
	scratch []byte // encoding buffer for Add

	dims    [numDims]map[int64]postings
	days    map[int64]postings
	dayKeys []int64 // sorted keys of days

	bufs sync.Pool // *[]uint32 scratch buffers for Search
}

// New returns an empty index.
func New() *Index {
	ix := &Index{live: roaring.New(), days: map[int64]postings{}}
	for i := range ix.dims {
		ix.dims[i] = map[int64]postings{}
	}
	return ix
}

// Add indexes d. Adding an offset again with the same Doc changes nothing;
// with a different Doc (the store updated a killmail in place) it replaces
// the old one. It fails only with ErrOffsetRange.
func (ix *Index) Add(d Doc) error {
	if d.Offset == 0 || d.Offset >= 1<<32 {
		return fmt.Errorf("%w: %d", ErrOffsetRange, d.Offset)
	}
	off := uint32(d.Offset)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.scratch = appendDims(ix.scratch[:0], &d)
	if ix.live.Contains(off) {
		i := d.Offset - ix.base
		if ix.times[i] == d.Time && ix.ids[i] == d.KillmailID &&
			math.Float64bits(ix.values[i]) == math.Float64bits(d.Value) &&
			bytes.Equal(ix.dimsOf(i), ix.scratch) {
			return nil
		}
		ix.unindex(off)
		ix.compact()
	}
	ix.slot(d.Offset)
	i, pos := d.Offset-ix.base, uint64(len(ix.arena))
	ix.arena = append(ix.arena, ix.scratch...)
	ix.times[i], ix.ids[i], ix.values[i], ix.dimAt[i] = d.Time, d.KillmailID, d.Value, pos
	ix.index(off, d.Time, ix.scratch, d.Offset > ix.maxOffset)
	ix.maxOffset = max(ix.maxOffset, d.Offset)
	return nil
}

// Remove takes offset out of the index (retention). Unknown offsets are
// ignored.
func (ix *Index) Remove(offset uint64) {
	if offset == 0 || offset >= 1<<32 {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if !ix.live.Contains(uint32(offset)) {
		return
	}
	ix.unindex(uint32(offset))
	ix.compact()
}

// Len returns the number of indexed docs.
func (ix *Index) Len() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.live.GetCardinality()
}

// MaxOffset returns the highest offset ever added (Remove does not lower
// it): a snapshot covers the log up to it.
func (ix *Index) MaxOffset() uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.maxOffset
}

// CountSystem returns the number of indexed docs in a solar system.
func (ix *Index) CountSystem(system int64) uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.dims[dimSystem][system].card()
}

// index adds off to the live set, its day and the sets of its dimensions.
// above says that off is above every offset ever added.
func (ix *Index) index(off uint32, t int64, dims []byte, above bool) {
	ix.live.Add(off)
	day := dayOf(t)
	p, ok := ix.days[day]
	if !ok {
		i, _ := slices.BinarySearch(ix.dayKeys, day)
		ix.dayKeys = slices.Insert(ix.dayKeys, i, day)
	}
	p.add(off, above)
	ix.days[day] = p
	// The encoding was produced by appendDims: it cannot fail.
	_, _ = walkDims(dims, func(dim int, v int64) {
		m := ix.dims[dim]
		p := m[v]
		p.add(off, above)
		m[v] = p
	})
}

// unindex undoes index for a live offset and counts its dimensions as
// arena garbage.
func (ix *Index) unindex(off uint32) {
	i := uint64(off) - ix.base
	ix.live.Remove(off)
	day := dayOf(ix.times[i])
	p := ix.days[day]
	p.remove(off)
	if p.empty() {
		delete(ix.days, day)
		if j, found := slices.BinarySearch(ix.dayKeys, day); found {
			ix.dayKeys = slices.Delete(ix.dayKeys, j, j+1)
		}
	} else {
		ix.days[day] = p
	}
	n, _ := walkDims(ix.arena[ix.dimAt[i]:], func(dim int, v int64) {
		m := ix.dims[dim]
		p, ok := m[v]
		if !ok {
			return
		}
		p.remove(off)
		if p.empty() {
			delete(m, v)
		} else {
			m[v] = p
		}
	})
	ix.garbage += n
	ix.times[i], ix.ids[i], ix.values[i], ix.dimAt[i] = 0, 0, 0, 0
}

// dimsOf returns the encoded dimensions of slot i.
func (ix *Index) dimsOf(i uint64) []byte {
	b := ix.arena[ix.dimAt[i]:]
	n, _ := walkDims(b, nil)
	return b[:n]
}

// slot makes the per-offset slices cover off.
func (ix *Index) slot(off uint64) {
	if len(ix.times) == 0 {
		ix.base = off
	}
	if off < ix.base {
		ix.rebase(off, ix.base+uint64(len(ix.times)))
	}
	for n := off - ix.base + 1; uint64(len(ix.times)) < n; {
		ix.times = append(ix.times, 0)
		ix.ids = append(ix.ids, 0)
		ix.values = append(ix.values, 0)
		ix.dimAt = append(ix.dimAt, 0)
	}
}

// rebase copies the per-offset slices to cover [base, end).
func (ix *Index) rebase(base, end uint64) {
	times := make([]int64, end-base)
	ids := make([]int64, end-base)
	values := make([]float64, end-base)
	dimAt := make([]uint64, end-base)
	lo, hi := max(base, ix.base), min(end, ix.base+uint64(len(ix.times)))
	if lo < hi {
		src, dst := lo-ix.base, lo-base
		copy(times[dst:], ix.times[src:hi-ix.base])
		copy(ids[dst:], ix.ids[src:hi-ix.base])
		copy(values[dst:], ix.values[src:hi-ix.base])
		copy(dimAt[dst:], ix.dimAt[src:hi-ix.base])
	}
	ix.base, ix.times, ix.ids, ix.values, ix.dimAt = base, times, ids, values, dimAt
}

// compact frees what removals left behind: the slots below the lowest live
// offset once they are most of the slices, and the arena once it is mostly
// garbage. Both cost O(live docs) and run rarely.
func (ix *Index) compact() {
	if ix.live.IsEmpty() {
		ix.base, ix.times, ix.ids, ix.values, ix.dimAt = 0, nil, nil, nil, nil
		ix.arena, ix.garbage = nil, 0
		return
	}
	if dead := uint64(ix.live.Minimum()) - ix.base; dead >= 1<<16 && 2*dead >= uint64(len(ix.times)) {
		ix.rebase(uint64(ix.live.Minimum()), ix.base+uint64(len(ix.times)))
	}
	if ix.garbage >= 1<<20 && 2*ix.garbage >= len(ix.arena) {
		arena := make([]byte, 0, len(ix.arena)-ix.garbage)
		it := ix.live.Iterator()
		for it.HasNext() {
			i := uint64(it.Next()) - ix.base
			b := ix.dimsOf(i)
			ix.dimAt[i] = uint64(len(arena))
			arena = append(arena, b...)
		}
		ix.arena, ix.garbage = arena, 0
	}
}

// dayOf returns the UTC day number of a unix time, rounding down.
func dayOf(t int64) int64 {
	d := t / secondsPerDay
	if t%secondsPerDay < 0 {
		d--
	}
	return d
}
