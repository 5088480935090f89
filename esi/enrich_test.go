package esi_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/data"
	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

func catalog(t testing.TB) *data.Catalog {
	t.Helper()
	cat, err := data.Load()
	require.NoError(t, err)
	return cat
}

func decodeAll(t testing.TB, fxs []fixture) []*store.Killmail {
	t.Helper()
	kms := make([]*store.Killmail, len(fxs))
	for i, fx := range fxs {
		km, err := esi.DecodeKillmail(fx.body)
		require.NoError(t, err)
		kms[i] = km
	}
	return kms
}

// checkEnriched asserts that every name the fake knows is on the
// killmails.
func checkEnriched(t *testing.T, fake *fakeESI, cat *data.Catalog, kms []*store.Killmail) {
	t.Helper()
	want := func(n store.Names, char, corp, alliance, ship int64) store.Names {
		w := store.Names{CharacterName: fake.name(char), CorporationName: fake.name(corp),
			AllianceName: fake.name(alliance), ShipName: fake.name(ship)}
		if corp > 0 {
			w.CorporationTicker = ticker(corp)
		}
		if alliance > 0 {
			w.AllianceTicker = ticker(alliance)
		}
		if s, ok := cat.Ship(ship); ok {
			w.ShipName = s.Name
		}
		return w
	}
	for _, km := range kms {
		sys, ok := cat.System(km.SystemID)
		require.True(t, ok)
		assert.Equal(t, sys.Name, km.SystemName)
		v := km.Victim
		assert.Equal(t, want(v.Names, v.CharacterID, v.CorporationID, v.AllianceID, v.ShipTypeID), v.Names, "killmail %d victim", km.KillmailID)
		for i, a := range km.Attackers {
			assert.Equal(t, want(a.Names, a.CharacterID, a.CorporationID, a.AllianceID, a.ShipTypeID), a.Names,
				"killmail %d attacker %d", km.KillmailID, i)
		}
	}
}

// expectedColdRequests is the floor for a cold cache: one names POST per
// 1000 distinct ids, one GET per corporation and alliance (tickers).
func expectedColdRequests(fake *fakeESI, cat *data.Catalog, kms []*store.Killmail) (names, corps, alliances int) {
	ids := map[int64]bool{}
	corpSet, allianceSet := map[int64]bool{}, map[int64]bool{}
	party := func(char, corp, alliance, ship int64) {
		for _, id := range []int64{char, corp, alliance} {
			if id > 0 {
				ids[id] = true
			}
		}
		if corp > 0 {
			corpSet[corp] = true
		}
		if alliance > 0 {
			allianceSet[alliance] = true
		}
		if _, ok := cat.Ship(ship); !ok && ship > 0 {
			ids[ship] = true
		}
	}
	for _, km := range kms {
		party(km.Victim.CharacterID, km.Victim.CorporationID, km.Victim.AllianceID, km.Victim.ShipTypeID)
		for _, a := range km.Attackers {
			party(a.CharacterID, a.CorporationID, a.AllianceID, a.ShipTypeID)
		}
	}
	return (len(ids) + 999) / 1000, len(corpSet), len(allianceSet)
}

func TestEnrichManyColdCache(t *testing.T) {
	fxs := loadFixtures(t)
	fake := newFakeESI(t, fxs)
	cat := catalog(t)
	c := fake.client(t, esi.Config{})
	en := esi.NewEnricher(c, cat)
	kms := decodeAll(t, fxs)

	require.NoError(t, en.EnrichMany(t.Context(), kms))
	checkEnriched(t, fake, cat, kms)
	names, corps, alliances := expectedColdRequests(fake, cat, kms)
	t.Logf("88 killmails, cold cache: %d requests (%d names POST, %d corporations, %d alliances)",
		fake.requests(), fake.requests("names"), fake.requests("corporation"), fake.requests("alliance"))
	assert.Equal(t, names, fake.requests("names"))
	assert.Equal(t, corps, fake.requests("corporation"))
	assert.Equal(t, alliances, fake.requests("alliance"))
	assert.Equal(t, names+corps+alliances, fake.requests())

	// Warm: nothing more is asked, one killmail at a time either.
	n := fake.requests()
	for _, km := range decodeAll(t, fxs) {
		require.NoError(t, en.Enrich(t.Context(), km))
	}
	assert.Equal(t, n, fake.requests())
	fake.checkNoViolations(t)
}

func TestEnrichUnknownIDsAreNotFailures(t *testing.T) {
	fxs := loadFixtures(t)
	fake := newFakeESI(t, fxs)
	kms := decodeAll(t, fxs)
	gone := kms[0].Victim.CharacterID
	fake.unknown[gone] = true
	c := fake.client(t, esi.Config{})
	en := esi.NewEnricher(c, nil) // no catalog: ships and systems by ESI too

	require.NoError(t, en.EnrichMany(t.Context(), kms))
	assert.Empty(t, kms[0].Victim.CharacterName)
	assert.Equal(t, "Inventory_type 644", kms[0].Victim.ShipName)
	assert.Equal(t, "Solar_system 30002691", kms[0].SystemName)
	assert.NotEmpty(t, kms[0].Victim.CorporationTicker)
}

