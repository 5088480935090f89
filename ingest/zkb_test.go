package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
)

func newZKB(t *testing.T, fake *fakeupstream.Server) *ingest.ZKB {
	return ingest.NewZKB(ingest.ZKBConfig{URL: fake.ZKBURL(), RatePerSecond: 1000, Timeout: 2 * time.Second},
		upstreamClient(t), testLogger(t))
}

func TestZKBKillmailBothShapes(t *testing.T) {
	ctx := context.Background()
	t.Run("zkb only (fixtures)", func(t *testing.T) {
		zkb := newZKB(t, fakeupstream.New(t, fakeupstream.Options{}))
		tests := []struct {
			id    int64
			hash  string
			total float64
		}{
			{92805575, "79b46dac66cba1ac120ed180e2b371e24c66c21a", 349147869.07},
			{131632081, "b9388a33736099153570dbc57758d37d96f8c076", 106884277.71},
		}
		for _, tc := range tests {
			e, err := zkb.Killmail(ctx, tc.id)
			require.NoError(t, err)
			assert.Equal(t, tc.id, e.ID)
			assert.Nil(t, e.Killmail, "only the zkb block came")
			require.NotNil(t, e.ZKB)
			assert.Equal(t, tc.hash, e.ZKB.Hash)
			assert.InDelta(t, tc.total, e.ZKB.TotalValue, 0.001)
			it := e.Item()
			assert.Equal(t, tc.hash, it.Hash, "the item can be fetched from ESI")
		}
	})
	t.Run("full body", func(t *testing.T) {
		fake := fakeupstream.New(t, fakeupstream.Options{ZKBFullBodies: true})
		zkb := newZKB(t, fake)
		want, ok := fake.Killmail(92805575)
		require.True(t, ok)
		e, err := zkb.Killmail(ctx, want.ID)
		require.NoError(t, err)
		require.NotNil(t, e.Killmail)
		require.NotNil(t, e.ZKB)
		assert.Equal(t, want.ID, e.Killmail.KillmailID)
		assert.Equal(t, want.SystemID, e.Killmail.SystemID)
		assert.Equal(t, want.Attackers, e.Killmail.AttackerCount)
		assert.Same(t, e.ZKB, e.Killmail.ZKB)
		assert.Equal(t, want.Hash, e.Killmail.Hash)
	})
}

func TestZKBHistoryAndSystem(t *testing.T) {
	ctx := context.Background()
	kms := fakeupstream.New(t, fakeupstream.Options{}).Killmails()
	latest := kms[0]
	for _, km := range kms {
		if km.Time.After(latest.Time) {
			latest = km
		}
	}
	fake := fakeupstream.New(t, fakeupstream.Options{Now: func() time.Time { return latest.Time.Add(time.Minute) }})
	zkb := newZKB(t, fake)

	day, err := zkb.History(ctx, latest.Time)
	require.NoError(t, err)
	assert.Equal(t, latest.Hash, day[latest.ID])
	for id, hash := range day {
		km, ok := fake.Killmail(id)
		require.True(t, ok)
		assert.Equal(t, km.Hash, hash)
		assert.Equal(t, latest.Time.Truncate(24*time.Hour), km.Time.Truncate(24*time.Hour))
	}
	empty, err := zkb.History(ctx, time.Date(2004, 1, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	assert.Empty(t, empty)

	es, err := zkb.SystemKills(ctx, latest.SystemID, 3600)
	require.NoError(t, err)
	require.Len(t, es, 1)
	assert.Equal(t, latest.ID, es[0].ID)
	assert.Equal(t, latest.Hash, es[0].ZKB.Hash)

	for _, secs := range []int{0, 1800, 604800 + 3600} {
		_, err := zkb.SystemKills(ctx, latest.SystemID, secs)
		assert.Error(t, err, "pastSeconds %d", secs)
	}
}

func TestZKBErrors(t *testing.T) {
	ctx := context.Background()
	fake := fakeupstream.New(t, fakeupstream.Options{})
	zkb := newZKB(t, fake)

	_, err := zkb.Killmail(ctx, 1)
	assert.ErrorIs(t, err, ingest.ErrNotFound)

	fake.SetFaults(fakeupstream.ZKB, fakeupstream.Faults{GarbageRate: 1})
	reasons := map[string]bool{}
	for range 4 { // one of each kind of garbage
		_, err := zkb.Killmail(ctx, 92805575)
		var ge *ingest.GarbageError
		require.ErrorAs(t, err, &ge)
		reasons[ge.Reason] = true
	}
	assert.Equal(t, map[string]bool{
		ingest.ReasonHTML: true, ingest.ReasonTruncated: true, ingest.ReasonWrongType: true, ingest.ReasonEmpty: true,
	}, reasons)

	fake.SetFaults(fakeupstream.ZKB, fakeupstream.Faults{FailRate: 1})
	_, err = zkb.History(ctx, time.Now())
	var se *ingest.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 502, se.Code)

	fake.SetFaults(fakeupstream.ZKB, fakeupstream.Faults{Blocked: true})
	_, err = zkb.SystemKills(ctx, 30000142, 3600)
	assert.ErrorIs(t, err, ingest.ErrBlocked)
}
