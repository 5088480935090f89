package index_test

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

// fixed is a tiny hand-made population: day 0 is start, one hour apart.
func fixed() []index.Doc {
	h := int64(3600)
	return []index.Doc{
		{Offset: 1, KillmailID: 101, Time: start, System: 1, ShipType: 10, Characters: []int64{500, 501}, Corporations: []int64{70}, Alliances: []int64{90}, Value: 1e6},
		{Offset: 2, KillmailID: 102, Time: start + h, System: 2, ShipType: 11, Characters: []int64{502, 501, 502}, Corporations: []int64{70, 71}, Value: 5e6}, // a repeated id counts once
		{Offset: 3, KillmailID: 103, Time: start + 26*h, System: 1, ShipType: 11, Characters: []int64{503}, Corporations: []int64{72}, Alliances: []int64{91}, Value: 2e7},
		// Backfilled: older than everything, appended last.
		{Offset: 4, KillmailID: 99, Time: start - 50*h, System: 3, ShipType: 10, Characters: []int64{500}, Corporations: []int64{70}, Alliances: []int64{90}},
		// Same second as offset 3, higher id: sorts before it.
		{Offset: 5, KillmailID: 104, Time: start + 26*h, System: 2, ShipType: 12, Characters: []int64{504}, Corporations: []int64{71}, Alliances: []int64{90, 91}, Value: 2e7},
	}
}

func build(t testing.TB, docs []index.Doc) *index.Index {
	t.Helper()
	ix := index.New()
	for _, d := range docs {
		require.NoError(t, ix.Add(d))
	}
	return ix
}

func ids(p index.Page) []int64 {
	out := make([]int64, len(p.Hits))
	for i, h := range p.Hits {
		out[i] = h.KillmailID
	}
	return out
}

func TestSearch(t *testing.T) {
	ix := build(t, fixed())
	h := int64(3600)
	tests := []struct {
		name string
		q    index.Query
		want []int64
	}{
		{"everything newest first, ties by id", index.Query{}, []int64{104, 103, 102, 101, 99}},
		{"system", index.Query{Systems: []int64{1}}, []int64{103, 101}},
		{"systems OR", index.Query{Systems: []int64{1, 3}}, []int64{103, 101, 99}},
		{"unknown system", index.Query{Systems: []int64{42}}, []int64{}},
		{"unknown and known system", index.Query{Systems: []int64{42, 2}}, []int64{104, 102}},
		{"character victim or attacker", index.Query{Characters: []int64{501}}, []int64{102, 101}},
		{"characters OR", index.Query{Characters: []int64{500, 504}}, []int64{104, 101, 99}},
		{"corporation", index.Query{Corporations: []int64{71}}, []int64{104, 102}},
		{"alliance", index.Query{Alliances: []int64{90}}, []int64{104, 101, 99}},
		{"ship type", index.Query{ShipTypes: []int64{11}}, []int64{103, 102}},
		{"system AND alliance", index.Query{Systems: []int64{1}, Alliances: []int64{90}}, []int64{101}},
		{"corp AND character AND ship", index.Query{Corporations: []int64{70}, Characters: []int64{500}, ShipTypes: []int64{10}}, []int64{101, 99}},
		{"AND with no overlap", index.Query{Systems: []int64{3}, Corporations: []int64{72}}, []int64{}},
		{"since inclusive", index.Query{Since: start + h}, []int64{104, 103, 102}},
		{"until exclusive", index.Query{Until: start + h}, []int64{101, 99}},
		{"window", index.Query{Since: start, Until: start + 26*h}, []int64{102, 101}},
		{"negative-free window before everything", index.Query{Until: start - 100*h}, []int64{}},
		{"empty window", index.Query{Since: start + h, Until: start + h}, []int64{}},
		{"min value", index.Query{MinValue: 5e6}, []int64{104, 103, 102}},
		{"min value and system", index.Query{MinValue: 5e6, Systems: []int64{1}}, []int64{103}},
		{"min value above all", index.Query{MinValue: 1e12}, []int64{}},
		{"limit", index.Query{Limit: 2}, []int64{104, 103}},
		{"after a tie", index.Query{After: &index.Cursor{Time: start + 26*h, KillmailID: 104}}, []int64{103, 102, 101, 99}},
		{"after the last", index.Query{After: &index.Cursor{Time: start - 50*h, KillmailID: 99}}, []int64{}},
		{"after with since", index.Query{Since: start, After: &index.Cursor{Time: start + h, KillmailID: 102}}, []int64{101}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := ix.Search(tt.q)
			assert.Equal(t, tt.want, ids(p))
			if tt.q.Limit == 0 {
				assert.Nil(t, p.Next)
			}
		})
	}
}

