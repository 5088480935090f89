package index

// Layout reports how the per-offset slices and the arena are sized, so
// tests can see compaction happen.
func (ix *Index) Layout() (base uint64, slots, arena, garbage int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.base, len(ix.times), len(ix.arena), ix.garbage
}

// Footprint estimates the bytes held by each part of the index.
func (ix *Index) Footprint() map[string]uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	f := map[string]uint64{
		"per-offset slices": uint64(cap(ix.times)*8 + cap(ix.ids)*8 + cap(ix.values)*8 + cap(ix.dimAt)*8),
		"dims arena":        uint64(cap(ix.arena)),
		"live bitmap":       ix.live.GetSizeInBytes(),
	}
	count := func(name string, m map[int64]postings) {
		f[name+" keys"] += uint64(len(m))
		for _, p := range m {
			if p.bm != nil {
				f[name+" bitmaps"] += p.bm.GetSizeInBytes() + 80
			} else {
				f[name+" lists"] += uint64(cap(p.list) * 4)
			}
		}
	}
	for dim, m := range ix.dims {
		count([]string{"system", "ship", "character", "corporation", "alliance"}[dim], m)
	}
	count("day", ix.days)
	return f
}
