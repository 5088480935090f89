package ingest_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// items decodes the fake's R2Z2 documents of the first n killmails.
func items(t *testing.T, fake *fakeupstream.Server, n int) []ingest.Item {
	t.Helper()
	var out []ingest.Item
	for i, km := range fake.Killmails()[:n] {
		b, ok := fake.R2Z2Document(km.ID, int64(i+1))
		require.True(t, ok)
		doc, err := ingest.DecodeR2Z2(b)
		require.NoError(t, err)
		out = append(out, doc.Item)
	}
	return out
}

func TestPipelineStoresWhenESIIsDownAndFillsLater(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	env := newR2Z2Env(t, fake, t.TempDir())
	ctx := context.Background()
	fake.SetFaults(fakeupstream.ESI, fakeupstream.Faults{FailRate: 1})

	its := items(t, fake, 6)
	res, err := env.pipe.Process(ctx, its, map[string][]byte{"test/cursor": []byte("6")})
	require.NoError(t, err)
	require.Len(t, res, len(its))
	for i, r := range res {
		assert.Equal(t, store.Added, r.Status)
		assert.Equal(t, uint64(i+1), r.Offset)
		km := storedKillmail(t, env.st, its[i].KillmailID)
		assert.Zero(t, km.NameCount(), "stored without names")
	}
	assert.Equal(t, len(its), marks(t, env.st))
	cur, err := env.st.GetKV(ctx, "test/cursor")
	require.NoError(t, err)
	assert.Equal(t, "6", string(cur), "the caller's KV is in the same commit")

	done, err := env.pipe.EnrichPass(ctx)
	require.NoError(t, err)
	assert.Zero(t, done, "ESI still down")
	assert.Equal(t, len(its), marks(t, env.st))

	fake.ClearFaults()
	done, err = env.pipe.EnrichPass(ctx)
	require.NoError(t, err)
	assert.Equal(t, len(its), done)
	assert.Zero(t, marks(t, env.st))
	for i, it := range its {
		e, err := env.st.Get(ctx, it.KillmailID)
		require.NoError(t, err)
		assert.Equal(t, uint64(i+1), e.Offset, "updated in place")
		km, err := e.Killmail()
		require.NoError(t, err)
		assertEnriched(t, km)
	}
	assert.Equal(t, uint64(len(its)), env.st.Head(), "no new offsets")
}

func TestPipelineGivesUpOnNamesAfterMaxAttempts(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	st := openStore(t, t.TempDir())
	bodies, names := startESI(t, fake)
	cfg := fastPipeline(prometheus.NewRegistry())
	cfg.MaxEnrichAttempts = 2
	pipe := ingest.NewPipeline(st, bodies, names, cfg, testLogger(t))
	fake.SetFaults(fakeupstream.ESI, fakeupstream.Faults{FailRate: 1})
	ctx := context.Background()
	_, err := pipe.Process(ctx, items(t, fake, 1), nil)
	require.NoError(t, err)
	for range 2 {
		require.Equal(t, 1, marks(t, st))
		_, err := pipe.EnrichPass(ctx)
		require.NoError(t, err)
	}
	assert.Zero(t, marks(t, st))
	assert.Equal(t, uint64(1), st.Count(), "the killmail stays, without names")
}

func TestPipelineRejectsWhatCannotBeStored(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	env := newR2Z2Env(t, fake, t.TempDir())
	kms := fake.Killmails()
	invalid := items(t, fake, 1)[0]
	invalid.Killmail.Victim.ShipTypeID = 0

	tests := []struct {
		name string
		item ingest.Item
		want error
	}{
		{"fails validation", invalid, store.ErrInvalid},
		{"hash ESI rejects", ingest.Item{KillmailID: kms[2].ID, Hash: "0123456789abcdef0123456789abcdef01234567"}, esi.ErrNotFound},
		{"hash that is no hash", ingest.Item{KillmailID: kms[2].ID, Hash: "../../etc"}, ingest.ErrGarbage},
		{"id ESI does not know", ingest.Item{KillmailID: 1, Hash: "0123456789abcdef0123456789abcdef01234567"}, esi.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := env.pipe.Process(context.Background(), []ingest.Item{tc.item, items(t, fake, 2)[1]}, nil)
			require.NoError(t, err)
			assert.Equal(t, store.Rejected, res[0].Status)
			assert.ErrorIs(t, res[0].Err, tc.want)
			assert.NotEqual(t, store.Rejected, res[1].Status, "the rest of the batch is stored")
		})
	}
	assert.Equal(t, map[int64]int{kms[1].ID: 1}, stored(t, env.st))
	assert.Zero(t, marks(t, env.st))
}

func TestPipelineFailsWholeBatchWhenABodyCannotBeFetched(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	env := newR2Z2Env(t, fake, t.TempDir())
	kms := fake.Killmails()
	fake.SetFaults(fakeupstream.ESI, fakeupstream.Faults{FailRate: 1})
	ctx := context.Background()
	_, err := env.pipe.Process(ctx, []ingest.Item{
		items(t, fake, 1)[0],
		{KillmailID: kms[3].ID, Hash: kms[3].Hash},
	}, map[string][]byte{"test/cursor": []byte("2")})
	require.Error(t, err)
	assert.Zero(t, env.st.Count(), "nothing written")
	_, err = env.st.GetKV(ctx, "test/cursor")
	assert.True(t, errors.Is(err, store.ErrNotFound), "not even the KV")
}

func TestLookupFetchesMissingKillmails(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	env := newR2Z2Env(t, fake, t.TempDir())
	zkb := ingest.NewZKB(ingest.ZKBConfig{URL: fake.ZKBURL(), RatePerSecond: 1000}, upstreamClient(t), nil)
	lookup := ingest.NewLookup(zkb, env.pipe, env.st)
	ctx := context.Background()

	e, err := lookup.FetchKillmail(ctx, 92805575)
	require.NoError(t, err)
	km, err := e.Killmail()
	require.NoError(t, err)
	assert.Equal(t, int64(92805575), km.KillmailID)
	assert.Equal(t, "79b46dac66cba1ac120ed180e2b371e24c66c21a", km.Hash)
	assertEnriched(t, km)
	again, err := lookup.FetchKillmail(ctx, 92805575)
	require.NoError(t, err)
	assert.Equal(t, e.Offset, again.Offset)

	_, err = lookup.FetchKillmail(ctx, 42)
	assert.ErrorIs(t, err, ingest.ErrNotFound)
	_, err = lookup.FetchKillmail(ctx, 131632081) // zKillboard knows it, ESI does not
	assert.ErrorIs(t, err, ingest.ErrNotFound)
}
