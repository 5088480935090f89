package ingest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
)

func BenchmarkDecodeR2Z2(b *testing.B) {
	body := fixture(b, "r2z2/900002.json")
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := ingest.DecodeR2Z2(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipelineProcess measures the live path for one killmail per
// commit (what R2Z2 does): enrichment from a warm ESI cache, then a
// synced append. Killmails cycle through the 88 fixtures under fresh ids.
func BenchmarkPipelineProcess(b *testing.B) {
	fake := fakeupstream.New(b, fakeupstream.Options{})
	st := openStore(b, b.TempDir())
	bodies, names := startESI(b, fake)
	pipe := ingest.NewPipeline(st, bodies, names, ingest.PipelineConfig{}, nil)
	var its []ingest.Item
	for i, km := range fake.Killmails() {
		doc, ok := fake.R2Z2Document(km.ID, int64(i+1))
		require.True(b, ok)
		d, err := ingest.DecodeR2Z2(doc)
		require.NoError(b, err)
		its = append(its, d.Item)
	}
	ctx := context.Background()
	_, err := pipe.Process(ctx, its, nil) // warms the names caches
	require.NoError(b, err)
	id := int64(1 << 40)
	b.ResetTimer()
	for b.Loop() {
		it := its[int(id)%len(its)]
		km := *it.Killmail
		km.Attackers = append(km.Attackers[:0:0], km.Attackers...)
		km.KillmailID = id
		id++
		res, err := pipe.Process(ctx, []ingest.Item{{KillmailID: km.KillmailID, Hash: it.Hash, Killmail: &km, ZKB: it.ZKB}},
			map[string][]byte{ingest.KeyR2Z2Sequence: []byte("1")})
		if err != nil || res[0].Err != nil {
			b.Fatal(err, res)
		}
	}
}

// BenchmarkDecodeRecord decodes the 88 fixture killmails as archive
// records (ESI body with killmail_hash), the CPU cost of a backfill that
// is not bzip2.
func BenchmarkDecodeRecord(b *testing.B) {
	ms, _ := fixtureMembers(b)
	var size int64
	for _, m := range ms {
		size += int64(len(m.body))
	}
	b.SetBytes(size / int64(len(ms)))
	i := 0
	for b.Loop() {
		if _, err := ingest.DecodeRecord(ms[i%len(ms)].body); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