func TestSearchHitsCarryOffsets(t *testing.T) {
	ix := build(t, fixed())
	p := ix.Search(index.Query{Systems: []int64{1}})
	assert.Equal(t, []index.Hit{
		{Offset: 3, Time: start + 26*3600, KillmailID: 103},
		{Offset: 1, Time: start, KillmailID: 101},
	}, p.Hits)
}

func TestSearchPages(t *testing.T) {
	ix := build(t, fixed())
	p := ix.Search(index.Query{Limit: 2})
	require.Equal(t, []int64{104, 103}, ids(p))
	require.Equal(t, &index.Cursor{Time: start + 26*3600, KillmailID: 103}, p.Next)

	// Docs arriving between pages: a newer one is not seen, an older
	// backfilled one is, and nothing repeats.
	require.NoError(t, ix.Add(index.Doc{Offset: 6, KillmailID: 200, Time: start + 100*3600, System: 1}))
	require.NoError(t, ix.Add(index.Doc{Offset: 7, KillmailID: 98, Time: start - 60*3600, System: 1}))
	p = ix.Search(index.Query{Limit: 2, After: p.Next})
	require.Equal(t, []int64{102, 101}, ids(p))
	p = ix.Search(index.Query{Limit: 2, After: p.Next})
	require.Equal(t, []int64{99, 98}, ids(p))
	assert.Nil(t, p.Next, "an exactly full last page has no next")
}

func TestSearchLimits(t *testing.T) {
	docs := make([]index.Doc, 10_050)
	for i := range docs {
		docs[i] = index.Doc{Offset: uint64(i + 1), KillmailID: int64(i + 1), Time: start + int64(i), System: 7}
	}
	ix := build(t, docs)
	assert.Len(t, ix.Search(index.Query{}).Hits, index.DefaultLimit)
	assert.Len(t, ix.Search(index.Query{Limit: -3}).Hits, index.DefaultLimit)
	p := ix.Search(index.Query{Limit: 1 << 30, Systems: []int64{7}})
	assert.Len(t, p.Hits, index.MaxLimit)
	assert.NotNil(t, p.Next)
	assert.Equal(t, uint64(10_050), ix.CountSystem(7))
}

func TestAddOffsetRange(t *testing.T) {
	ix := index.New()
	for _, off := range []uint64{0, 1 << 32, math.MaxUint64} {
		assert.ErrorIs(t, ix.Add(index.Doc{Offset: off}), index.ErrOffsetRange, off)
	}
	require.NoError(t, ix.Add(index.Doc{Offset: 1<<32 - 1, KillmailID: 1}))
	assert.Equal(t, uint64(1), ix.Len())
	assert.Equal(t, uint64(1<<32-1), ix.MaxOffset())
}

func TestAddIsIdempotent(t *testing.T) {
	docs := fixed()
	ix := build(t, docs)
	for _, d := range docs {
		require.NoError(t, ix.Add(d))
	}
	assert.Equal(t, uint64(5), ix.Len())
	assert.Equal(t, uint64(2), ix.CountSystem(1))
	assert.Equal(t, []int64{104, 103, 102, 101, 99}, ids(ix.Search(index.Query{})))
}

func TestAddReplaces(t *testing.T) {
	ix := build(t, fixed())
	// The store updated killmail 101 in place: other system, time,
	// characters and value.
	require.NoError(t, ix.Add(index.Doc{
		Offset: 1, KillmailID: 101, Time: start + 200*3600, System: 2, ShipType: 12,
		Characters: []int64{600}, Corporations: []int64{71}, Value: 3e9,
	}))
	assert.Equal(t, uint64(5), ix.Len())
	assert.Equal(t, uint64(1), ix.CountSystem(1))
	assert.Equal(t, uint64(3), ix.CountSystem(2))
	assert.Equal(t, []int64{103}, ids(ix.Search(index.Query{Systems: []int64{1}})))
	assert.Equal(t, []int64{102}, ids(ix.Search(index.Query{Characters: []int64{501}})))
	assert.Equal(t, []int64{101}, ids(ix.Search(index.Query{Characters: []int64{600}})))
	assert.Equal(t, []int64{104, 99}, ids(ix.Search(index.Query{Alliances: []int64{90}})))
	assert.Equal(t, []int64{101}, ids(ix.Search(index.Query{MinValue: 1e9})))
	assert.Equal(t, []int64{101, 104}, ids(ix.Search(index.Query{Limit: 2})))
	assert.Empty(t, ids(ix.Search(index.Query{Until: start + 3600, Since: start})))
}

