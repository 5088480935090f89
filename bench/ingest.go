package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// ingestBatch is the killmails of one synced commit, the backfill's
// default (--batch).
const ingestBatch = 500

// esiRecord is a killmail in the zKillboard API's full shape: the ESI
// body with killmail_hash and the zkb block, one of the shapes
// `wanderer-kills backfill --jsonl` reads.
type esiRecord struct {
	*esi.RawKillmail
	ZKB *store.ZKB `json:"zkb,omitempty"`
}

func recordOf(km *store.Killmail) esiRecord {
	return esiRecord{RawKillmail: esi.RawOf(km), ZKB: km.ZKB}
}

// WriteKillmails writes n generated killmails to path as JSONL (ESI body,
// killmail_hash and zkb block per line) and returns the file's size. The
// generator runs in order; chunks are encoded on every CPU.
func WriteKillmails(path string, gen *Generator, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	const chunk = 1000
	type part struct {
		kms  []*store.Killmail
		out  bytes.Buffer
		err  error
		done chan struct{}
	}
	parts := make(chan *part, runtime.GOMAXPROCS(0))
	go func() {
		defer close(parts)
		for left := n; left > 0; left -= chunk {
			p := &part{kms: make([]*store.Killmail, min(chunk, left)), done: make(chan struct{})}
			for i := range p.kms {
				p.kms[i] = gen.Next()
			}
			go func() {
				defer close(p.done)
				enc := json.NewEncoder(&p.out)
				enc.SetEscapeHTML(false)
				for _, km := range p.kms {
					if p.err = enc.Encode(recordOf(km)); p.err != nil {
						return
					}
				}
			}()
			parts <- p
		}
	}()
	var size int64
	for p := range parts {
		<-p.done
		if err == nil {
			err = p.err
		}
		if err == nil {
			var w int64
			w, err = p.out.WriteTo(f)
			size += w
		}
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("bench: write killmails: %w", err)
	}
	return size, nil
}

// timedStore is the store as the pipeline sees it, timing each commit.
type timedStore struct {
	*store.Store
	wg      sync.WaitGroup // the timing goroutines
	mu      sync.Mutex
	commits []time.Duration
}

// Submit queues a batch and notes how long it took from the call until
// its synced commit was indexed: Append's latency.
func (t *timedStore) Submit(ctx context.Context, b store.Batch) (*store.Pending, error) {
	start := time.Now()
	p, err := t.Store.Submit(ctx, b)
	if err != nil {
		return nil, err
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		_, _ = p.Wait()
		d := time.Since(start)
		t.mu.Lock()
		t.commits = append(t.commits, d)
		t.mu.Unlock()
	}()
	return p, nil
}

// noNames is the enricher of `backfill --no-enrich`: no ESI lookups.
type noNames struct{}

func (noNames) EnrichMany(context.Context, []*store.Killmail) error { return nil }

// runIngest writes the killmail file, then imports it into an empty store
// through the backfill path and returns the store, open, for the query
// and restart scenarios.
func (r *runner) runIngest(ctx context.Context) (*IngestResult, *store.Store, error) {
	path := filepath.Join(r.dir, "killmails.jsonl")
	r.logf("ingest: writing %d generated killmails to %s", r.o.Killmails, path)
	size, err := WriteKillmails(path, NewGenerator(r.templates, r.genConfig(r.o.Seed)), r.o.Killmails)
	if err != nil {
		return nil, nil, err
	}
	storeDir := filepath.Join(r.dir, "store")
	st, err := store.Open(ctx, store.Config{Dir: storeDir})
	if err != nil {
		return nil, nil, err
	}
	ts := &timedStore{Store: st}
	pipe := ingest.NewPipeline(ts, nil, noNames{}, ingest.PipelineConfig{Quiet: true}, nil)
	bf := ingest.NewBackfill(pipe, ts, nil, ingest.BackfillConfig{Batch: ingestBatch}, nil)
	f, err := os.Open(path)
	if err != nil {
		_ = st.Close()
		return nil, nil, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	r.logf("ingest: importing %d killmails (%.0f MB)", r.o.Killmails, float64(size)/1e6)
	start, cpu0 := time.Now(), CPUTime()
	tally, err := bf.JSONL(ctx, filepath.Base(path), size, bufio.NewReaderSize(f, 1<<20))
	elapsed, cpu := time.Since(start), CPUTime()-cpu0
	ts.wg.Wait()
	_ = os.Remove(path) // gigabytes in the full run; the store has it all now
	if err != nil {
		_ = st.Close()
		return nil, nil, fmt.Errorf("bench: ingest: %w", err)
	}
	if tally.Added == 0 {
		_ = st.Close()
		return nil, nil, fmt.Errorf("bench: ingest stored nothing (%d rejected: %v)", tally.Rejected, tally.Examples)
	}
	slices.Sort(ts.commits)
	res := &IngestResult{
		Killmails:       tally.Added,
		KillmailsPerSec: float64(tally.Added) / elapsed.Seconds(),
		CPUusPerKM:      float64(cpu.Microseconds()) / float64(tally.Added),
		CommitP50ms:     ms(quantile(ts.commits, 0.50)),
		CommitP99ms:     ms(quantile(ts.commits, 0.99)),
		Commits:         len(ts.commits),
		BatchSize:       ingestBatch,
		FileBytes:       size,
		StoreBytes:      int64(st.Stats().DiskBytes),
		Rejected:        tally.Rejected,
		Seconds:         elapsed.Seconds(),
		How: fmt.Sprintf("a %.0f MB JSONL file of generated killmails (ESI body, hash, zkb) read by the backfill path "+
			"(ingest.Backfill.JSONL, %d decoders, no ESI enrichment) into an empty store: decode, validate, "+
			"one synced Pebble commit per %d killmails, index; commit latency is store.Append's",
			float64(size)/1e6, runtimeWorkers(), ingestBatch),
	}
	res.Verdict = verdict(check{figure: "killmails_per_sec", limit: TargetIngestPerSec, value: res.KillmailsPerSec})
	return res, st, nil
}

// quantile of sorted durations; 0 when empty.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}
