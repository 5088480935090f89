package store

import (
	"context"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// recent holds the records of the newest offsets in memory, up to a byte
// budget, so that what most readers ask for (the live tail, preloads,
// resumes and queries over the last days) is served without a trip
// through the LSM. It covers one contiguous range of offsets
// [lo, lo+len(recs)); a nil slot is an offset it does not hold (deleted,
// or not loaded). New records enter at the top and the oldest leave first.
type recent struct {
	mu    sync.RWMutex
	limit int
	lo    uint64
	recs  [][]byte
	bytes int
}

func newRecent(limit int, next uint64) *recent {
	return &recent{limit: limit, lo: next}
}

// size returns the bytes of the records held.
func (r *recent) size() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return uint64(r.bytes)
}

// get returns the record at off, shared: read only.
func (r *recent) get(off uint64) ([]byte, bool) {
	if r.limit <= 0 {
		return nil, false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if off < r.lo || off-r.lo >= uint64(len(r.recs)) {
		return nil, false
	}
	rec := r.recs[off-r.lo]
	return rec, rec != nil
}

// put holds rec (which must not change afterwards) as the record at off.
// Offsets below the range are ignored: they are older than what it keeps.
func (r *recent) put(off uint64, rec []byte) {
	if r.limit <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if off < r.lo {
		return
	}
	i := off - r.lo
	for uint64(len(r.recs)) <= i {
		r.recs = append(r.recs, nil)
	}
	r.bytes += len(rec) - len(r.recs[i])
	r.recs[i] = rec
	r.evict()
}

// drop forgets the record at off (deleted by retention).
func (r *recent) drop(off uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if off >= r.lo && off-r.lo < uint64(len(r.recs)) {
		r.bytes -= len(r.recs[off-r.lo])
		r.recs[off-r.lo] = nil
	}
}

// evict drops the oldest records until the budget holds. Called with mu.
func (r *recent) evict() {
	n := 0
	for r.bytes > r.limit && n < len(r.recs) {
		r.bytes -= len(r.recs[n])
		r.recs[n] = nil
		n++
	}
	if n > 0 {
		r.recs = r.recs[n:]
		r.lo += uint64(n)
	}
	// Reslicing from the front leaks the array's head until append
	// reallocates; copy down once the dead part dominates.
	if cap(r.recs) > 1024 && len(r.recs) < cap(r.recs)/4 {
		r.recs = append([][]byte(nil), r.recs...)
	}
}

// warm loads the newest stored records below the range, newest first,
// until the budget is used, then installs them under the range in one
// step. It runs in the background after Open; ctx stops it.
func (r *recent) warm(ctx context.Context, db *pebble.DB) error {
	r.mu.RLock()
	top, room := r.lo, r.limit-r.bytes
	r.mu.RUnlock()
	if top <= 1 || room <= 0 {
		return nil
	}
	it, err := db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: logKey(1), UpperBound: logKey(top)})
	if err != nil {
		return err
	}
	defer it.Close()
	var loaded [][]byte // newest first
	bottom := top
	for ok := it.Last(); ok && room > 0; ok = it.Prev() {
		if err := ctx.Err(); err != nil {
			return err
		}
		off := parseLogKey(it.Key())
		if off == 0 || off >= bottom {
			continue
		}
		for bottom--; bottom > off; bottom-- {
			loaded = append(loaded, nil) // a gap retention left
		}
		rec, err := plainRecord(off, it.Value())
		if err != nil {
			return err
		}
		loaded = append(loaded, rec)
		room -= len(rec)
	}
	if err := it.Error(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lo != top || len(loaded) == 0 {
		return nil // the range moved meanwhile (eviction): keep it simple
	}
	recs := make([][]byte, 0, len(loaded)+len(r.recs))
	for i := len(loaded) - 1; i >= 0; i-- {
		recs = append(recs, loaded[i])
		r.bytes += len(loaded[i])
	}
	r.recs = append(recs, r.recs...)
	r.lo = top - uint64(len(loaded))
	r.evict()
	return nil
}

// read returns the held entries after offset after, up to head and max,
// in log order; false when the range does not reach down to after+1.
func (r *recent) read(after, head uint64, max int) ([]Entry, bool, error) {
	if r.limit <= 0 {
		return nil, false, nil
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if after+1 < r.lo {
		return nil, false, nil
	}
	var out []Entry
	for off := after + 1; off <= head && len(out) < max; off++ {
		if off-r.lo >= uint64(len(r.recs)) {
			break
		}
		rec := r.recs[off-r.lo]
		if rec == nil {
			continue // deleted
		}
		e, err := decodeRecord(off, rec)
		if err != nil {
			return nil, true, err
		}
		out = append(out, e)
	}
	return out, true, nil
}
