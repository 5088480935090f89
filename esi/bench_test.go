package esi_test

import (
	"testing"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// BenchmarkEnrichWarm100Attackers enriches one killmail of 100 real
// attackers whose names are all cached. Target: < 50 µs/op.
func BenchmarkEnrichWarm100Attackers(b *testing.B) {
	fxs := loadFixtures(b)
	fake := newFakeESI(b, fxs)
	var km *store.Killmail
	for _, k := range decodeAll(b, fxs) {
		if len(k.Attackers) >= 100 {
			km = k
			break
		}
	}
	km.Attackers = km.Attackers[:100]
	km.Normalize()
	en := esi.NewEnricher(fake.client(b, esi.Config{}), catalog(b))
	ctx := b.Context()
	if err := en.Enrich(ctx, km); err != nil {
		b.Fatal(err)
	}
	before := fake.requests()
	b.ReportAllocs()
	for b.Loop() {
		if err := en.Enrich(ctx, km); err != nil {
			b.Fatal(err)
		}
	}
	if fake.requests() != before {
		b.Fatalf("warm enrichment called ESI %d times", fake.requests()-before)
	}
}

// BenchmarkEnrichManyColdCache enriches the 88 fixtures with a new client
// each time against the local fake ESI and reports the requests made.
func BenchmarkEnrichManyColdCache(b *testing.B) {
	fxs := loadFixtures(b)
	fake := newFakeESI(b, fxs)
	cat := catalog(b)
	ctx := b.Context()
	for b.Loop() {
		b.StopTimer()
		kms := decodeAll(b, fxs)
		en := esi.NewEnricher(fake.client(b, esi.Config{}), cat)
		b.StartTimer()
		if err := en.EnrichMany(ctx, kms); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(fake.requests())/float64(b.N), "requests/op")
}
