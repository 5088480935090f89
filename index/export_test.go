package index

import "unsafe"

// Layout reports how the per-offset slices and the arena are sized, so
// tests can see compaction happen.
func (ix *Index) Layout() (base uint64, slots, arena, garbage int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.base, len(ix.times), len(ix.arena), ix.garbage
}

// ListLayout reports the offsets the list arena holds and how many of them
// are garbage, and how many sets are bitmaps.
func (ix *Index) ListLayout() (size, garbage, bitmaps int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.sets.size, ix.sets.garbage, len(ix.sets.bms) - len(ix.sets.idleBms)
}

// Footprint estimates the bytes held by each part of the index.
func (ix *Index) Footprint() map[string]uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	f := map[string]uint64{
		"per-offset slices":  uint64(cap(ix.times)*8 + cap(ix.ids)*8 + cap(ix.values)*8 + cap(ix.dimAt)*8),
		"dims arena":         uint64(cap(ix.arena)),
		"live bitmap":        ix.live.GetSizeInBytes(),
		"list arena":         uint64(ix.sets.size * 4),
		"list arena garbage": uint64(ix.sets.garbage * 4),
	}
	count := func(name string, t *table) {
		f[name+" keys"] += uint64(t.count)
		f[name+" table"] += uint64(cap(t.slots)) * uint64(unsafe.Sizeof(set{}))
		for i := range t.slots {
			if s := &t.slots[i]; s.n != 0 && s.cap == isBitmap {
				f[name+" bitmaps"] += ix.sets.bms[s.w[0]].GetSizeInBytes() + 80
			}
		}
	}
	for dim := range ix.dims {
		count([]string{"system", "ship", "character", "corporation", "alliance"}[dim], &ix.dims[dim])
	}
	count("day", &ix.days)
	return f
}
