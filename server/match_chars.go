package server

import (
	"math"
	"math/bits"
)

// charTable maps character ids to int32 values for the match index. It is
// an open-addressing hash table with linear probing whose entries (a
// 32-bit id and its value) take 8 bytes, so that a lookup, the step of
// matching repeated for every character of every killmail, usually reads
// one cache line: a Go map of int64 keys to a pointerful value reads
// several and holds four times the bytes. Character ids are positive and
// below 2^32 (EVE's are below 2^31); others go to a plain map.
//
// Removal shifts the following entries back instead of leaving
// tombstones, so lookups never slow down as subscribers churn. Not safe
// for concurrent use.
type charTable struct {
	slots []charSlot // len is a power of two, or 0
	shift uint8      // 64 - log2(len(slots))
	n     int
	wide  map[int64]int32 // ids outside (0, 2^32)
}

type charSlot struct {
	id  uint32 // 0: empty
	val int32
}

// minCharSlots is the table's first size.
const minCharSlots = 64

func narrowID(id int64) (uint32, bool) {
	return uint32(id), id > 0 && id <= math.MaxUint32
}

// home is the slot where id's probe starts (Fibonacci hashing).
func (t *charTable) home(id uint32) int {
	return int((uint64(id) * 0x9E3779B97F4A7C15) >> t.shift)
}

// len returns how many ids the table holds.
func (t *charTable) len() int { return t.n + len(t.wide) }

// get returns the value of id.
func (t *charTable) get(id int64) (int32, bool) {
	k, ok := narrowID(id)
	if !ok {
		v, ok := t.wide[id]
		return v, ok
	}
	if t.n == 0 {
		return 0, false
	}
	mask := len(t.slots) - 1
	for i := t.home(k); ; i = (i + 1) & mask {
		s := t.slots[i]
		if s.id == k {
			return s.val, true
		}
		if s.id == 0 {
			return 0, false
		}
	}
}

// touch loads the home slot of id and returns what it holds, for the
// caller to keep: a way to start the cache misses of many lookups at once.
func (t *charTable) touch(id int64) uint32 {
	if len(t.slots) == 0 {
		return 0
	}
	return t.slots[t.home(uint32(id))].id
}

// set makes val the value of id.
func (t *charTable) set(id int64, val int32) {
	k, ok := narrowID(id)
	if !ok {
		if t.wide == nil {
			t.wide = make(map[int64]int32)
		}
		t.wide[id] = val
		return
	}
	if 2*(t.n+1) > len(t.slots) {
		t.resize(max(minCharSlots, 2*len(t.slots)))
	}
	mask := len(t.slots) - 1
	for i := t.home(k); ; i = (i + 1) & mask {
		switch t.slots[i].id {
		case k:
			t.slots[i].val = val
			return
		case 0:
			t.slots[i] = charSlot{id: k, val: val}
			t.n++
			return
		}
	}
}

// del removes id, shifting back the entries after it that probed past
// its slot.
func (t *charTable) del(id int64) {
	k, ok := narrowID(id)
	if !ok {
		delete(t.wide, id)
		return
	}
	if t.n == 0 {
		return
	}
	mask := len(t.slots) - 1
	i := t.home(k)
	for ; t.slots[i].id != k; i = (i + 1) & mask {
		if t.slots[i].id == 0 {
			return
		}
	}
	// Backward-shift deletion: move up each later entry of the cluster
	// whose home is not between the hole and it (cyclically).
	for j := (i + 1) & mask; t.slots[j].id != 0; j = (j + 1) & mask {
		h := t.home(t.slots[j].id)
		if (j-h)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = charSlot{}
	t.n--
	if len(t.slots) > minCharSlots && 8*t.n < len(t.slots) {
		t.resize(len(t.slots) / 2)
	}
}

// resize rehashes the entries into size slots.
func (t *charTable) resize(size int) {
	old := t.slots
	t.slots = make([]charSlot, size)
	t.shift = uint8(64 - bits.TrailingZeros(uint(size)))
	mask := size - 1
	for _, s := range old {
		if s.id == 0 {
			continue
		}
		i := t.home(s.id)
		for t.slots[i].id != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// each calls fn with every id and value.
func (t *charTable) each(fn func(id int64, val int32)) {
	for _, s := range t.slots {
		if s.id != 0 {
			fn(int64(s.id), s.val)
		}
	}
	for id, v := range t.wide {
		fn(id, v)
	}
}
