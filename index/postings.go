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

// postings is a set of offsets: a sorted list while small, a roaring bitmap
// once large. Exactly one of the two is used; the zero value is empty.
// Query code treats postings as read-only views under the index's read lock.
type postings struct {
	list []uint32
	bm   *roaring.Bitmap
}

// add inserts x. above says that x is above every offset of the index,
// which saves reading the list's tail: a cache miss per set when the index
// is large.
func (p *postings) add(x uint32, above bool) {
	if p.bm != nil {
		p.bm.Add(x)
		return
	}
	if n := len(p.list); above || n == 0 || p.list[n-1] < x {
		p.list = append(p.list, x)
	} else if i, found := slices.BinarySearch(p.list, x); !found {
		p.list = slices.Insert(p.list, i, x)
	}
	if len(p.list) > promoteAt {
		p.bm = roaring.BitmapOf(p.list...)
		p.list = nil
	}
}

func (p *postings) remove(x uint32) {
	if p.bm != nil {
		p.bm.Remove(x)
		if p.bm.GetCardinality() < demoteAt {
			p.list = p.bm.ToArray()
			p.bm = nil
		}
		return
	}
	if i, found := slices.BinarySearch(p.list, x); found {
		p.list = slices.Delete(p.list, i, i+1)
		if len(p.list) == 0 {
			p.list = nil
		}
	}
}

func (p postings) card() uint64 {
	if p.bm != nil {
		return p.bm.GetCardinality()
	}
	return uint64(len(p.list))
}

func (p postings) empty() bool {
	if p.bm != nil {
		return p.bm.IsEmpty()
	}
	return len(p.list) == 0
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
