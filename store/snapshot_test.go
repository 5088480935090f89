package store_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/index"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// TestIndexSnapshot checks the clean-close snapshot: written by Close,
// used and removed by Open, and giving the same answers as a rebuild; a
// snapshot that does not match the store is ignored.
func TestIndexSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	snap := filepath.Join(dir, "index.snapshot")
	kms := fixtures(t)
	s := openStore(t, dir)
	_, err := s.Append(ctx, store.Batch{Killmails: kms[:60]})
	require.NoError(t, err)
	want := answers(t, s, kms)
	require.NoError(t, s.Close())
	require.FileExists(t, snap)

	s2 := openStore(t, dir)
	assert.NoFileExists(t, snap, "a loaded snapshot is removed so a crash cannot reuse it")
	assert.Equal(t, want, answers(t, s2, kms))
	// Dedup still knows every stored id after a snapshot load.
	res, err := s2.Append(ctx, store.Batch{Killmails: kms[:60]})
	require.NoError(t, err)
	for _, r := range res {
		assert.Equal(t, store.Duplicate, r.Status)
	}
	_, err = s2.Append(ctx, store.Batch{Killmails: kms[60:]})
	require.NoError(t, err)
	require.NoError(t, s2.Close())

	// A snapshot from an older head (copied before more writes) is ignored.
	stale, err := os.ReadFile(snap)
	require.NoError(t, err)
	s3 := openStore(t, dir)
	_, err = s3.Append(ctx, store.Batch{Killmails: []*store.Killmail{withID(kms[0], 999999999)}})
	require.NoError(t, err)
	want = answers(t, s3, kms)
	require.NoError(t, s3.Close())
	require.NoError(t, os.WriteFile(snap, stale, 0o600))
	s4 := openStore(t, dir)
	assert.Equal(t, want, answers(t, s4, kms), "a stale snapshot must not be used")
	assert.EqualValues(t, 89, s4.Count())
}

func withID(km *store.Killmail, id int64) *store.Killmail {
	c := *km
	c.KillmailID = id
	return &c
}

// answers runs one query per fixture system and returns the offsets.
func answers(t *testing.T, s *store.Store, kms []*store.Killmail) map[int64][]uint64 {
	t.Helper()
	out := map[int64][]uint64{}
	for _, km := range kms {
		es, _, err := s.Search(context.Background(), index.Query{Systems: []int64{km.SystemID}, Limit: 1000})
		require.NoError(t, err)
		for _, e := range es {
			out[km.SystemID] = append(out[km.SystemID], e.Offset)
		}
	}
	out[0] = []uint64{s.Count(), s.Head()}
	return out
}
