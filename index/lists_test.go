package index

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sameSet checks that s holds want, sorted, through its view and its
// count, in the form its size calls for.
func sameSet(t *testing.T, l *lists, s *set, want []uint32) {
	t.Helper()
	p := l.view(s)
	require.Equal(t, uint64(len(want)), p.card())
	got := make([]uint32, 0, len(want))
	p.each(func(x uint32) { got = append(got, x) })
	require.Equal(t, want, got)
	switch n := len(want); {
	case s.cap == isBitmap:
		require.GreaterOrEqual(t, n, demoteAt)
	case n <= inlineCap:
		require.Zero(t, s.cap, "%d offsets are inline", n)
	default:
		require.LessOrEqual(t, n, promoteAt)
		require.LessOrEqual(t, uint32(n), s.cap)
		require.Equal(t, want[n-1], s.w[2], "the cached last offset")
	}
}

func TestClasses(t *testing.T) {
	assert.Equal(t, uint32(promoteAt), uint32(minRun)<<(numClasses-1), "the largest run holds promoteAt offsets")
	assert.Equal(t, numClasses-1, class(promoteAt))
	assert.Less(t, promoteAt, minChunk, "a chunk holds the largest run")
	for n, want := range map[int]uint32{5: 8, 8: 8, 9: 16, 100: 128, 1024: 1024} {
		assert.Equal(t, want, runFor(n), n)
	}
}

// TestSetGrowsAndShrinks walks one set through every form: inline, runs of
// each size, bitmap, and back, adding in order and out of order.
func TestSetGrowsAndShrinks(t *testing.T) {
	for _, order := range []string{"ascending", "descending", "random"} {
		t.Run(order, func(t *testing.T) {
			xs := make([]uint32, 1500)
			for i := range xs {
				xs[i] = uint32(3*i + 1)
			}
			switch order {
			case "descending":
				slices.Reverse(xs)
			case "random":
				r := rand.New(rand.NewPCG(1, 2))
				r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
			}
			var l lists
			s := &set{}
			var model []uint32
			// Check every form change, and a sample of the rest.
			checkAt := func(n int) bool {
				return n <= 2*minRun || n%61 == 0 || (n >= demoteAt-1 && n <= demoteAt+1) || n >= promoteAt-1 && n <= promoteAt+1
			}
			for k, x := range xs {
				require.True(t, l.add(s, x))
				require.False(t, l.add(s, x), "twice")
				i, _ := slices.BinarySearch(model, x)
				model = slices.Insert(model, i, x)
				if checkAt(len(model)) {
					sameSet(t, &l, s, model)
				}
				if k == promoteAt-1 {
					require.NotEqual(t, uint32(isBitmap), s.cap)
				}
				if k == promoteAt {
					require.Equal(t, uint32(isBitmap), s.cap, "promoted past promoteAt")
				}
			}
			r := rand.New(rand.NewPCG(3, 4))
			r.Shuffle(len(xs), func(i, j int) { xs[i], xs[j] = xs[j], xs[i] })
			for _, x := range xs {
				require.False(t, l.remove(s, x+1), "never added")
				require.True(t, l.remove(s, x))
				require.False(t, l.remove(s, x), "twice")
				i, _ := slices.BinarySearch(model, x)
				model = slices.Delete(model, i, i+1)
				if checkAt(len(model)) {
					sameSet(t, &l, s, model)
				}
				if len(model) == demoteAt-1 {
					require.NotEqual(t, uint32(isBitmap), s.cap, "demoted below demoteAt")
				}
			}
			assert.Equal(t, set{}, *s, "an empty set is a free slot")
			assert.Equal(t, l.size, l.garbage+len(l.chunks[0])-l.top, "every run was released")
			assert.Len(t, l.idleBms, len(l.bms), "every bitmap was released")
		})
	}
}

// TestRunsCrossChunks grows many sets until the arena has several chunks,
// so that runs land at chunk ends and in fresh chunks, then checks every
// set and the arena's accounting.
func TestRunsCrossChunks(t *testing.T) {
	var l lists
	sets := make([]set, 300)
	model := make([][]uint32, len(sets))
	r := rand.New(rand.NewPCG(5, 6))
	for x := uint32(1); x <= 60_000; x++ {
		k := r.IntN(len(sets))
		require.True(t, l.add(&sets[k], x))
		model[k] = append(model[k], x)
	}
	require.Greater(t, len(l.chunks), 3)
	assert.Equal(t, minChunk, len(l.chunks[0]), "the first chunk is small")
	inRuns := 0
	for k := range sets {
		sameSet(t, &l, &sets[k], model[k])
		if c := sets[k].cap; c != 0 && c != isBitmap {
			inRuns += int(c)
			p := sets[k].w[1]
			require.LessOrEqual(t, int(p+c), len(l.chunks[sets[k].w[0]]), "a run never spans chunks")
		}
	}
	tail := len(l.chunks[len(l.chunks)-1]) - l.top
	assert.Equal(t, l.size, inRuns+l.garbage+tail, "every offset of the arena is in a run, free or unused")

	// A freed run is reused by the next set that needs one of its size.
	for k := range sets {
		for _, x := range model[k] {
			require.True(t, l.remove(&sets[k], x))
		}
	}
	assert.Equal(t, l.size, l.garbage+len(l.chunks[len(l.chunks)-1])-l.top, "every run is free")
	before := l.size
	for k := range sets {
		for _, x := range model[k] {
			l.add(&sets[k], x)
		}
		sameSet(t, &l, &sets[k], model[k])
	}
	assert.Equal(t, before, l.size, "re-adding the same sets reuses the freed runs")
}

