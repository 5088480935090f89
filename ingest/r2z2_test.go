package ingest_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// r2z2Env is a store, an ESI client, a pipeline and an R2Z2 feed over one
// fake upstream.
type r2z2Env struct {
	fake *fakeupstream.Server
	st   *store.Store
	pipe *ingest.Pipeline
	reg  *prometheus.Registry
}

func newR2Z2Env(t *testing.T, fake *fakeupstream.Server, dir string) *r2z2Env {
	t.Helper()
	st := openStore(t, dir)
	bodies, names := startESI(t, fake)
	reg := prometheus.NewRegistry()
	pipe := ingest.NewPipeline(st, bodies, names, fastPipeline(reg), testLogger(t))
	return &r2z2Env{fake: fake, st: st, pipe: pipe, reg: reg}
}

func (e *r2z2Env) feed(t *testing.T, cfg ingest.R2Z2Config) *ingest.R2Z2 {
	return ingest.NewR2Z2(cfg, upstreamClient(t), e.pipe, e.st, testLogger(t))
}

func (e *r2z2Env) waitStored(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return e.st.Count() >= uint64(n) }, patience, 5*time.Millisecond,
		"want %d killmails stored", n)
}

func TestR2Z2EndToEndWithFaults(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{R2Z2NoBodyEvery: 5})
	env := newR2Z2Env(t, fake, t.TempDir())
	all := fake.Killmails()
	require.Len(t, all, 88)

	// Phase 1: ESI is error limited (420), R2Z2 flaky and slow. Killmails
	// that bring their body are stored without names; the fifth lacks its
	// body and holds the feed until ESI answers again.
	fake.SetFaults(fakeupstream.ESI, fakeupstream.Faults{ErrorLimited: true})
	fake.SetFaults(fakeupstream.R2Z2, fakeupstream.Faults{FailRate: 0.2, GarbageRate: 0.2, Delay: 2 * time.Millisecond})
	fake.ReleaseAll()
	feed := env.feed(t, fastR2Z2(fake, env.reg))
	run(t, feed.Run)
	env.waitStored(t, 4)
	assert.Equal(t, 4, marks(t, env.st), "stored without names while ESI is limited")
	assert.LessOrEqual(t, env.st.Count(), uint64(4), "the feed must not pass the killmail it could not fetch")

	// Phase 2: ESI flaky and slow instead; everything arrives, some
	// without names.
	fake.SetFaults(fakeupstream.ESI, fakeupstream.Faults{FailRate: 0.2, GarbageRate: 0.2, Delay: time.Millisecond})
	env.waitStored(t, len(all))

	// Phase 3: faults clear; the background pass fills the names in place.
	offsets := make(map[int64]uint64)
	for _, km := range all {
		e, err := env.st.Get(context.Background(), km.ID)
		require.NoError(t, err)
		offsets[km.ID] = e.Offset
	}
	fake.ClearFaults()
	run(t, env.pipe.RunEnrichment)
	require.Eventually(t, func() bool { return marks(t, env.st) == 0 }, patience, 5*time.Millisecond)

	got := stored(t, env.st)
	require.Len(t, got, len(all))
	for _, km := range all {
		assert.Equal(t, 1, got[km.ID], "killmail %d stored exactly once", km.ID)
		e, err := env.st.Get(context.Background(), km.ID)
		require.NoError(t, err)
		assert.Equal(t, offsets[km.ID], e.Offset, "enrichment keeps the offset")
		stored := storedKillmail(t, env.st, km.ID)
		assertEnriched(t, stored)
		require.NotNil(t, stored.ZKB)
		assert.Equal(t, km.Hash, stored.Hash)
	}
	last := fake.FirstSequence() + int64(len(all)) - 1
	assert.Equal(t, strconv.FormatInt(last, 10), cursor(t, env.st))
	require.Eventually(t, func() bool { return feed.State().State == ingest.StateCaughtUp }, patience, 5*time.Millisecond)
	st := feed.State()
	assert.Equal(t, last, st.LastSequence)
	assert.Equal(t, uint64(len(all)), st.Killmails)
	assert.Positive(t, counter(t, env.reg, "wanderer_kills_ingest_garbage_total", map[string]string{"source": "r2z2"}))
	assert.Positive(t, counter(t, env.reg, "wanderer_kills_ingest_feed_requests_total", map[string]string{"status": "502"}))
	assert.Equal(t, float64(len(all)), counter(t, env.reg, "wanderer_kills_ingest_killmails_total", map[string]string{"result": "added"}))
	assert.Zero(t, counter(t, env.reg, "wanderer_kills_ingest_killmails_total", map[string]string{"result": "duplicate"}))
}

func TestR2Z2RestartResumesWithoutGapOrDuplicate(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{R2Z2NoBodyEvery: 7})
	fake.SetFaults(fakeupstream.R2Z2, fakeupstream.Faults{FailRate: 0.1})
	fake.ReleaseAll()
	dir := t.TempDir()
	total := len(fake.Killmails())
	var duplicates float64
	for _, stopAt := range []int{10, 35, 60, total} {
		env := newR2Z2Env(t, fake, dir)
		stop := run(t, env.feed(t, fastR2Z2(fake, env.reg)).Run)
		env.waitStored(t, stopAt)
		require.NoError(t, stop())
		duplicates += counter(t, env.reg, "wanderer_kills_ingest_killmails_total", map[string]string{"result": "duplicate"})
		handled, err := strconv.ParseInt(cursor(t, env.st), 10, 64)
		require.NoError(t, err)
		assert.Equal(t, int64(env.st.Count()), handled-fake.FirstSequence()+1, "the cursor matches what is stored")
		require.NoError(t, env.st.Close())
	}
	env := newR2Z2Env(t, fake, dir)
	got := stored(t, env.st)
	assert.Len(t, got, total)
	for id, n := range got {
		assert.Equal(t, 1, n, "killmail %d", id)
	}
	assert.Zero(t, duplicates, "a restart never asks for a sequence twice")
	for i, e := range readAll(t, env.st) {
		assert.Equal(t, uint64(i+1), e.Offset, "offsets stay dense")
	}
}

