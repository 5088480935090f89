package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// TestRecentRecordsAreInvisible runs the same appends, updates, retention
// and reopen on stores whose memory of recent records is off, tiny (most
// records evicted) and large, and requires every read to answer the same.
func TestRecentRecordsAreInvisible(t *testing.T) {
	ctx := context.Background()
	sizes := map[string]int{"off": -1, "tiny": 16 << 10, "large": 64 << 20}
	dirs := map[string]string{}
	stores := map[string]*store.Store{}
	for name, size := range sizes {
		dirs[name] = t.TempDir()
		stores[name] = openStore(t, dirs[name], func(c *store.Config) { c.RecentBytes = size })
	}
	same := func(step string) {
		t.Helper()
		var want []store.Entry
		for _, name := range []string{"off", "tiny", "large"} {
			s := stores[name]
			all, err := s.Read(ctx, 0, 1<<20)
			require.NoError(t, err)
			offs := make([]uint64, 0, s.Head())
			for off := s.Head(); off >= 1; off-- {
				offs = append(offs, off)
			}
			picked, err := s.Entries(ctx, offs)
			require.NoError(t, err)
			require.Len(t, picked, len(all), "%s %s: Entries and Read disagree", step, name)
			for i, e := range picked {
				require.Equal(t, all[len(all)-1-i], e, "%s %s", step, name)
				at, err := s.At(ctx, e.Offset)
				require.NoError(t, err)
				require.Equal(t, e, at, "%s %s", step, name)
			}
			tail, err := s.Read(ctx, s.Head()/2, 7)
			require.NoError(t, err)
			var wantTail []store.Entry
			for _, e := range all {
				if e.Offset > s.Head()/2 && len(wantTail) < 7 {
					wantTail = append(wantTail, e)
				}
			}
			require.Equal(t, wantTail, tail, "%s %s: tail read", step, name)
			if want == nil {
				want = all
				continue
			}
			require.Equal(t, want, all, "%s: %s differs from off", step, name)
		}
	}
	kms := fixtures(t)
	for name, s := range stores {
		for i := 0; i < len(kms); i += 10 {
			_, err := s.Append(ctx, store.Batch{Killmails: kms[i:min(i+10, len(kms))]})
			require.NoError(t, err, name)
		}
	}
	same("appended")
	for name, s := range stores {
		for _, off := range []uint64{1, 40, s.Head()} {
			e, err := s.At(ctx, off)
			require.NoError(t, err)
			km, err := e.Killmail()
			require.NoError(t, err)
			km.Victim.ShipName = "Renamed"
			require.NoError(t, s.Update(ctx, off, km, nil), name)
		}
	}
	same("updated")
	for name, s := range stores {
		_, err := s.ApplyRetention(ctx, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
		require.NoError(t, err, name)
	}
	same("retained")
	for name, s := range stores {
		require.NoError(t, s.Close())
		stores[name] = openStore(t, dirs[name], func(c *store.Config) { c.RecentBytes = sizes[name] })
		<-stores[name].Warmed()
	}
	same("reopened")
	for _, s := range stores {
		_, err := s.Append(ctx, store.Batch{Killmails: []*store.Killmail{withID(kms[0], 1)}})
		require.NoError(t, err)
	}
	same("appended after reopen")
}
