package ingest_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/bench"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
)

const benchKillmails = 100_000

var (
	benchArchiveOnce sync.Once
	benchArchivePath string
)

// benchArchive returns an EVE Ref-style archive of 100k generated
// killmails (realistic shapes from bench.Templates, ESI wire shape). It is
// built once with the bzip2 tool (about a minute) and kept in the
// temporary directory for later runs.
func benchArchive(b *testing.B) string {
	benchArchiveOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "wanderer-kills-bench")
		require.NoError(b, os.MkdirAll(dir, 0o755))
		name := fmt.Sprintf("killmails-everef-%d-v1.tar.bz2", benchKillmails)
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err == nil {
			benchArchivePath = path
			return
		}
		tpl, err := bench.Templates()
		require.NoError(b, err)
		start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
		g := bench.NewGenerator(tpl, bench.GenConfig{Seed: 1, Start: start, Span: 24 * time.Hour})
		ms := make([]member, benchKillmails)
		for i := range ms {
			km := g.Next()
			ms[i] = killmailMember(km.KillmailID, esiJSON(b, km))
		}
		tmp := writeArchive(b, dir, name+".tmp", ms)
		require.NoError(b, os.Rename(tmp, path))
		benchArchivePath = path
	})
	if benchArchivePath == "" {
		b.Fatal("no benchmark archive")
	}
	return benchArchivePath
}

// BenchmarkBackfillEVERef100k measures the offline import of a busy day
// (100k killmails) without enrichment: "read" is bzip2 + tar alone,
// "decode" adds the JSON decoding, "store" is the whole backfill into a
// fresh store (parallel decoding, batches of 500, one synced commit
// each). The figure is killmails/s; run it with -benchtime 1x.
func BenchmarkBackfillEVERef100k(b *testing.B) {
	path := benchArchive(b)
	b.Run("read", func(b *testing.B) {
		benchFile(b, path, func() runner {
			return func(ctx context.Context, f *os.File, _ int64) (int, error) {
				n := 0
				err := ingest.ReadEVERef(ctx, f, func(ingest.Record) error { n++; return nil })
				return n, err
			}
		})
	})
	b.Run("decode", func(b *testing.B) {
		benchFile(b, path, func() runner {
			return func(ctx context.Context, f *os.File, _ int64) (int, error) {
				n := 0
				err := ingest.ReadEVERef(ctx, f, func(rec ingest.Record) error {
					_, err := ingest.DecodeRecord(rec.Raw)
					n++
					return err
				})
				return n, err
			}
		})
	})
	b.Run("store", func(b *testing.B) {
		benchFile(b, path, func() runner {
			st := openStore(b, b.TempDir())
			pipe := ingest.NewPipeline(st, nil, noNames{}, ingest.PipelineConfig{Quiet: true}, nil)
			bf := ingest.NewBackfill(pipe, st, nil, ingest.BackfillConfig{}, nil)
			return func(ctx context.Context, f *os.File, size int64) (int, error) {
				t, err := bf.EVERef(ctx, filepath.Base(path), size, f)
				if err == nil && t.Added != benchKillmails {
					err = fmt.Errorf("added %d of %d (%v)", t.Added, benchKillmails, t.Reasons)
				}
				return t.Read, err
			}
		})
	})
}

// runner reads one archive and returns how many killmails it handled.
type runner func(ctx context.Context, f *os.File, size int64) (int, error)

// benchFile times a fresh runner (setup untimed) over the archive b.N
// times and reports killmails/s, and the CPU time of the process per
// killmail (the figure that holds on a machine shared with other work).
func benchFile(b *testing.B, path string, setup func() runner) {
	var total int
	var elapsed, cpu time.Duration
	for range b.N {
		fn := setup()
		f, err := os.Open(path)
		require.NoError(b, err)
		fi, err := f.Stat()
		require.NoError(b, err)
		start, cpuStart := time.Now(), bench.CPUTime()
		n, err := fn(context.Background(), f, fi.Size())
		elapsed += time.Since(start)
		cpu += bench.CPUTime() - cpuStart
		_ = f.Close()
		require.NoError(b, err)
		total += n
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "killmails/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(total), "cpu-µs/killmail")
}