func TestRemove(t *testing.T) {
	ix := build(t, fixed())
	ix.Remove(1)
	ix.Remove(1)    // twice
	ix.Remove(42)   // never added
	ix.Remove(0)    // out of range
	ix.Remove(1e12) // out of range
	assert.Equal(t, uint64(4), ix.Len())
	assert.Equal(t, uint64(5), ix.MaxOffset(), "remove does not lower the high-water mark")
	assert.Equal(t, uint64(1), ix.CountSystem(1))
	assert.Equal(t, []int64{104, 103, 102, 99}, ids(ix.Search(index.Query{})))
	assert.Equal(t, []int64{102}, ids(ix.Search(index.Query{Characters: []int64{501}})))
	assert.Empty(t, ids(ix.Search(index.Query{Since: start, Until: start + 1})))

	for off := range uint64(6) {
		ix.Remove(off)
	}
	assert.Zero(t, ix.Len())
	assert.Zero(t, ix.CountSystem(2))
	assert.Empty(t, ix.Search(index.Query{}).Hits)

	// An emptied index takes docs again, below and above the old range.
	require.NoError(t, ix.Add(fixed()[2]))
	require.NoError(t, ix.Add(fixed()[0]))
	assert.Equal(t, []int64{103, 101}, ids(ix.Search(index.Query{Systems: []int64{1}})))
}

// TestRemoveCompacts removes most of a larger index from the front, as
// retention does, so that the per-offset slices and the arena compact, then
// checks every answer against brute force.
func TestRemoveCompacts(t *testing.T) {
	docs := make([]index.Doc, 150_000)
	for i := range docs {
		n := int64(i)
		docs[i] = index.Doc{
			Offset: uint64(i + 1), KillmailID: 1000 + n, Time: start + n*20 - n%7*3600, System: 30_000_000 + n%50,
			Characters:   []int64{2_000_000_000 + n%1000, 2_000_100_000 + n%333, 2_000_200_000 + n},
			Corporations: []int64{98_000_000 + n%100}, Value: float64(n % 1000),
		}
	}
	ix := build(t, docs)
	model := map[uint64]index.Doc{}
	for _, d := range docs {
		model[d.Offset] = d
	}
	for off := uint64(1); off <= 110_000; off++ {
		ix.Remove(off)
		delete(model, off)
	}
	base, slots, arena, garbage := ix.Layout()
	assert.Greater(t, base, uint64(1), "slots below the lowest live offset were freed")
	assert.Less(t, slots, 150_000)
	assert.Less(t, 2*garbage, arena, "the arena was compacted")
	// Re-add one removed offset below the new base, and replace one.
	require.NoError(t, ix.Add(docs[5]))
	model[docs[5].Offset] = docs[5]
	moved := docs[120_000]
	moved.System, moved.Time = 30_000_001, start+1
	require.NoError(t, ix.Add(moved))
	model[moved.Offset] = moved

	assert.Equal(t, uint64(len(model)), ix.Len())
	for _, q := range []index.Query{
		{Limit: 500},
		{Systems: []int64{30_000_001, 30_000_002}, Limit: 1000},
		{Until: start + 86400, Limit: 10_000},
		{Characters: []int64{2_000_000_000, 2_000_100_001}, Corporations: []int64{98_000_000, 98_000_001}, MinValue: 10},
	} {
		want := bruteForce(model, q)
		assert.Equal(t, want, walk(t, ix, q), "%+v", q)
	}
}

func TestConcurrentUse(t *testing.T) {
	docs := genDocs(4, 4000, small)
	ix := build(t, docs[:2000])
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, d := range docs[2000:] {
			assert.NoError(t, ix.Add(d))
		}
		for _, d := range docs[:500] {
			ix.Remove(d.Offset)
		}
	}()
	for range 200 {
		p := ix.Search(index.Query{Systems: []int64{30_000_000}, Since: start})
		assert.LessOrEqual(t, len(p.Hits), index.DefaultLimit)
		ix.CountSystem(30_000_000)
	}
	<-done
	assert.Equal(t, uint64(3500), ix.Len())
}
