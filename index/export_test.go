package index

// Layout reports how the per-offset slices and the arena are sized, so
// tests can see compaction happen.
func (ix *Index) Layout() (base uint64, slots, arena, garbage int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.base, len(ix.times), len(ix.arena), ix.garbage
}