func TestEnrichPartialFailure(t *testing.T) {
	fxs := loadFixtures(t)
	fake := newFakeESI(t, fxs)
	cat := catalog(t)
	fake.setDown("alliance", true)
	c := fake.client(t, esi.Config{Retries: -1, BreakerFailures: 1000})
	en := esi.NewEnricher(c, cat)
	kms := decodeAll(t, fxs)

	err := en.EnrichMany(t.Context(), kms)
	require.ErrorIs(t, err, esi.ErrIncomplete)
	assert.Contains(t, err.Error(), "alliance")
	for _, km := range kms {
		v := km.Victim
		if v.CharacterID > 0 {
			assert.NotEmpty(t, v.CharacterName)
		}
		if v.AllianceID > 0 {
			assert.NotEmpty(t, v.AllianceName, "the names POST still named the alliance")
			assert.Empty(t, v.AllianceTicker)
		}
	}

	fake.setDown("alliance", false)
	require.NoError(t, en.EnrichMany(t.Context(), kms))
	checkEnriched(t, fake, cat, kms)
}

func TestEnrichRecoversFromFaults(t *testing.T) {
	fxs := loadFixtures(t)
	fake := newFakeESI(t, fxs)
	cat := catalog(t)
	fake.inject(fault420, fault429)
	fake.injectEvery(fault502, 7)
	fake.injectEvery(faultHTML, 11)
	fake.injectEvery(faultSlow, 13)
	fake.injectEvery(faultTruncated, 17)
	c := fake.client(t, esi.Config{Timeout: 100 * time.Millisecond, BreakerCooldown: 50 * time.Millisecond})
	en := esi.NewEnricher(c, cat)
	ctx := t.Context()

	// Killmails: every one eventually arrives.
	var kms []*store.Killmail
	for _, fx := range fxs {
		if fx.hash == "" {
			continue
		}
		km := retry(t, func() (*store.Killmail, error) { return c.Killmail(ctx, fx.id, fx.hash) })
		kms = append(kms, km)
	}
	// Names: callers retry incomplete enrichments.
	rounds := 0
	for ; rounds < 50; rounds++ {
		err := en.EnrichMany(ctx, kms)
		if err == nil {
			break
		}
		require.ErrorIs(t, err, esi.ErrIncomplete)
		time.Sleep(60 * time.Millisecond) // past the breaker cooldown
	}
	t.Logf("recovered after %d incomplete rounds, %d requests", rounds, fake.requests())
	require.Less(t, rounds, 50)
	checkEnriched(t, fake, cat, kms)
}

func retry[T any](t *testing.T, fn func() (T, error)) T {
	t.Helper()
	for range 50 {
		v, err := fn()
		if err == nil {
			return v
		}
		require.NotErrorIs(t, err, esi.ErrNotFound)
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no success after 50 attempts")
	var zero T
	return zero
}

// memKV is the consumer-side KV in memory.
type memKV struct {
	mu   sync.Mutex
	m    map[string][]byte
	puts int
}

func newMemKV() *memKV { return &memKV{m: map[string][]byte{}} }

func (k *memKV) PutKV(_ context.Context, kv map[string][]byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.puts++
	for key, v := range kv {
		if v == nil {
			delete(k.m, key)
		} else {
			k.m[key] = v
		}
	}
	return nil
}

func (k *memKV) ScanKV(_ context.Context, prefix string, fn func(string, []byte) error) error {
	k.mu.Lock()
	keys := slices.Sorted(maps.Keys(k.m))
	snapshot := maps.Clone(k.m)
	k.mu.Unlock()
	for _, key := range keys {
		if strings.HasPrefix(key, prefix) {
			if err := fn(key, snapshot[key]); err != nil {
				return err
			}
		}
	}
	return nil
}

func (k *memKV) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

func TestPersistedNamesSurviveRestart(t *testing.T) {
	fxs := loadFixtures(t)
	fake := newFakeESI(t, fxs)
	cat := catalog(t)
	kv := newMemKV()
	stale, _ := json.Marshal(map[string]any{"n": "Old Name", "c": "character", "at": time.Now().Add(-25 * time.Hour).Unix()})
	kv.m[esi.NamePrefix+"123"] = stale
	kv.m[esi.NamePrefix+"garbage"] = []byte("{")

	// First life: learn everything, persist it when Run stops.
	c1 := fake.client(t, esi.Config{NameStore: kv})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c1.Run(ctx) }()
	require.NoError(t, esi.NewEnricher(c1, cat).EnrichMany(t.Context(), decodeAll(t, fxs)))
	cancel()
	require.NoError(t, <-done)
	learned := fake.requests()
	assert.NotContains(t, kv.m, esi.NamePrefix+"123", "expired names are deleted on load")
	assert.NotContains(t, kv.m, esi.NamePrefix+"garbage")
	require.Greater(t, kv.len(), 1500)

	// Second life: not one request for what the first one knew.
	c2 := fake.client(t, esi.Config{NameStore: kv})
	kms := decodeAll(t, fxs)
	require.NoError(t, esi.NewEnricher(c2, cat).EnrichMany(t.Context(), kms))
	checkEnriched(t, fake, cat, kms)
	assert.Equal(t, learned, fake.requests(), "names %d corp %d alliance %d", fake.requests("names"), fake.requests("corporation"), fake.requests("alliance"))
	n, err := c2.LoadNames(t.Context())
	require.NoError(t, err)
	assert.Zero(t, n, "loads once")
}