// TestCompact removes most offsets of many sets held in tables, compacts
// the arena and checks that it shrank and that every set is intact.
func TestCompact(t *testing.T) {
	var l lists
	var tabs [2]table
	model := [2]map[int64][]uint32{{}, {}}
	r := rand.New(rand.NewPCG(7, 8))
	for x := uint32(1); x <= 1_200_000; x++ {
		tab, key := r.IntN(2), r.Int64N(4000)-2000
		s, _ := tabs[tab].upsert(key)
		if !l.add(s, x) {
			t.Fatalf("add %d to set %d: already there", x, key)
		}
		model[tab][key] = append(model[tab][key], x)
	}
	// Retention: drop the oldest 90% of every set.
	for tab := range tabs {
		for key, xs := range model[tab] {
			keep := xs[len(xs)*9/10:]
			i := tabs[tab].find(key)
			for _, x := range xs[:len(xs)*9/10] {
				if !l.remove(&tabs[tab].slots[i], x) {
					t.Fatalf("remove %d from set %d: not there", x, key)
				}
			}
			model[tab][key] = keep
		}
	}
	require.True(t, l.wasteful(), "size %d, garbage %d", l.size, l.garbage)
	size := l.size
	l.compact([]*table{&tabs[0], &tabs[1]})
	assert.Less(t, l.size, size/2)
	assert.Less(t, l.garbage, len(l.chunks)*promoteAt, "no garbage but the unused ends of chunks")
	for tab := range tabs {
		require.Equal(t, len(model[tab]), tabs[tab].count)
		for key, xs := range model[tab] {
			i := tabs[tab].find(key)
			require.GreaterOrEqual(t, i, 0)
			sameSet(t, &l, &tabs[tab].slots[i], xs)
		}
	}
}

// TestTable checks the hash table against a map through inserts and
// deletes, growing and shrinking it, with keys that collide on purpose.
func TestTable(t *testing.T) {
	for _, seed := range []uint64{0, 0x9e3779b97f4a7c15} {
		tb := table{seed: seed}
		model := map[int64]uint32{}
		r := rand.New(rand.NewPCG(seed, 9))
		key := func() int64 {
			switch r.IntN(3) {
			case 0:
				return r.Int64N(5000) << 20 // only high bits differ
			case 1:
				return r.Int64N(5000) - 2500 // small, negative and zero
			}
			return int64(r.Uint64())
		}
		check := func() {
			require.Equal(t, len(model), tb.count)
			n := 0
			for i := range tb.slots {
				if tb.slots[i].n != 0 {
					n++
					require.Equal(t, model[tb.slots[i].key], tb.slots[i].n)
				}
			}
			require.Equal(t, len(model), n)
			for k, v := range model {
				i := tb.find(k)
				require.GreaterOrEqual(t, i, 0, "key %d", k)
				require.Equal(t, v, tb.slots[i].n)
			}
			require.LessOrEqual(t, 4*tb.count, 3*len(tb.slots), "load at most 3/4")
		}
		for round := range 3 {
			for range 12_000 {
				k := key()
				s, isNew := tb.upsert(k)
				if _, had := model[k]; had == isNew {
					t.Fatalf("upsert %d: new %v, but in the model: %v", k, isNew, had)
				}
				s.n++
				model[k] = s.n
			}
			check()
			grown := len(tb.slots)
			keys := make([]int64, 0, len(model))
			for k := range model {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for j, k := range keys {
				if round == 2 || j%10 != 0 {
					i := tb.find(k)
					tb.slots[i].n = 0
					tb.deleteAt(i)
					delete(model, k)
				}
				if tb.find(k+1<<40) != -1 {
					t.Fatalf("found %d, never added", k+1<<40)
				}
			}
			check()
			assert.Less(t, len(tb.slots), grown, "a mostly empty table shrinks")
		}
		assert.Equal(t, minSlots, len(tb.slots))
		assert.Empty(t, tb.sorted())
	}
}
