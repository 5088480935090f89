package index_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

// randomQuery draws a query over the small corpus: each dimension with
// some probability (ids sometimes unknown), time bounds, a value floor and
// a page size.
func randomQuery(r *rand.Rand, c corpus, docs []index.Doc) index.Query {
	// A third of the queries use only the two most popular ids of each
	// dimension, whose sets are bitmaps, to exercise the day-by-day path.
	popular := r.IntN(3) == 0
	pick := func(n int, base int64, pool int) []int64 {
		if r.IntN(10) >= n {
			return nil
		}
		out := make([]int64, 1+r.IntN(3))
		for i := range out {
			// Low ids are the popular ones; +pool/20 reaches unknown ids.
			out[i] = base + int64(r.IntN(pool/4+pool/20+1))
			if popular {
				out[i] = base + int64(r.IntN(2))
			}
		}
		return out
	}
	q := index.Query{
		Systems:      pick(4, 30_000_000, c.systems),
		Characters:   pick(3, 2_000_000_000, c.characters),
		Corporations: pick(3, 98_000_000, c.corporations),
		Alliances:    pick(2, 99_000_000, c.alliances),
		ShipTypes:    pick(2, 580, c.ships),
		Limit:        []int{0, 1, 3, 7, 20, 100}[r.IntN(6)],
	}
	// Some queries name many ids, as a live filter's catch-up does: rare
	// characters (small sets), any characters, or systems (some bitmaps).
	many := func(base int64, from, pool int) []int64 {
		ids := make([]int64, 9+r.IntN(40))
		for i := range ids {
			ids[i] = base + int64(from+r.IntN(pool-from))
		}
		return ids
	}
	switch r.IntN(12) {
	case 0:
		q.Characters = many(2_000_000_000, c.characters*5/6, c.characters)
	case 1:
		q.Characters = many(2_000_000_000, 0, c.characters)
	case 2:
		q.Systems = many(30_000_000, 0, c.systems)
	}
	// Bounds fall on doc times half of the time, to hit the edges.
	bound := func() int64 {
		if r.IntN(2) == 0 {
			return docs[r.IntN(len(docs))].Time
		}
		return start - 86400 + r.Int64N(int64(c.days+2)*86400)
	}
	if r.IntN(2) == 0 {
		q.Since = bound()
	}
	if r.IntN(2) == 0 {
		q.Until = bound()
	}
	if r.IntN(4) == 0 {
		q.MinValue = []float64{1e6, 3e7, 1e9}[r.IntN(3)]
	}
	return q
}

// TestSearchMatchesBruteForce compares every page of random queries with a
// filter-and-sort over the same docs, before and after removals, in-place
// replacements and a snapshot round trip.
func TestSearchMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	// ~1300 docs a day: days are bitmaps, except the few docs that
	// arrived late from before the first day, which are lists. Popular
	// sets are bitmaps, the others lists.
	docs := genDocs(5, 12_000, small)
	for i := range docs {
		if i%3 == 0 {
			docs[i].System = 30_000_000
		}
	}
	ix := build(t, docs)
	model := map[uint64]index.Doc{}
	for _, d := range docs {
		model[d.Offset] = d
	}
	check := func(t *testing.T, ix *index.Index) {
		for range 300 {
			q := randomQuery(r, small, docs)
			want := bruteForce(model, q)
			// Walk at most ~30 pages, to keep the test quick.
			if q.Limit > 0 && len(want)/q.Limit > 30 {
				q.Limit = len(want)/30 + 1
			}
			require.Equal(t, want, walk(t, ix, q), "%+v", q)
		}
	}
	t.Run("built", func(t *testing.T) { check(t, ix) })

	t.Run("after removals and replacements", func(t *testing.T) {
		for _, d := range docs {
			switch r.IntN(10) {
			case 0:
				ix.Remove(d.Offset)
				delete(model, d.Offset)
			case 1:
				other := docs[r.IntN(len(docs))]
				other.Offset, other.KillmailID = d.Offset, d.KillmailID
				require.NoError(t, ix.Add(other))
				model[d.Offset] = other
			}
		}
		require.Equal(t, uint64(len(model)), ix.Len())
		check(t, ix)
	})

	t.Run("after a snapshot round trip", func(t *testing.T) {
		var buf bytes.Buffer
		_, err := ix.WriteTo(&buf)
		require.NoError(t, err)
		loaded, err := index.ReadIndex(&buf)
		require.NoError(t, err)
		require.Equal(t, ix.Len(), loaded.Len())
		require.Equal(t, ix.MaxOffset(), loaded.MaxOffset())
		check(t, loaded)
	})
}