func readAll(t *testing.T, st *store.Store) []store.Entry {
	t.Helper()
	es, err := st.Read(context.Background(), 0, 10000)
	require.NoError(t, err)
	return es
}

func TestR2Z2WaitsOn404ThenTakesReleases(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	env := newR2Z2Env(t, fake, t.TempDir())
	feed := env.feed(t, fastR2Z2(fake, env.reg))
	run(t, feed.Run)
	require.Eventually(t, func() bool {
		return counter(t, env.reg, "wanderer_kills_ingest_feed_requests_total", map[string]string{"status": "404"}) >= 3
	}, patience, 2*time.Millisecond)
	assert.Equal(t, ingest.StateCaughtUp, feed.State().State)
	assert.Zero(t, env.st.Count())
	assert.Empty(t, cursor(t, env.st), "nothing handled, nothing persisted")

	for i := 1; i <= 3; i++ {
		fake.Release(1)
		env.waitStored(t, i)
		assert.Equal(t, strconv.FormatInt(fake.FirstSequence()+int64(i)-1, 10), cursor(t, env.st))
	}
}

func TestR2Z2StartsAtSequenceJSON(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	fake.Release(10)
	env := newR2Z2Env(t, fake, t.TempDir())
	cfg := fastR2Z2(fake, env.reg)
	cfg.Start = 0
	run(t, env.feed(t, cfg).Run)
	env.waitStored(t, 1)
	fake.Release(2)
	env.waitStored(t, 3)
	kms := fake.Killmails()
	got := stored(t, env.st)
	assert.Equal(t, map[int64]int{kms[9].ID: 1, kms[10].ID: 1, kms[11].ID: 1}, got,
		"an empty store starts at sequence.json's entry")
}

func TestR2Z2JumpsAheadAfterLongStall(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	fake.Release(5)
	env := newR2Z2Env(t, fake, t.TempDir())
	cfg := fastR2Z2(fake, env.reg)
	cfg.Start = fake.FirstSequence() - 50 // expired: 404 forever
	cfg.StallAfter = 30 * time.Millisecond
	run(t, env.feed(t, cfg).Run)
	env.waitStored(t, 1)
	kms := fake.Killmails()
	assert.Equal(t, map[int64]int{kms[4].ID: 1}, stored(t, env.st), "jumped to sequence.json")
	assert.Equal(t, strconv.FormatInt(fake.FirstSequence()+4, 10), cursor(t, env.st))
}

func TestR2Z2SkipsWhatNoRetryCanFix(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	kms := fake.Killmails()
	first := fake.FirstSequence()

	// An invalid killmail (no victim ship), a hash ESI rejects, a
	// document that always has the wrong shape, then real killmails.
	bad := withVictimShip(t, kms[0].ESI, 0)
	fake.PushR2Z2(mustJSON(t, map[string]any{"killmail_id": kms[0].ID, "hash": kms[0].Hash, "esi": bad, "sequence_id": first}))
	fake.PushR2Z2(mustJSON(t, map[string]any{"killmail_id": kms[1].ID, "hash": "0123456789abcdef0123456789abcdef01234567", "sequence_id": first + 1}))
	fake.PushR2Z2([]byte(`{"killmail_id":"twelve","hash":7}`))
	fake.Release(2)

	env := newR2Z2Env(t, fake, t.TempDir())
	cfg := fastR2Z2(fake, env.reg)
	cfg.PoisonAfter = 3
	feed := env.feed(t, cfg)
	run(t, feed.Run)
	env.waitStored(t, 2)
	require.Eventually(t, func() bool { return cursor(t, env.st) == strconv.FormatInt(first+4, 10) }, patience, 5*time.Millisecond)
	assert.Equal(t, map[int64]int{kms[0].ID: 1, kms[1].ID: 1}, stored(t, env.st),
		"the real copies arrive; the bad ones were skipped")
	assert.Equal(t, 2.0, counter(t, env.reg, "wanderer_kills_ingest_killmails_total", map[string]string{"result": "rejected"}))
	assert.Equal(t, 3.0, counter(t, env.reg, "wanderer_kills_ingest_garbage_total", map[string]string{"reason": "wrong_type"}))
}

func TestR2Z2BacksOffWhenBlocked(t *testing.T) {
	fake := fakeupstream.New(t, fakeupstream.Options{})
	fake.SetFaults(fakeupstream.R2Z2, fakeupstream.Faults{Blocked: true})
	fake.Release(3)
	env := newR2Z2Env(t, fake, t.TempDir())
	feed := env.feed(t, fastR2Z2(fake, env.reg))
	run(t, feed.Run)
	require.Eventually(t, func() bool {
		return counter(t, env.reg, "wanderer_kills_ingest_feed_requests_total", map[string]string{"status": "429"}) >= 2
	}, patience, 2*time.Millisecond)
	st := feed.State()
	assert.Equal(t, ingest.StateBackoff, st.State)
	assert.Contains(t, st.LastError, "429")
	assert.Zero(t, env.st.Count())
	fake.ClearFaults()
	env.waitStored(t, 3)
}

func withVictimShip(t *testing.T, body []byte, ship int64) json.RawMessage {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	m["victim"].(map[string]any)["ship_type_id"] = ship
	return mustJSON(t, m)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
