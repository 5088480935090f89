package server

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCharTableAgreesWithMap runs random sets and deletes, with ids
// dense enough to collide and a few outside 32 bits, through the table
// and a Go map, growing the table and shrinking it back, and checks that
// both agree along the way; emptied, it is back to its first size.
func TestCharTableAgreesWithMap(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var tab charTable
	want := map[int64]int32{}
	id := func() int64 {
		switch r.IntN(50) {
		case 0:
			return math.MaxUint32 + 1 + int64(r.IntN(3))
		case 1:
			return -int64(r.IntN(3))
		}
		return 2112000000 + int64(r.IntN(3000))
	}
	check := func(step int) {
		require.Equal(t, len(want), tab.len(), "step %d", step)
		for k, v := range want {
			got, ok := tab.get(k)
			require.True(t, ok, "step %d: id %d lost", step, k)
			require.Equal(t, v, got, "step %d: id %d", step, k)
		}
		seen := 0
		tab.each(func(k int64, v int32) {
			seen++
			require.Equal(t, want[k], v)
		})
		require.Equal(t, len(want), seen)
	}
	for step := range 20000 {
		// Grow for the first half, then delete more than is set.
		grow := step < 10000
		if r.IntN(3) > 0 == grow {
			k, v := id(), int32(r.IntN(1000)+1)
			tab.set(k, v)
			want[k] = v
		} else {
			k := id()
			tab.del(k)
			delete(want, k)
			_, ok := tab.get(k)
			require.False(t, ok, "step %d: id %d still there", step, k)
		}
		if step%500 == 0 {
			check(step)
		}
	}
	check(20000)
	for k := range want {
		tab.del(k)
		delete(want, k)
	}
	check(20001)
	require.Equal(t, minCharSlots, len(tab.slots), "the table shrinks as ids go")
}
