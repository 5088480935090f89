package store

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/stretchr/testify/require"
)

// BenchmarkPebbleFloor is the floor under BenchmarkAppendDurable: the
// same Pebble options, each killmail as one record of real canonical JSON
// (the 88 fixtures, enriched size, compressed as the store does) under one
// key, written by 8 goroutines
// in synced batches of 10, as the store's group commit sees them, but
// with nothing else: no second key, no validation, no encoding, no index.
// No append path built on this Pebble can beat this figure.
func BenchmarkPebbleFloor(b *testing.B) {
	b.Run("record", func(b *testing.B) { pebbleFloor(b, false) })
	b.Run("four-keys", func(b *testing.B) { pebbleFloor(b, true) })
}

func pebbleFloor(b *testing.B, keys bool) {
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "killmails.jsonl"))
	require.NoError(b, err)
	var recs [][]byte
	for _, l := range bytes.Split(raw, []byte("\n")) {
		if len(l) > 0 {
			stored, _ := compressRecord(append([]byte{recordV1, 0}, l...), nil, 0)
			recs = append(recs, stored)
		}
	}
	cfg := Config{Dir: b.TempDir()}
	cfg.defaults()
	cache := pebble.NewCache(cfg.CacheBytes)
	defer cache.Unref()
	db, err := pebble.Open(cfg.Dir, pebbleOptions(cfg, cache))
	require.NoError(b, err)
	defer db.Close()
	b.ResetTimer()
	start := time.Now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next uint64
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				first := next
				next += 10
				mu.Unlock()
				if first >= uint64(b.N)*10 {
					return
				}
				batch := db.NewBatch()
				for off := first; off < first+10; off++ {
					if err := batch.Set(logKey(off+1), recs[off%uint64(len(recs))], nil); err != nil {
						b.Error(err)
					}
					if keys { // the doc, id and time keys of the store's layout
						v := binary.BigEndian.AppendUint64(nil, off+1)
						_ = batch.Set(docKey(off+1), bytes.Repeat(v, 24), nil)
						_ = batch.Set(idKey(int64(off*7919%1_000_003)), v, nil)
						_ = batch.Set(timeKey(1_700_000_000+int64(off), int64(off)), v, nil)
					}
				}
				if err := batch.Commit(pebble.Sync); err != nil {
					b.Error(err)
				}
				batch.Close()
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*10)/time.Since(start).Seconds(), "killmails/s")
}
