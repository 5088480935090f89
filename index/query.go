package index

import (
	"math"
	"slices"
)

// Page size limits of a Query.
const (
	DefaultLimit = 50
	MaxLimit     = 10000
)

// directScan is the size under which a dimension result is scanned whole
// rather than day by day, newest day first.
const directScan = 4096

// Query selects docs. Each non-empty id list is a dimension: a doc matches
// a dimension when it carries any of its ids (OR), and the query when it
// matches every dimension (AND) and the time and value bounds. A query with
// no dimension matches every doc within its bounds.
type Query struct {
	Systems, Characters, Corporations, Alliances, ShipTypes []int64
	// Since (inclusive) and Until (exclusive) bound the kill time in unix
	// seconds; 0 means unbounded.
	Since, Until int64
	// MinValue, when > 0, keeps docs whose Value >= MinValue.
	MinValue float64
	// Limit is the page size: <= 0 means DefaultLimit, and it is capped at
	// MaxLimit.
	Limit int
	// After continues a previous page: only docs strictly after this
	// position in newest-first order match.
	After *Cursor
}

// Hit is one matching doc.
type Hit struct {
	Offset     uint64
	Time       int64
	KillmailID int64
}

// Cursor is a position in newest-first order, (Time desc, KillmailID desc).
// Paging strictly after it never repeats or skips a doc, even when docs are
// added between pages (the newer ones just do not show up on later pages).
// It relies on killmail ids being unique across docs, as the store ensures.
type Cursor struct {
	Time       int64
	KillmailID int64
}

// Page is one page of hits, newest first by (Time desc, KillmailID desc).
// Next is nil when there are no more results.
type Page struct {
	Hits []Hit
	Next *Cursor
}

// Search answers q under the read lock. Dimensions are intersected first;
// a small result is then scanned whole, a large one (or none) day by day,
// newest day first, until a page is certain.
func (ix *Index) Search(q Query) Page {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	s := scan{minValue: q.MinValue, after: q.After, top: topK{k: limit + 1}}
	s.lo, s.hi = q.bounds()

	ix.mu.RLock()
	defer ix.mu.RUnlock()
	s.ix = ix
	if s.lo < s.hi {
		set, filtered := ix.dimensions(&q)
		switch {
		case filtered && set.empty():
		case filtered && set.card() <= directScan:
			set.each(s.visit)
		default:
			ix.byDay(&s, set, filtered)
		}
	}
	return s.top.page(limit)
}

// bounds returns the time range [lo, hi) a doc must fall in, the cursor
// included.
func (q *Query) bounds() (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	if q.Since != 0 {
		lo = q.Since
	}
	if q.Until != 0 {
		hi = q.Until
	}
	if q.After != nil && q.After.Time < hi {
		hi = q.After.Time + 1
	}
	return lo, hi
}

// dimensions returns the AND across the query's dimensions of the OR
// within each, and whether the query has any dimension.
func (ix *Index) dimensions(q *Query) (postings, bool) {
	var parts []postings
	for dim, ids := range [numDims][]int64{
		dimSystem: q.Systems, dimShip: q.ShipTypes, dimCharacter: q.Characters,
		dimCorporation: q.Corporations, dimAlliance: q.Alliances,
	} {
		if len(ids) == 0 {
			continue
		}
		var sets []postings
		for _, id := range ids {
			if p, ok := ix.dims[dim][id]; ok {
				sets = append(sets, p)
			}
		}
		if len(sets) == 0 {
			return postings{}, true
		}
		parts = append(parts, union(sets))
	}
	if len(parts) == 0 {
		return postings{}, false
	}
	return intersect(parts), true
}

// byDay feeds s the docs of each day in its time range, newest day first,
// ANDed with set when filtered. It stops once s holds a full page: every
// doc of the days left is older than every doc kept.
func (ix *Index) byDay(s *scan, set postings, filtered bool) {
	first, last := dayOf(s.lo), dayOf(s.hi-1)
	j, found := slices.BinarySearch(ix.dayKeys, last)
	if !found {
		j--
	}
	for ; j >= 0 && ix.dayKeys[j] >= first; j-- {
		day := ix.dayKeys[j]
		docs := ix.days[day]
		if filtered {
			docs = intersect([]postings{docs, set})
		}
		docs.each(s.visit)
		if s.top.full() {
			return
		}
	}
}

// scan filters offsets exactly and keeps the best ones.
type scan struct {
	ix       *Index
	lo, hi   int64
	minValue float64
	after    *Cursor
	top      topK
}

func (s *scan) visit(off uint32) {
	i := uint64(off) - s.ix.base
	t := s.ix.times[i]
	if t < s.lo || t >= s.hi {
		return
	}
	if s.minValue > 0 && !(s.ix.values[i] >= s.minValue) {
		return
	}
	h := Hit{Offset: uint64(off), Time: t, KillmailID: s.ix.ids[i]}
	if s.after != nil && !older(h, Hit{Time: s.after.Time, KillmailID: s.after.KillmailID}) {
		return
	}
	s.top.offer(h)
}

// older reports whether a comes after b in newest-first order.
func older(a, b Hit) bool {
	if a.Time != b.Time {
		return a.Time < b.Time
	}
	return a.KillmailID < b.KillmailID
}

// topK keeps the k newest hits offered, in a heap whose root is the oldest.
type topK struct {
	k int
	h []Hit
}

func (t *topK) full() bool { return len(t.h) >= t.k }

func (t *topK) offer(x Hit) {
	if len(t.h) < t.k {
		t.h = append(t.h, x)
		t.up(len(t.h) - 1)
		return
	}
	if older(x, t.h[0]) {
		return
	}
	t.h[0] = x
	t.down(0)
}

func (t *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !older(t.h[i], t.h[p]) {
			return
		}
		t.h[i], t.h[p] = t.h[p], t.h[i]
		i = p
	}
}

func (t *topK) down(i int) {
	for {
		c := 2*i + 1
		if c >= len(t.h) {
			return
		}
		if c+1 < len(t.h) && older(t.h[c+1], t.h[c]) {
			c++
		}
		if !older(t.h[c], t.h[i]) {
			return
		}
		t.h[i], t.h[c] = t.h[c], t.h[i]
		i = c
	}
}

// page sorts the kept hits newest first and cuts the page; a hit kept
// beyond the limit only says that there is a next page.
func (t *topK) page(limit int) Page {
	hits := t.h
	if hits == nil {
		hits = []Hit{}
	}
	slices.SortFunc(hits, func(a, b Hit) int {
		switch {
		case older(b, a):
			return -1
		case older(a, b):
			return 1
		}
		return 0
	})
	if len(hits) <= limit {
		return Page{Hits: hits}
	}
	last := hits[limit-1]
	return Page{Hits: hits[:limit:limit], Next: &Cursor{Time: last.Time, KillmailID: last.KillmailID}}
}
