package index

import (
	"cmp"
	"math"
	"slices"

	"github.com/RoaringBitmap/roaring/v2"
)

// directScan is the number of candidates up to which the smallest
// dimension is scanned whole. Each candidate costs a random read of its
// time, so larger dimensions go day by day instead, where a page usually
// fills from the newest day or two.
const directScan = promoteAt

// lazyDays is how many days byDay intersects with the dimensions one day
// at a time before it computes their whole intersection once: a query
// whose matches are sparse would otherwise redo that work every day.
const lazyDays = 8

// group is one dimension of a query: the sets of its ids, of which a doc
// must be in any.
type group struct {
	sets []postings
	card uint64 // sum of the sets' sizes: an upper bound of the union
}

func (g group) contains(x uint32) bool {
	for _, p := range g.sets {
		if p.contains(x) {
			return true
		}
	}
	return false
}

// bitmaps returns the group's sets as bitmaps, converting lists.
func (g group) bitmaps() []*roaring.Bitmap {
	bms := make([]*roaring.Bitmap, len(g.sets))
	for i, p := range g.sets {
		bms[i] = p.bitmap()
	}
	return bms
}

// groups returns the query's dimensions, smallest first, and false when
// one of them matches nothing.
func (ix *Index) groups(q *Query) ([]group, bool) {
	var groups []group
	for dim, ids := range [numDims][]int64{
		dimSystem: q.Systems, dimShip: q.ShipTypes, dimCharacter: q.Characters,
		dimCorporation: q.Corporations, dimAlliance: q.Alliances,
	} {
		if len(ids) == 0 {
			continue
		}
		if len(ids) > 1 {
			ids = slices.Clone(ids)
			slices.Sort(ids)
			ids = slices.Compact(ids)
		}
		var g group
		for _, id := range ids {
			if p, ok := ix.lookup(&ix.dims[dim], id); ok {
				g.sets = append(g.sets, p)
				g.card += p.card()
			}
		}
		if g.card == 0 {
			return nil, false
		}
		if len(g.sets) > mergeAbove {
			g.sets = []postings{merge(g.sets, g.card)}
		}
		groups = append(groups, g)
	}
	slices.SortFunc(groups, func(a, b group) int { return cmp.Compare(a.card, b.card) })
	return groups, true
}

// mergeAbove is the number of ids in a dimension above which their sets are
// merged into one before the query runs, so that testing an offset against
// the dimension costs one lookup, not one per id.
const mergeAbove = 8

// merge returns the union of sets holding card offsets in all. The lists
// (most ids of a long list have few docs) are ORed through a dense bitset
// over the offsets they span: inserting them one by one into a bitmap
// would shift its arrays for every offset.
func merge(sets []postings, card uint64) postings {
	bms := make([]*roaring.Bitmap, 0, len(sets))
	lo, hi := uint32(math.MaxUint32), uint32(0)
	for _, p := range sets {
		if p.bm != nil {
			bms = append(bms, p.bm)
		} else {
			lo, hi = min(lo, p.list[0]), max(hi, p.list[len(p.list)-1])
		}
	}
	if len(bms) == 0 && card <= promoteAt {
		list := make([]uint32, 0, card)
		for _, p := range sets {
			list = append(list, p.list...)
		}
		slices.Sort(list)
		return postings{list: slices.Compact(list)}
	}
	if lo <= hi {
		base := lo &^ 0xffff // whole containers
		words := make([]uint64, (hi-base)/64+1)
		for _, p := range sets {
			for _, x := range p.list {
				words[(x-base)/64] |= 1 << ((x - base) % 64)
			}
		}
		bms = append(bms, roaring.AddOffset(roaring.FromDense(words, false), base))
	}
	return postings{bm: roaring.FastOr(bms...)} // a new bitmap, even from one input
}

// probe scans the offsets of the first (small) group that every other
// group holds.
func probe(s *scan, groups []group) {
	var cand []uint32
	for _, p := range groups[0].sets {
		p.each(func(x uint32) { cand = append(cand, x) })
	}
	if len(groups[0].sets) > 1 {
		slices.Sort(cand)
		cand = slices.Compact(cand)
	}
	for i := len(cand) - 1; i >= 0; i-- {
		if inAll(groups[1:], cand[i]) {
			s.visit(cand[i])
		}
	}
}

func inAll(groups []group, x uint32) bool {
	for _, g := range groups {
		if !g.contains(x) {
			return false
		}
	}
	return true
}

// byDay feeds s the docs of each day in its time range, newest day first,
// ANDed with the groups. It stops once s holds a full page: every doc of
// the days left is older than every doc kept.
func (ix *Index) byDay(s *scan, groups []group) {
	bms := make([][]*roaring.Bitmap, len(groups))
	for i, g := range groups {
		bms[i] = g.bitmaps()
	}
	var all *roaring.Bitmap // the groups' intersection, once computed
	first, last := dayOf(s.lo), dayOf(s.hi-1)
	j, found := slices.BinarySearch(ix.dayKeys, last)
	if !found {
		j--
	}
	for walked := 0; j >= 0 && ix.dayKeys[j] >= first; j-- {
		docs, _ := ix.lookup(&ix.days, ix.dayKeys[j])
		switch {
		case len(groups) == 0:
			s.feed(docs)
		case docs.bm == nil:
			for i := len(docs.list) - 1; i >= 0; i-- {
				if inAll(groups, docs.list[i]) {
					s.visit(docs.list[i])
				}
			}
		case all != nil:
			s.feed(postings{bm: roaring.And(docs.bm, all)})
		default:
			s.feed(postings{bm: andGroups(docs.bm, bms)})
		}
		if s.top.full() {
			return
		}
		if walked++; walked == lazyDays && len(groups) > 0 {
			all = intersectGroups(bms)
		}
	}
}

// andGroups returns day ∩ (∪ bms[0]) ∩ (∪ bms[1]) ∩ ... as a new bitmap.
func andGroups(day *roaring.Bitmap, bms [][]*roaring.Bitmap) *roaring.Bitmap {
	cand := day
	for i, g := range bms {
		switch {
		case len(g) == 1:
			cand = roaring.And(cand, g[0])
		case i == 0:
			cand = cand.Clone() // AndAny works in place: keep the day intact
			cand.AndAny(g...)
		default:
			cand.AndAny(g...)
		}
		if cand.IsEmpty() {
			break
		}
	}
	return cand
}

// intersectGroups returns (∪ bms[0]) ∩ (∪ bms[1]) ∩ ... It may return a
// set of the index itself: read only.
func intersectGroups(bms [][]*roaring.Bitmap) *roaring.Bitmap {
	parts := make([]*roaring.Bitmap, len(bms))
	for i, g := range bms {
		if len(g) == 1 {
			parts[i] = g[0]
		} else {
			parts[i] = roaring.FastOr(g...)
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return roaring.FastAnd(parts...)
}
