package index

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
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
// assigns them. The sets of offsets by id and by day live in pointer-free
// hash tables and a list arena (see table and lists): the garbage
// collector has next to nothing to scan, and adding an offset to a set
// touches a cache line or two.
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
	garbage int      // arena bytes no live offset points at
	scratch []byte   // encoding buffer for Add
	adds    []setAdd // the sets an Add updates
	touched uint32   // keeps the loads of index's touch passes

	dims    [numDims]table // id → set of offsets, per dimension
	days    table          // day → set of offsets
	dayKeys []int64        // sorted keys of days
	sets    lists          // the storage of the sets that are not inline

	bufs sync.Pool // *[]uint32 scratch buffers for Search
}

// New returns an empty index.
func New() *Index {
	ix := &Index{live: roaring.New()}
	ix.days.seed = rand.Uint64()
	for i := range ix.dims {
		ix.dims[i].seed = rand.Uint64()
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
	if d.Offset <= ix.maxOffset && ix.live.Contains(off) {
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
	ix.index(off, d.Time, ix.scratch)
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
	t := &ix.dims[dimSystem]
	if i := t.find(system); i >= 0 {
		return uint64(t.slots[i].n)
	}
	return 0
}

// lookup returns the set of key in t.
func (ix *Index) lookup(t *table, key int64) (postings, bool) {
	i := t.find(key)
	if i < 0 {
		return postings{}, false
	}
	return ix.sets.view(&t.slots[i]), true
}

// setAdd is one set an offset goes into: its table, its key and, once
// found, the set.
type setAdd struct {
	tab int // a dimension, or numDims for the days
	key int64
	s   *set
}

// table returns the table of a dimension, or of the days for numDims.
func (ix *Index) table(tab int) *table {
	if tab == numDims {
		return &ix.days
	}
	return &ix.dims[tab]
}

// index adds off to the live set, its day and the sets of its dimensions.
// A doc goes into some 30 sets spread over a large heap, so it works in
// passes that let their cache misses overlap instead of waiting for each in
// turn: make room in the tables (so that no set moves until the end), read
// the home slot of each key, find or insert each set and read where the
// offset will go, and only then add it.
func (ix *Index) index(off uint32, t int64, dims []byte) {
	ix.live.Add(off)
	adds := append(ix.adds[:0], setAdd{tab: numDims, key: dayOf(t)})
	// The encoding was produced by appendDims: it cannot fail.
	_, _ = walkDims(dims, func(dim int, v int64) {
		adds = append(adds, setAdd{tab: dim, key: v})
	})
	var per [numDims + 1]int
	for _, a := range adds {
		per[a.tab]++
	}
	for tab, n := range per {
		ix.table(tab).reserve(n)
	}
	var touched uint32
	for _, a := range adds {
		t := ix.table(a.tab)
		touched += t.slots[t.home(a.key)].n
	}
	for k := range adds {
		a := &adds[k]
		s, isNew := ix.table(a.tab).upsert(a.key)
		switch {
		case isNew:
			ix.sets.add(s, off) // inline: nothing to wait for
			if a.tab == numDims {
				i, _ := slices.BinarySearch(ix.dayKeys, a.key)
				ix.dayKeys = slices.Insert(ix.dayKeys, i, a.key)
			}
		default:
			a.s = s
		}
	}
	for _, a := range adds {
		if s := a.s; s != nil && s.cap != 0 && s.cap != isBitmap {
			touched += ix.sets.chunks[s.w[0]][s.w[1]+min(s.n, s.cap-1)]
		}
	}
	for k := range adds {
		if s := adds[k].s; s != nil {
			ix.sets.add(s, off)
			adds[k].s = nil // no pointer into the tables outlives the call
		}
	}
	ix.adds, ix.touched = adds, touched
}

// unindex undoes index for a live offset and counts its dimensions as
// arena garbage.
func (ix *Index) unindex(off uint32) {
	i := uint64(off) - ix.base
	ix.live.Remove(off)
	day := dayOf(ix.times[i])
	if ix.removeFrom(&ix.days, day, off) {
		if j, found := slices.BinarySearch(ix.dayKeys, day); found {
			ix.dayKeys = slices.Delete(ix.dayKeys, j, j+1)
		}
	}
	n, _ := walkDims(ix.arena[ix.dimAt[i]:], func(dim int, v int64) {
		ix.removeFrom(&ix.dims[dim], v, off)
	})
	ix.garbage += n
	ix.times[i], ix.ids[i], ix.values[i], ix.dimAt[i] = 0, 0, 0, 0
}

// removeFrom takes off out of the set of key in t and reports whether that
// emptied the set, which is then dropped.
func (ix *Index) removeFrom(t *table, key int64, off uint32) bool {
	i := t.find(key)
	if i < 0 {
		return false
	}
	s := &t.slots[i]
	ix.sets.remove(s, off)
	if s.n > 0 {
		return false
	}
	t.deleteAt(i)
	return true
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
// offset once they are most of the slices, and the dims arena and the list
// arena once they are mostly garbage. Each costs O(live docs) and runs
// rarely.
func (ix *Index) compact() {
	if ix.live.IsEmpty() {
		// Every set is gone with the last offset.
		ix.base, ix.times, ix.ids, ix.values, ix.dimAt = 0, nil, nil, nil, nil
		ix.arena, ix.garbage = nil, 0
		ix.sets = lists{}
		return
	}
	if ix.sets.wasteful() {
		ix.sets.compact(ix.tables())
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

// tables returns every table of the index.
func (ix *Index) tables() []*table {
	tabs := []*table{&ix.days}
	for i := range ix.dims {
		tabs = append(tabs, &ix.dims[i])
	}
	return tabs
}

// dayOf returns the UTC day number of a unix time, rounding down.
func dayOf(t int64) int64 {
	d := t / secondsPerDay
	if t%secondsPerDay < 0 {
		d--
	}
	return d
}
