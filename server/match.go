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
	byChar   map[int64]charSubs
	wild     subSet
	seq      uint64
	// marks[slot] is the seq of the last killmail that matched the
	// subscriber in slot: each is matched once per killmail, and the
	// marks sit together in a few cache lines instead of one per
	// subscriber. Slot 0 is unused; free holds released slots.
	marks []uint64
	free  []int32
}

func newMatchIndex() *matchIndex {
	return &matchIndex{bySystem: make(map[int64]*subSet), byChar: make(map[int64]charSubs), marks: make([]uint64, 1)}
}

// enter gives s a slot, once.
func (ix *matchIndex) enter(s *subscriber) {
	if s.slot != 0 {
		return
	}
	if n := len(ix.free); n > 0 {
		s.slot, ix.free = ix.free[n-1], ix.free[:n-1]
		ix.marks[s.slot] = 0
		return
	}
	s.slot = int32(len(ix.marks))
	ix.marks = append(ix.marks, 0)
}

// release frees the slot of s, which must be out of every set.
func (ix *matchIndex) release(s *subscriber) {
	if s.slot != 0 {
		ix.free = append(ix.free, s.slot)
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
			ix.marks[sl] = seq
		}
		out = append(out, ss.list...)
	}
	nSys = len(out)
	if len(ix.byChar) > 0 {
		out = ix.matchChar(km.Victim.CharacterID, seq, out)
		for i := range km.Attackers {
			out = ix.matchChar(km.Attackers[i].CharacterID, seq, out)
		}
	}
	return ix.matchSet(&ix.wild, seq, out), nSys
}

func (ix *matchIndex) matchChar(id int64, seq uint64, out []*subscriber) []*subscriber {
	if id <= 0 {
		return out
	}
	cs, ok := ix.byChar[id]
	switch {
	case !ok:
	case cs.more != nil:
		out = ix.matchSet(cs.more, seq, out)
	case ix.marks[cs.slot] != seq:
		ix.marks[cs.slot] = seq
		out = append(out, cs.one)
	}
	return out
}

// charSubs is the subscribers of one character. Most characters have one
// follower, held in the map's own slot (one memory read to match it);
// more move to a subSet.
type charSubs struct {
	one  *subscriber
	slot int32
	more *subSet
}

// each calls fn with every member.
func (cs charSubs) each(fn func(*subscriber)) {
	if cs.more == nil {
		fn(cs.one)
		return
	}
	for _, s := range cs.more.list {
		fn(s)
	}
}

func (ix *matchIndex) addChar(id int64, s *subscriber) {
	cs, ok := ix.byChar[id]
	switch {
	case !ok:
		cs = charSubs{one: s, slot: s.slot}
	case cs.more != nil:
		cs.more.add(s)
	case cs.one != s:
		cs.more = &subSet{}
		cs.more.add(cs.one)
		cs.more.add(s)
		cs.one, cs.slot = nil, 0
	}
	ix.byChar[id] = cs
}

func (ix *matchIndex) removeChar(id int64, s *subscriber) {
	cs, ok := ix.byChar[id]
	switch {
	case !ok:
	case cs.more == nil:
		if cs.one == s {
			delete(ix.byChar, id)
		}
	case cs.more.remove(s):
		if len(cs.more.list) == 1 {
			one := cs.more.list[0]
			ix.byChar[id] = charSubs{one: one, slot: one.slot}
		}
	}
}

// matchSet appends the members of ss not yet matched by this killmail.
func (ix *matchIndex) matchSet(ss *subSet, seq uint64, out []*subscriber) []*subscriber {
	for i, sl := range ss.slots {
		if ix.marks[sl] != seq {
			ix.marks[sl] = seq
			out = append(out, ss.list[i])
		}
	}
	return out
}
