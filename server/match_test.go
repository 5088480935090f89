package server

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// TestMatchIndexAgreesWithFilters subscribes, re-subscribes and removes
// subscribers at random (characters shared by several, so that sets grow
// past one member and shrink back) and checks after each step that the
// index matches every killmail to exactly the live subscribers whose
// filter matches it, each once, system subscribers first.
func TestMatchIndexAgreesWithFilters(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ix := newMatchIndex()
	type member struct {
		s     *subscriber
		sys   []int64
		chars []int64
	}
	var live []*member
	ids := func(base int64, n, spread int) []int64 {
		out := make([]int64, 0, n)
		for range n {
			if id := base + int64(r.IntN(spread)); !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		return out
	}
	killmail := func() *store.Killmail {
		km := &store.Killmail{SystemID: 30000000 + int64(r.IntN(12))}
		km.Victim.CharacterID = 90000000 + int64(r.IntN(15))
		for range r.IntN(4) {
			km.Attackers = append(km.Attackers, store.Attacker{CharacterID: 90000000 + int64(r.IntN(15))})
		}
		return km
	}
	var out []*subscriber
	for step := range 600 {
		switch op := r.IntN(10); {
		case op < 5 || len(live) == 0:
			m := &member{s: &subscriber{}, sys: ids(30000000, r.IntN(3), 12), chars: ids(90000000, r.IntN(4), 15)}
			ix.add(m.s, m.sys, m.chars)
			live = append(live, m)
		case op < 7:
			m := live[r.IntN(len(live))]
			delChars := m.chars[:r.IntN(len(m.chars)+1)]
			addChars := ids(90000000, r.IntN(3), 15)
			ix.remove(m.s, nil, delChars)
			m.chars = slices.DeleteFunc(slices.Clone(m.chars), func(id int64) bool { return slices.Contains(delChars, id) })
			var fresh []int64
			for _, id := range addChars {
				if !slices.Contains(m.chars, id) {
					fresh = append(fresh, id)
				}
			}
			ix.add(m.s, nil, fresh)
			m.chars = append(m.chars, fresh...)
		default:
			i := r.IntN(len(live))
			m := live[i]
			ix.remove(m.s, m.sys, m.chars)
			ix.release(m.s)
			live = slices.Delete(live, i, i+1)
		}
		for range 5 {
			km := killmail()
			var nSys int
			out, nSys = ix.match(km, out[:0])
			var want []*subscriber
			wantSys := 0
			for _, m := range live {
				f := Filter{Systems: m.sys, Characters: m.chars}
				if !f.Wildcard() && f.Match(km) {
					want = append(want, m.s)
					if slices.Contains(m.sys, km.SystemID) {
						wantSys++
					}
				}
			}
			require.ElementsMatch(t, want, out, "step %d", step)
			require.Equal(t, wantSys, nSys, "step %d: system subscribers first", step)
			for _, s := range out[:nSys] {
				m := live[slices.IndexFunc(live, func(m *member) bool { return m.s == s })]
				require.Contains(t, m.sys, km.SystemID)
			}
		}
	}
}
