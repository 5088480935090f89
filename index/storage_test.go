package index_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

// goldenIndex is the index whose snapshot testdata/snapshot-v1.wkix holds,
// as the map-based index of before wrote it: sets of every form (inline,
// runs, bitmaps), after removals and a replacement.
func goldenIndex(t testing.TB) *index.Index {
	t.Helper()
	docs := genDocs(21, 1400, small)
	for i := range docs {
		if i%4 != 0 {
			docs[i].System = 30_000_000
		}
		docs[i].Characters = docs[i].Characters[:min(3, len(docs[i].Characters))]
		docs[i].Corporations = docs[i].Corporations[:min(2, len(docs[i].Corporations))]
		docs[i].Alliances = docs[i].Alliances[:min(1, len(docs[i].Alliances))]
	}
	ix := build(t, docs)
	for off := uint64(1); off <= 1400; off += 3 {
		ix.Remove(off)
	}
	moved := docs[100]
	moved.System, moved.Characters = 30_000_001, []int64{2_000_000_007}
	require.NoError(t, ix.Add(moved))
	return ix
}

// TestSnapshotFormatUnchanged checks that the pointer-free storage writes
// the very bytes the map-based index wrote for the same history, and reads
// them back: snapshots of existing stores stay readable.
func TestSnapshotFormatUnchanged(t *testing.T) {
	golden, err := os.ReadFile("testdata/snapshot-v1.wkix")
	require.NoError(t, err)
	ix := goldenIndex(t)
	_, _, bitmaps := ix.ListLayout()
	require.Positive(t, bitmaps, "the golden index has a bitmap")
	assert.Equal(t, golden, snapshot(t, ix))

	loaded, err := index.ReadIndex(bytes.NewReader(golden))
	require.NoError(t, err)
	assert.Equal(t, golden, snapshot(t, loaded))
	for _, q := range []index.Query{
		{Limit: 2000},
		{Systems: []int64{30_000_000}, Limit: 2000},
		{Systems: []int64{30_000_001}},
		{Characters: []int64{2_000_000_000, 2_000_000_007}, Corporations: []int64{98_000_000}},
	} {
		assert.Equal(t, ix.Search(q), loaded.Search(q), "%+v", q)
	}
}

// TestRemoveCompactsLists removes most of an index whose sets are runs of
// the list arena, as retention does: the runs shrink, the arena compacts,
// and every answer, before and after a snapshot round trip, agrees with
// brute force.
func TestRemoveCompactsLists(t *testing.T) {
	const n, pool = 60_000, 6000 // ~100 docs per character: runs of 128
	docs := make([]index.Doc, n)
	for i := range docs {
		k := int64(i)
		d := index.Doc{
			Offset: uint64(i + 1), KillmailID: 5000 + k, Time: start + 30*k, System: 30_000_000 + k%7,
			ShipType: 600 + k%3000, Corporations: []int64{98_000_000 + k%5000}, Value: float64(k % 100),
		}
		for j := range int64(10) {
			d.Characters = append(d.Characters, 2_000_000_000+(k*7+j*(pool/10))%pool)
		}
		docs[i] = d
	}
	ix := build(t, docs)
	size, _, _ := ix.ListLayout()
	require.Greater(t, size, 1<<20, "the runs fill more than a chunk")

	model := map[uint64]index.Doc{}
	for _, d := range docs[n*9/10:] {
		model[d.Offset] = d
	}
	for off := uint64(1); off <= n*9/10; off++ {
		ix.Remove(off)
	}
	after, garbage, _ := ix.ListLayout()
	assert.Less(t, after, size/2, "the arena was compacted")
	assert.Less(t, 2*garbage, after)

	queries := []index.Query{
		{Limit: 1000},
		{Characters: []int64{2_000_000_000, 2_000_000_601, 2_000_005_999}, Limit: 7},
		{Systems: []int64{30_000_003}, Characters: []int64{2_000_000_042}},
		{ShipTypes: []int64{600, 601, 2999}, MinValue: 50},
		{Corporations: []int64{98_000_001}, Since: start + 30*(n-2000)},
	}
	for _, q := range queries {
		assert.Equal(t, bruteForce(model, q), walk(t, ix, q), "%+v", q)
	}

	snap := snapshot(t, ix)
	loaded, err := index.ReadIndex(bytes.NewReader(snap))
	require.NoError(t, err)
	assert.Equal(t, snap, snapshot(t, loaded))
	for _, q := range queries {
		assert.Equal(t, bruteForce(model, q), walk(t, loaded, q), "%+v", q)
	}
	// The loaded index goes on: the removed offsets come back.
	for _, d := range docs[:100] {
		require.NoError(t, loaded.Add(d))
		model[d.Offset] = d
	}
	for _, q := range queries {
		assert.Equal(t, bruteForce(model, q), walk(t, loaded, q), "%+v", q)
	}
}
