package index

import (
	"math"
	"math/bits"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// set is one set of offsets as a table stores it: 32 bytes, two to a cache
// line, and no pointer. Up to inlineCap offsets live in the set itself,
// up to promoteAt in a run of the list arena, and more in a roaring bitmap
// the lists keep.
type set struct {
	key int64
	// n is the number of offsets; 0 marks a free table slot.
	n uint32
	// cap is 0 for offsets inline in w, isBitmap for a bitmap whose index
	// in lists.bms is w[0], else the capacity of the run at position w[1]
	// of chunk w[0], whose last offset is w[2].
	cap uint32
	w   [inlineCap]uint32
}

const (
	// inlineCap is the number of offsets a set holds without the arena:
	// most ids appear on a handful of killmails.
	inlineCap = 4
	// isBitmap is set.cap for a set held as a bitmap.
	isBitmap = math.MaxUint32
	// minRun is the capacity of the smallest run; runs double up to
	// promoteAt, in numClasses sizes.
	minRun     = 8
	numClasses = 8
	// Arena chunks grow from minChunk offsets to maxChunk; a run never
	// spans two of them.
	minChunk = 1 << 12
	maxChunk = 1 << 20
)

// lists holds the storage of the sets of an index that do not fit inline:
// sorted runs of offsets in a chunked arena of []uint32, and bitmaps. A
// run that grows moves to a run twice as large; freed runs are kept by
// size for reuse, and counted as garbage until then.
type lists struct {
	chunks  [][]uint32
	top     int                  // offsets handed out of the last chunk
	idle    [numClasses][]uint64 // free runs by size class, chunk<<32 | position
	size    int                  // offsets in all chunks
	garbage int                  // offsets in free runs and unused chunk tails
	bms     []*roaring.Bitmap
	idleBms []uint32 // free indexes of bms
}

// class returns the size class of a run of capacity c, a power of two.
func class(c uint32) int { return bits.TrailingZeros32(c / minRun) }

// runFor returns the capacity of the smallest run holding n offsets.
func runFor(n int) uint32 { return uint32(max(minRun, 1<<bits.Len(uint(n-1)))) }

// view returns s as postings, valid until s or the lists change.
func (l *lists) view(s *set) postings {
	switch s.cap {
	case 0:
		return postings{list: s.w[:s.n:s.n]}
	case isBitmap:
		return postings{bm: l.bms[s.w[0]]}
	}
	return postings{list: l.run(s)[:s.n:s.n]}
}

// run returns the offsets of a set held in the arena, with room up to its
// capacity.
func (l *lists) run(s *set) []uint32 {
	p := s.w[1]
	return l.chunks[s.w[0]][p : p+s.n : p+s.cap]
}

// list returns the offsets of a set not held as a bitmap.
func (l *lists) list(s *set) []uint32 {
	if s.cap == 0 {
		return s.w[:s.n]
	}
	return l.run(s)
}

// add inserts x into s and reports whether it was missing. Appending an
// offset above all others only writes the run, if any: it does not wait
// for the run to be read into the cache.
func (l *lists) add(s *set, x uint32) bool {
	if s.cap == isBitmap {
		if !l.bms[s.w[0]].CheckedAdd(x) {
			return false
		}
		s.n++
		return true
	}
	list := l.list(s)
	n := len(list)
	last := s.w[2]
	if s.cap == 0 && n > 0 {
		last = list[n-1]
	}
	i := n
	if n > 0 && x <= last {
		j, found := slices.BinarySearch(list, x)
		if found {
			return false
		}
		i = j
	}
	switch room := cap(list); {
	case n == promoteAt:
		bm := roaring.BitmapOf(list...)
		bm.Add(x)
		l.setBitmap(s, bm)
		return true
	case n == room:
		list = l.move(s, list, max(minRun, 2*s.cap))
	}
	list = list[:n+1]
	copy(list[i+1:], list[i:n])
	list[i] = x
	s.n++
	if s.cap != 0 && i == n {
		s.w[2] = x
	}
	return true
}

// remove takes x out of s and reports whether it was there. A bitmap
// smaller than demoteAt becomes a list, a run mostly empty shrinks and a
// list short enough moves inline.
func (l *lists) remove(s *set, x uint32) bool {
	if s.cap == isBitmap {
		bm := l.bms[s.w[0]]
		if !bm.CheckedRemove(x) {
			return false
		}
		if s.n--; s.n < demoteAt {
			l.setList(s, bm.ToArray())
		}
		return true
	}
	list := l.list(s)
	i, found := slices.BinarySearch(list, x)
	if !found {
		return false
	}
	copy(list[i:], list[i+1:])
	s.n--
	switch {
	case s.cap == 0:
		s.w[s.n] = 0
	case s.n <= inlineCap:
		l.setList(s, list[:s.n])
	case s.cap > minRun && s.n <= s.cap/4:
		l.move(s, list[:s.n], s.cap/2)
	default:
		s.w[2] = list[s.n-1]
	}
	return true
}

// setList makes s hold list, a sorted set of offsets that may be a view of
// s itself, releasing what s held before.
func (l *lists) setList(s *set, list []uint32) {
	n := len(list)
	switch {
	case n > promoteAt:
		l.setBitmap(s, roaring.BitmapOf(list...))
	case n <= inlineCap:
		var w [inlineCap]uint32
		copy(w[:], list)
		l.release(s)
		s.n, s.cap, s.w = uint32(n), 0, w
	default:
		l.move(s, list, runFor(n))
		s.n = uint32(n)
	}
}

// setBitmap makes s hold bm, releasing what s held before.
func (l *lists) setBitmap(s *set, bm *roaring.Bitmap) {
	l.release(s)
	var i uint32
	if k := len(l.idleBms); k > 0 {
		i = l.idleBms[k-1]
		l.idleBms = l.idleBms[:k-1]
		l.bms[i] = bm
	} else {
		i = uint32(len(l.bms))
		l.bms = append(l.bms, bm)
	}
	s.n, s.cap, s.w = uint32(bm.GetCardinality()), isBitmap, [inlineCap]uint32{i}
}

// move copies list, the offsets of s (at least one), to a new run of
// capacity c, releases what s held and returns the new run.
func (l *lists) move(s *set, list []uint32, c uint32) []uint32 {
	chunk, pos := l.alloc(c)
	run := l.chunks[chunk][pos : pos+uint32(len(list)) : pos+c]
	copy(run, list)
	l.release(s)
	s.cap, s.w = c, [inlineCap]uint32{chunk, pos, list[len(list)-1]}
	return run
}

// release frees the run or bitmap of s, leaving its fields to the caller.
func (l *lists) release(s *set) {
	switch s.cap {
	case 0:
	case isBitmap:
		l.bms[s.w[0]] = nil
		l.idleBms = append(l.idleBms, s.w[0])
	default:
		c := class(s.cap)
		l.idle[c] = append(l.idle[c], uint64(s.w[0])<<32|uint64(s.w[1]))
		l.garbage += int(s.cap)
	}
}

// alloc returns a free run of capacity c: a released one if any, else
// the next one of the last chunk, or of a new chunk.
func (l *lists) alloc(c uint32) (chunk, pos uint32) {
	k := class(c)
	if idle := l.idle[k]; len(idle) > 0 {
		r := idle[len(idle)-1]
		l.idle[k] = idle[:len(idle)-1]
		l.garbage -= int(c)
		return uint32(r >> 32), uint32(r)
	}
	if len(l.chunks) == 0 || l.top+int(c) > len(l.chunks[len(l.chunks)-1]) {
		if len(l.chunks) > 0 {
			l.garbage += len(l.chunks[len(l.chunks)-1]) - l.top
		}
		n := min(maxChunk, max(minChunk, l.size))
		l.chunks = append(l.chunks, make([]uint32, n))
		l.size += n
		l.top = 0
	}
	pos = uint32(l.top)
	l.top += int(c)
	return uint32(len(l.chunks) - 1), pos
}

// wasteful reports whether most of the arena is garbage, and enough of it
// to be worth a compaction.
func (l *lists) wasteful() bool {
	return l.garbage >= maxChunk && 2*l.garbage >= l.size
}

// compact moves the runs of the sets of tabs into a new arena, each run
// just large enough, and drops the old arena. It costs O(offsets in runs).
func (l *lists) compact(tabs []*table) {
	fresh := lists{bms: l.bms, idleBms: l.idleBms}
	for _, t := range tabs {
		for i := range t.slots {
			s := &t.slots[i]
			if s.n == 0 || s.cap == 0 || s.cap == isBitmap {
				continue
			}
			list := l.run(s)
			c := runFor(len(list))
			chunk, pos := fresh.alloc(c)
			copy(fresh.chunks[chunk][pos:pos+c], list)
			s.cap, s.w[0], s.w[1] = c, chunk, pos
		}
	}
	*l = fresh
}
