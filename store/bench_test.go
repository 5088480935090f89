package store_test

import (
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/bench"
	"github.com/wanderer-industries/wanderer-kills-go/index"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// generator makes killmails over the last 60 days; with count > 0 in
// arrival order over count killmails (see bench.GenConfig.Count).
func generator(b testing.TB, seed uint64, count ...int) *bench.Generator {
	b.Helper()
	tpl, err := bench.Templates()
	require.NoError(b, err)
	cfg := bench.GenConfig{Seed: seed}
	if len(count) > 0 {
		cfg.Count = count[0]
	}
	return bench.NewGenerator(tpl, cfg)
}

// BenchmarkAppendDurable measures synced appends with group commit, in
// the two shapes the store is written in. The figure is killmails/s, with
// the process's CPU time per killmail beside it.
//
//   - live: 8 concurrent writers, each appending batches of 10 killmails
//     and waiting for each, as the live feeds do: the writer merges what
//     they queue into shared commits.
//   - bulk: one writer submitting batches of 500 and waiting for each
//     only once the next is queued, as the backfill and a feed catching
//     up do.
func BenchmarkAppendDurable(b *testing.B) {
	b.Run("live", func(b *testing.B) { appendDurable(b, 10, appendLive) })
	b.Run("bulk", func(b *testing.B) { appendDurable(b, 500, appendBulk) })
}

// appendDurable times write over b.N*10 fresh killmails cut into batches
// of size.
func appendDurable(b *testing.B, size int, write func(*testing.B, *store.Store, [][]*store.Killmail)) {
	s := openStore(b, b.TempDir())
	g := generator(b, 1)
	kms := make([]*store.Killmail, b.N*10)
	for i := range kms {
		kms[i] = g.Next()
	}
	var batches [][]*store.Killmail
	for i := 0; i < len(kms); i += size {
		batches = append(batches, kms[i:min(i+size, len(kms))])
	}
	b.ResetTimer()
	start, cpu0 := time.Now(), bench.CPUTime()
	write(b, s, batches)
	elapsed, cpu := time.Since(start), bench.CPUTime()-cpu0
	require.Equal(b, uint64(len(kms)), s.Head(), "every killmail stored, at dense offsets")
	b.ReportMetric(float64(len(kms))/elapsed.Seconds(), "killmails/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(kms)), "cpu-µs/killmail")
}

func appendLive(b *testing.B, s *store.Store, batches [][]*store.Killmail) {
	ctx := context.Background()
	var wg sync.WaitGroup
	work := make(chan []*store.Killmail, 64)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := range work {
				if _, err := s.Append(ctx, store.Batch{Killmails: batch}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for _, batch := range batches {
		work <- batch
	}
	close(work)
	wg.Wait()
}

func appendBulk(b *testing.B, s *store.Store, batches [][]*store.Killmail) {
	ctx := context.Background()
	var prev *store.Pending
	for _, batch := range batches {
		p, err := s.Submit(ctx, store.Batch{Killmails: batch, Quiet: true})
		if err != nil {
			b.Fatal(err)
		}
		if prev != nil {
			if _, err := prev.Wait(); err != nil {
				b.Fatal(err)
			}
		}
		prev = p
	}
	if _, err := prev.Wait(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkGetByID looks killmails up by id in the store of 1M, opened
// afresh (no background compaction of a just-written store).
func BenchmarkGetByID(b *testing.B) {
	ctx := context.Background()
	s := openMillion(b)
	ids := millionIDs
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Get(ctx, ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
	}
}

var (
	millionOnce sync.Once
	millionDir  string
	millionIDs  []int64
)

// millionStore builds (once per test binary) a store of 1M generated
// killmails in a temp dir and returns its directory, closed. With
// WK_BENCH_1M_DIR set, the store is kept there and reused by later runs
// (building it takes a minute or two).
func millionStore(b *testing.B) string {
	b.Helper()
	millionOnce.Do(func() {
		keep := os.Getenv("WK_BENCH_1M_DIR")
		if keep != "" {
			millionDir = filepath.Join(keep, "store")
			if _, err := os.Stat(filepath.Join(keep, "ids")); err == nil {
				millionIDs = readIDs(b, filepath.Join(keep, "ids"))
				return
			}
		} else {
			dir, err := os.MkdirTemp("", "wk-bench-1m-")
			require.NoError(b, err)
			millionDir = filepath.Join(dir, "store")
		}
		s, err := store.Open(context.Background(), store.Config{Dir: millionDir})
		require.NoError(b, err)
		millionIDs = fill(b, s, 1_000_000)
		require.NoError(b, s.Close())
		if keep != "" {
			writeIDs(b, filepath.Join(keep, "ids"), millionIDs)
		}
	})
	return millionDir
}

func writeIDs(b *testing.B, path string, ids []int64) {
	buf := make([]byte, 0, 8*len(ids))
	for _, id := range ids {
		buf = binary.BigEndian.AppendUint64(buf, uint64(id))
	}
	require.NoError(b, os.WriteFile(path, buf, 0o644))
}

func readIDs(b *testing.B, path string) []int64 {
	buf, err := os.ReadFile(path)
	require.NoError(b, err)
	ids := make([]int64, 0, len(buf)/8)
	for i := 0; i+8 <= len(buf); i += 8 {
		ids = append(ids, int64(binary.BigEndian.Uint64(buf[i:])))
	}
	return ids
}

func fill(b testing.TB, s *store.Store, n int) []int64 {
	g := generator(b, 42, n)
	ids := make([]int64, 0, n)
	batch := make([]*store.Killmail, 0, 1000)
	for len(ids) < n {
		km := g.Next()
		ids = append(ids, km.KillmailID)
		batch = append(batch, km)
		if len(batch) == cap(batch) || len(ids) == n {
			_, err := s.Append(context.Background(), store.Batch{Killmails: batch})
			require.NoError(b, err)
			batch = batch[:0]
		}
	}
	return ids
}

// BenchmarkOpen1M times opening a store of 1M killmails until it is ready
// (index rebuilt). Target: under 3 s.
func BenchmarkOpen1M(b *testing.B) {
	dir := millionStore(b)
	b.ResetTimer()
	for range b.N {
		s, err := store.Open(context.Background(), store.Config{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		require.EqualValues(b, 1_000_000, s.Count())
		require.NoError(b, s.Close())
		b.StartTimer()
	}
}

// BenchmarkSystemWindow1M queries one popular system over a 7-day window
// for 50 results, records included, in a store of 1M. Target p99 < 1 ms.
func BenchmarkSystemWindow1M(b *testing.B) {
	s := openMillion(b)
	now := time.Now()
	queries := make([]index.Query, 64)
	for i := range queries {
		queries[i] = index.Query{
			Systems: []int64{bench.SystemID(uint64(i % 16))},
			Since:   now.Add(-time.Duration(7+i%30) * 24 * time.Hour).Unix(),
			Until:   now.Add(-time.Duration(i%30) * 24 * time.Hour).Unix(),
			Limit:   50,
		}
	}
	runQueries(b, s, queries)
}

// BenchmarkIntersection3x1M intersects three dimensions in a store of
// 1M: a list of busy systems, a popular alliance and a list of victim
// ship types, over 30 days, for 50 results.
func BenchmarkIntersection3x1M(b *testing.B) {
	s := openMillion(b)
	tpl, err := bench.Templates()
	require.NoError(b, err)
	var ships []int64
	for _, km := range tpl[:40] {
		ships = append(ships, km.Victim.ShipTypeID)
	}
	now := time.Now()
	queries := make([]index.Query, 64)
	for i := range queries {
		var systems []int64
		for r := range 20 {
			systems = append(systems, bench.SystemID(uint64(r+i%10)))
		}
		queries[i] = index.Query{
			Systems:   systems,
			Alliances: []int64{bench.AllianceID(uint64(i % 8))},
			ShipTypes: ships,
			Since:     now.Add(-30 * 24 * time.Hour).Unix(),
			Limit:     50,
		}
	}
	runQueries(b, s, queries)
}

func openMillion(b *testing.B) *store.Store {
	dir := millionStore(b)
	cfg := store.Config{Dir: dir}
	if mb, err := strconv.Atoi(os.Getenv("WK_BENCH_CACHE_MB")); err == nil {
		cfg.CacheBytes = int64(mb) << 20
	}
	s, err := store.Open(context.Background(), cfg)
	require.NoError(b, err)
	b.Cleanup(func() { _ = s.Close() })
	<-s.Warmed()
	return s
}

func runQueries(b *testing.B, s *store.Store, queries []index.Query) {
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	hits := 0
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		es, _, err := s.Search(ctx, queries[i%len(queries)])
		lat = append(lat, time.Since(t0))
		if err != nil {
			b.Fatal(err)
		}
		hits += len(es)
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-us")
	b.ReportMetric(float64(hits)/float64(b.N), "results/op")
}

func TestMain(m *testing.M) {
	if dir := os.Getenv("WK_CRASH_DIR"); dir != "" {
		round, _ := strconv.Atoi(os.Getenv("WK_CRASH_ROUND"))
		crashChild(dir, round)
		return
	}
	code := m.Run()
	if millionDir != "" && os.Getenv("WK_BENCH_1M_DIR") == "" {
		_ = os.RemoveAll(filepath.Dir(millionDir))
	}
	os.Exit(code)
}
