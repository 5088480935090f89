package index

import (
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// A list longer than promoteAt becomes a bitmap; a bitmap smaller than
// demoteAt becomes a list again. Below about a thousand offsets spread over
// the whole log, a []uint32 is smaller than a roaring bitmap (which pays
// ~50 bytes per 64k-offset container it touches) and as quick to query.
const (
	promoteAt = 1024
	demoteAt  = 256
)

// postings is a read-only view of a set of offsets: a sorted list while
// small, a roaring bitmap once large. Exactly one of the two is used; the
// zero value is empty. A view of a set of the index (see lists.view) shares
// its storage: it is valid under the index's read lock only.
type postings struct {
	list []uint32
	bm   *roaring.Bitmap
}

func (p postings) card() uint64 {
	if p.bm != nil {
		return p.bm.GetCardinality()
	}
	return uint64(len(p.list))
}

func (p postings) contains(x uint32) bool {
	if p.bm != nil {
		return p.bm.Contains(x)
	}
	_, found := slices.BinarySearch(p.list, x)
	return found
}

// bitmap returns p as a bitmap, shared with p when it is one.
func (p postings) bitmap() *roaring.Bitmap {
	if p.bm != nil {
		return p.bm
	}
	return roaring.BitmapOf(p.list...)
}

// each calls fn for every offset in ascending order.
func (p postings) each(fn func(uint32)) {
	if p.bm == nil {
		for _, x := range p.list {
			fn(x)
		}
		return
	}
	var buf [256]uint32
	it := p.bm.ManyIterator()
	for n := it.NextMany(buf[:]); n > 0; n = it.NextMany(buf[:]) {
		for _, x := range buf[:n] {
			fn(x)
		}
	}
}
