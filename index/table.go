package index

import (
	"cmp"
	"math/bits"
	"slices"
)

// table maps the ids of one dimension (or the days) to their sets. It is an
// open-addressing hash table with linear probing whose slots are the sets
// themselves: pointer-free, so the garbage collector never scans it, and a
// lookup usually reads one cache line, holding the whole set when it is
// small. The zero value is empty and ready to use.
//
// Pointers into slots are valid until the next upsert or deleteAt.
type table struct {
	slots []set // a power of two of them, or none
	count int   // slots in use
	shift uint8 // 64 - log2(len(slots))
	seed  uint64
}

// minSlots is the size of a table's first allocation.
const minSlots = 8

// home returns the slot where the probe for key starts (Fibonacci hashing
// of the seeded key: ids that follow each other spread evenly).
func (t *table) home(key int64) int {
	return int(((uint64(key) ^ t.seed) * 0x9e3779b97f4a7c15) >> t.shift)
}

// find returns the slot holding key, or -1.
func (t *table) find(key int64) int {
	if t.count == 0 {
		return -1
	}
	mask := len(t.slots) - 1
	for i := t.home(key); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.n == 0 {
			return -1
		}
		if s.key == key {
			return i
		}
	}
}

// upsert returns the set of key and whether it is new, in one probe. A new
// set is empty, which marks a free slot: the caller must put an offset in
// it before any other use of the table.
func (t *table) upsert(key int64) (*set, bool) {
	if (t.count+1)*4 > len(t.slots)*3 {
		t.resize(max(minSlots, 2*len(t.slots)))
	}
	mask := len(t.slots) - 1
	for i := t.home(key); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.n == 0 {
			*s = set{key: key}
			t.count++
			return s, true
		}
		if s.key == key {
			return s, false
		}
	}
}

// reserve makes room for n more keys, so that the next n upserts move no
// set.
func (t *table) reserve(n int) {
	if (t.count+n)*4 > len(t.slots)*3 {
		size := max(minSlots, len(t.slots))
		for (t.count+n)*4 > size*3 {
			size *= 2
		}
		t.resize(size)
	}
}

// deleteAt frees slot i, whose set must be empty and hold no storage, and
// shifts back the entries probed past it. A table left mostly empty
// shrinks.
func (t *table) deleteAt(i int) {
	mask := len(t.slots) - 1
	for j := (i + 1) & mask; t.slots[j].n != 0; j = (j + 1) & mask {
		// The entry at j may fill the hole at i unless its probe starts
		// in the cyclic range (i, j].
		if h := t.home(t.slots[j].key); (j-h)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = set{}
	t.count--
	if len(t.slots) > minSlots && t.count*8 < len(t.slots) {
		t.resize(max(minSlots, 1<<bits.Len(uint(t.count*8/3))))
	}
}

// resize rehashes the table into n slots, a power of two.
func (t *table) resize(n int) {
	old := t.slots
	t.slots = make([]set, n)
	t.shift = uint8(64 - bits.TrailingZeros(uint(n)))
	mask := n - 1
	for k := range old {
		if old[k].n == 0 {
			continue
		}
		i := t.home(old[k].key)
		for t.slots[i].n != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = old[k]
	}
}

// sorted returns the slots in use, ordered by key.
func (t *table) sorted() []int {
	type ref struct {
		key int64
		i   int
	}
	refs := make([]ref, 0, t.count)
	for i := range t.slots {
		if t.slots[i].n != 0 {
			refs = append(refs, ref{t.slots[i].key, i})
		}
	}
	slices.SortFunc(refs, func(a, b ref) int { return cmp.Compare(a.key, b.key) })
	out := make([]int, len(refs))
	for k, r := range refs {
		out[k] = r.i
	}
	return out
}
