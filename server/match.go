package server

import (
	"slices"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// Filter is what a live subscriber (WebSocket channel, SSE stream,
// webhook) asks for. A killmail matches when its system is in Systems OR
// its victim or any attacker is in Characters, AND, when MinValue > 0, its
// zkb totalValue is at least MinValue (a killmail without a zkb block then
// fails). With both lists empty the id criterion is absent and every
// killmail matches (API.md §9 items 9 and 11); WebSocket channels treat an
// empty filter as "nothing" instead (API.md §4.2), which the hub handles
// by not indexing them.
//
// A Filter is a plain value; Match does not modify it and is safe for
// concurrent use. Match is linear in the list lengths: fine for the short
// lists of webhooks; the hub uses inverted indexes instead.
type Filter struct {
	Systems    []int64
	Characters []int64
	MinValue   float64
}

// Match reports whether km passes the filter.
func (f Filter) Match(km *store.Killmail) bool {
	if !f.valueOK(km) {
		return false
	}
	if f.Wildcard() {
		return true
	}
	if slices.Contains(f.Systems, km.SystemID) {
		return true
	}
	return len(f.Characters) > 0 && involves(km, func(id int64) bool { return slices.Contains(f.Characters, id) })
}

// Wildcard reports whether the filter names no system and no character.
func (f Filter) Wildcard() bool { return len(f.Systems) == 0 && len(f.Characters) == 0 }

func (f Filter) valueOK(km *store.Killmail) bool {
	return f.MinValue <= 0 || (km.ZKB != nil && km.ZKB.TotalValue >= f.MinValue)
}

// involves reports whether the victim or an attacker has a character id
// for which in returns true.
func involves(km *store.Killmail, in func(int64) bool) bool {
	if id := km.Victim.CharacterID; id > 0 && in(id) {
		return true
	}
	for i := range km.Attackers {
		if id := km.Attackers[i].CharacterID; id > 0 && in(id) {
			return true
		}
	}
	return false
}

// filterSet is a Filter compiled to hash sets, for matching many
// killmails against one large filter (catch-up reads from the store).
type filterSet struct {
	systems    map[int64]struct{}
	characters map[int64]struct{}
	minValue   float64
	// wildcard: an empty filter matches everything (SSE, webhooks); when
	// false an empty filter matches nothing (WebSocket channels).
	wildcard bool
}

func compileFilter(f Filter, wildcard bool) *filterSet {
	fs := &filterSet{minValue: f.MinValue, wildcard: wildcard}
	fs.systems = make(map[int64]struct{}, len(f.Systems))
	for _, id := range f.Systems {
		fs.systems[id] = struct{}{}
	}
	fs.characters = make(map[int64]struct{}, len(f.Characters))
	for _, id := range f.Characters {
		fs.characters[id] = struct{}{}
	}
	return fs
}

func (fs *filterSet) match(km *store.Killmail) bool {
	if fs.minValue > 0 && (km.ZKB == nil || km.ZKB.TotalValue < fs.minValue) {
		return false
	}
	if len(fs.systems) == 0 && len(fs.characters) == 0 {
		return fs.wildcard
	}
	if _, ok := fs.systems[km.SystemID]; ok {
		return true
	}
	return len(fs.characters) > 0 && involves(km, func(id int64) bool {
		_, ok := fs.characters[id]
		return ok
	})
}

// subscriber is one live consumer registered with the hub. The hub's
// index holds it under each id it asks for; slot is its place in the
// index's once-per-killmail marks (guarded by the hub's mu).
type subscriber struct {
	sink     sink
	minValue float64
	// wildcard subscribers receive every killmail (SSE and Subscribe with
	// no ids).
	wildcard bool
	slot     int32
	// systems and chars are the ids it is indexed under; removed is set
	// once it left. Both guarded by the hub's mu.
	systems, chars []int64
	removed        bool
}

// sink receives the killmails matched for a subscriber. deliver runs on
// the hub's tail goroutine and must not block: it enqueues and returns.
// viaSystem says the subscriber asked for the killmail's system.
type sink interface {
	deliver(ev *liveEvent, viaSystem bool)
}

// smallSet is the size up to which a subSet finds members by scanning.
const smallSet = 32

// subSet is the subscribers of one id: a slice to iterate fast, and a
// position map once it grows, so removal stays O(1) for popular ids.
type subSet struct {
	list []*subscriber
	// slots holds each member's slot (see matchIndex.marks), in list's
	// order, so matching reads no subscriber.
	slots []int32
	pos   map[*subscriber]int
}

func (ss *subSet) add(s *subscriber) bool {
	if ss.index(s) >= 0 {
		return false
	}
	ss.list = append(ss.list, s)
	ss.slots = append(ss.slots, s.slot)
	if ss.pos != nil {
		ss.pos[s] = len(ss.list) - 1
	} else if len(ss.list) > smallSet {
		ss.pos = make(map[*subscriber]int, len(ss.list))
		for i, m := range ss.list {
			ss.pos[m] = i
		}
	}
	return true
}

func (ss *subSet) index(s *subscriber) int {
	if ss.pos != nil {
		if i, ok := ss.pos[s]; ok {
			return i
		}
		return -1
	}
	return slices.Index(ss.list, s)
}

func (ss *subSet) remove(s *subscriber) bool {
	i := ss.index(s)
	if i < 0 {
		return false
	}
	last := len(ss.list) - 1
	ss.list[i] = ss.list[last]
	ss.list[last] = nil
	ss.list = ss.list[:last]
	ss.slots[i] = ss.slots[last]
	ss.slots = ss.slots[:last]
	if ss.pos != nil {
		delete(ss.pos, s)
		if i < last {
			ss.pos[ss.list[i]] = i
		}
	}
	return true
}

// matchIndex is the inverted index of the live subscribers: system id →
// subscribers, character id → subscribers, plus the wildcard ones. The
// cost of matching a killmail is one lookup per id in the killmail plus
// the subscribers that match: it does not grow with the ones that do
// not. Not safe for concurrent use: the hub guards it.
type matchIndex struct {
	bySystem map[int64]*subSet
	// chars maps a character to its followers: the slot of its one
	// follower (> 0), or -i for a set of several in multi[i].
	chars     charTable
	multi     []*subSet
	freeMulti []int32
	wild      subSet
	seq       uint64
	touched   uint32 // keeps matchChars' early loads
	// slots[slot] holds the subscriber in slot and the seq of the last
	// killmail that matched it: each is matched once per killmail, and
	// matching reads this dense array, not the subscribers. Slot 0 is
	// unused; free holds released slots.
	slots []slotState
	free  []int32
	// vals is match's scratch: the table values of a killmail's characters.
	vals []int32
}

// slotState is a subscriber slot of the match index.
type slotState struct {
	mark uint64 // the seq of the last killmail that matched it
	sub  *subscriber
}

func newMatchIndex() *matchIndex {
	return &matchIndex{bySystem: make(map[int64]*subSet), multi: make([]*subSet, 1), slots: make([]slotState, 1)}
}

// enter gives s a slot, once.
func (ix *matchIndex) enter(s *subscriber) {
	if s.slot != 0 {
		return
	}
	if n := len(ix.free); n > 0 {
		s.slot, ix.free = ix.free[n-1], ix.free[:n-1]
		ix.slots[s.slot] = slotState{sub: s}
		return
	}
	s.slot = int32(len(ix.slots))
	ix.slots = append(ix.slots, slotState{sub: s})
}

// release frees the slot of s, which must be out of every set.
func (ix *matchIndex) release(s *subscriber) {
	if s.slot != 0 {
		ix.free = append(ix.free, s.slot)
		ix.slots[s.slot] = slotState{}
		s.slot = 0
	}
}

func addIDs(m map[int64]*subSet, s *subscriber, ids []int64) {
	for _, id := range ids {
		ss := m[id]
		if ss == nil {
			ss = &subSet{}
			m[id] = ss
		}
		ss.add(s)
	}
}

func removeIDs(m map[int64]*subSet, s *subscriber, ids []int64) {
	for _, id := range ids {
		if ss := m[id]; ss != nil && ss.remove(s) && len(ss.list) == 0 {
			delete(m, id)
		}
	}
}

// add indexes s under the ids (and as a wildcard when it asks for that).
func (ix *matchIndex) add(s *subscriber, systems, chars []int64) {
	ix.enter(s)
	addIDs(ix.bySystem, s, systems)
	for _, id := range chars {
		ix.addChar(id, s)
	}
	if s.wildcard {
		ix.wild.add(s)
	}
}

// remove takes s out from under the ids.
func (ix *matchIndex) remove(s *subscriber, systems, chars []int64) {
	removeIDs(ix.bySystem, s, systems)
	for _, id := range chars {
		ix.removeChar(id, s)
	}
	if s.wildcard {
		ix.wild.remove(s)
	}
}

// match appends to out every subscriber km matches, each once, those that
// asked for its system first; nSys counts those. min_value is not applied
// here (see subscriber.minValue).
func (ix *matchIndex) match(km *store.Killmail, out []*subscriber) (matched []*subscriber, nSys int) {
	ix.seq++
	seq := ix.seq
	if ss := ix.bySystem[km.SystemID]; ss != nil {
		for _, sl := range ss.slots {
			ix.slots[sl].mark = seq
		}
		out = append(out, ss.list...)
	}
	nSys = len(out)
	if ix.chars.len() > 0 {
		out = ix.matchChars(km, seq, out)
	}
	return ix.matchSet(&ix.wild, seq, out), nSys
}

// matchChars appends the followers of km's characters not yet matched.
// It goes in three passes over the characters, so that the cache misses
// of each pass overlap instead of coming one after another: it loads each
// character's home slot in the table, then looks each up (now from
// cache) and loads the slot state of its one follower, then marks and
// appends.
func (ix *matchIndex) matchChars(km *store.Killmail, seq uint64, out []*subscriber) []*subscriber {
	touch := ix.chars.touch(km.Victim.CharacterID)
	for i := range km.Attackers {
		touch += ix.chars.touch(km.Attackers[i].CharacterID)
	}
	vals := ix.vals[:0]
	lookup := func(id int64) {
		if id <= 0 {
			return
		}
		if v, ok := ix.chars.get(id); ok {
			vals = append(vals, v)
			if v > 0 {
				touch += uint32(ix.slots[v].mark)
			}
		}
	}
	lookup(km.Victim.CharacterID)
	for i := range km.Attackers {
		lookup(km.Attackers[i].CharacterID)
	}
	ix.touched += touch
	for _, v := range vals {
		if v < 0 {
			out = ix.matchSet(ix.multi[-v], seq, out)
		} else if st := &ix.slots[v]; st.mark != seq {
			st.mark = seq
			out = append(out, st.sub)
		}
	}
	ix.vals = vals[:0]
	return out
}

// eachFollower calls fn with every subscriber that follows a character,
// once per character followed.
func (ix *matchIndex) eachFollower(fn func(*subscriber)) {
	ix.chars.each(func(_ int64, v int32) {
		if v > 0 {
			fn(ix.slots[v].sub)
			return
		}
		for _, s := range ix.multi[-v].list {
			fn(s)
		}
	})
}

func (ix *matchIndex) addChar(id int64, s *subscriber) {
	v, ok := ix.chars.get(id)
	switch {
	case !ok:
		ix.chars.set(id, s.slot)
	case v < 0:
		ix.multi[-v].add(s)
	case v != s.slot:
		ss := &subSet{}
		ss.add(ix.slots[v].sub)
		ss.add(s)
		ix.chars.set(id, -ix.newMulti(ss))
	}
}

func (ix *matchIndex) removeChar(id int64, s *subscriber) {
	v, ok := ix.chars.get(id)
	switch {
	case !ok:
	case v > 0:
		if v == s.slot {
			ix.chars.del(id)
		}
	case ix.multi[-v].remove(s):
		if ss := ix.multi[-v]; len(ss.list) == 1 {
			ix.chars.set(id, ss.list[0].slot)
			ix.multi[-v] = nil
			ix.freeMulti = append(ix.freeMulti, -v)
		}
	}
}

// newMulti stores a set of several followers and returns its index.
func (ix *matchIndex) newMulti(ss *subSet) int32 {
	if n := len(ix.freeMulti); n > 0 {
		i := ix.freeMulti[n-1]
		ix.freeMulti = ix.freeMulti[:n-1]
		ix.multi[i] = ss
		return i
	}
	ix.multi = append(ix.multi, ss)
	return int32(len(ix.multi) - 1)
}

// matchSet appends the members of ss not yet matched by this killmail.
func (ix *matchIndex) matchSet(ss *subSet, seq uint64, out []*subscriber) []*subscriber {
	for i, sl := range ss.slots {
		if st := &ix.slots[sl]; st.mark != seq {
			st.mark = seq
			out = append(out, ss.list[i])
		}
	}
	return out
}
