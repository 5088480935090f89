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

// Search answers q under the read lock. When one dimension matches few
// docs, its offsets are probed against the other dimensions and scanned
// whole; otherwise the days in range are walked newest first, each ANDed
// with the dimensions, until a page is certain.
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
	if buf, ok := ix.bufs.Get().(*[]uint32); ok {
		s.buf = *buf
	}
	defer func() { ix.bufs.Put(&s.buf) }()
	if s.lo >= s.hi {
		return s.top.page(limit)
	}
	groups, ok := ix.groups(&q)
	switch {
	case !ok:
	case len(groups) > 0 && groups[0].card <= directScan:
		probe(&s, groups)
	default:
		ix.byDay(&s, groups)
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

// scan filters offsets exactly and keeps the best ones.
type scan struct {
	ix       *Index
	lo, hi   int64
	minValue float64
	after    *Cursor
	top      topK
	buf      []uint32
}

// feed visits the offsets of p from the highest down: offsets mostly grow
// with time, so the page fills with the newest docs first and the rest are
// turned away by one comparison.
func (s *scan) feed(p postings) {
	list := p.list
	if p.bm != nil {
		s.buf = slices.Grow(s.buf[:0], int(p.bm.GetCardinality()))
		it := p.bm.ManyIterator()
		for {
			s.buf = slices.Grow(s.buf, 256)
			n := it.NextMany(s.buf[len(s.buf) : len(s.buf)+256])
			if n == 0 {
				break
			}
			s.buf = s.buf[:len(s.buf)+n]
		}
		list = s.buf
	}
	for i := len(list) - 1; i >= 0; i-- {
		s.visit(list[i])
	}
}

func (s *scan) visit(off uint32) {
	i := uint64(off) - s.ix.base
	if i >= uint64(len(s.ix.times)) {
		return // only an inconsistent snapshot could get here
	}
	t := s.ix.times[i]
	if t < s.lo || t >= s.hi || (s.top.full() && t < s.top.h[0].Time) {
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
