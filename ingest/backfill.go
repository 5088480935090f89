package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// KV key prefixes of the backfill's progress, one key per source: the
// prefix, then the archive's or file's base name, or the day as YYYYMMDD.
const (
	PrefixBackfillEVERef = "backfill/everef/"
	PrefixBackfillJSONL  = "backfill/jsonl/"
	PrefixBackfillZKB    = "backfill/zkb/"
)

// BackfillConfig configures a Backfill. Zero values mean the defaults.
type BackfillConfig struct {
	// Batch is how many records of a file one Process call (one synced
	// commit) takes. Zero means 500.
	Batch int
	// FetchBatch is the same for zKillboard history, whose bodies come
	// from ESI one request each. Zero means 100.
	FetchBatch int
	// Workers decode records in parallel. Zero means GOMAXPROCS.
	Workers int
	// ZKBBlocks asks zKillboard for each history killmail's zkb block
	// (one paced request each); false stores them without one.
	ZKBBlocks bool
	// Retries is how often a failed Process call (ESI unreachable for a
	// body) or zkb block fetch is retried before the source is given up.
	// Zero means 5; negative means none.
	Retries int
	// RetryWait is the first pause before a retry; it doubles. Zero
	// means 2s.
	RetryWait time.Duration
	// Now is the clock deciding whether a day is over. Nil means
	// time.Now.
	Now func() time.Time
}

func (c *BackfillConfig) defaults() {
	setDefault(&c.Batch, 500)
	setDefault(&c.FetchBatch, 100)
	setDefault(&c.Workers, runtime.GOMAXPROCS(0))
	setDefault(&c.Retries, 5)
	c.Retries = max(c.Retries, 0)
	setDefault(&c.RetryWait, 2*time.Second)
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first field that cannot work.
func (c BackfillConfig) Validate() error {
	if c.Batch < 0 || c.FetchBatch < 0 || c.Workers < 0 || c.RetryWait < 0 {
		return errors.New("ingest: backfill batch, workers and retry wait must not be negative")
	}
	return nil
}

// History is zKillboard as the backfill uses it. *ZKB implements it.
type History interface {
	History(ctx context.Context, day time.Time) (map[int64]string, error)
	Killmail(ctx context.Context, id int64) (Entry, error)
}

// Backfill imports history offline through a Processor (a Pipeline built
// with Quiet set, so live subscribers are not flooded): EVE Ref archives,
// JSONL files and zKillboard's daily history. Each source's progress is
// written in the same commit as its killmails, so a second run adds
// nothing and an interrupted one resumes where it stopped. Bad records
// are counted with their reason and do not stop the source. Its methods
// may be called one after another or concurrently; Totals sums them all.
type Backfill struct {
	cfg  BackfillConfig
	proc Processor
	st   Store
	zkb  History
	log  *slog.Logger

	mu    sync.Mutex
	total Tally
}

// NewBackfill builds a Backfill that stores through proc and keeps its
// progress in st (the store proc writes to). zkb may be nil when
// zKillboard history is not used.
func NewBackfill(proc Processor, st Store, zkb History, cfg BackfillConfig, log *slog.Logger) *Backfill {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Backfill{cfg: cfg, proc: proc, st: st, zkb: zkb, log: log.With("component", "backfill")}
}

// Totals returns what every call so far did, running ones included.
func (b *Backfill) Totals() Tally {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total.clone()
}

func (b *Backfill) count(t Tally) {
	b.mu.Lock()
	b.total.Add(t)
	b.mu.Unlock()
}

// EVERef imports one EVE Ref archive read from r. name is the archive's
// base name, the key of its progress (empty: standard input, no progress
// kept); size is its length in bytes: an archive whose size changed (EVE
// Ref rewrites a day when late kills arrive) is read again from its first
// member. The error is for a broken stream (the members before the damage
// are stored, and counted) or a failure of the store or ctx.
func (b *Backfill) EVERef(ctx context.Context, name string, size int64, r io.Reader) (Tally, error) {
	read := func(ctx context.Context, fn func(Record) error) error { return ReadEVERef(ctx, r, fn) }
	return b.file(ctx, progressKey(PrefixBackfillEVERef, name), size, read)
}

// JSONL imports one JSONL file (one ESI killmail, R2Z2 document or
// zKillboard entry per line) read from r. name is its base name, the key
// of its progress; empty (standard input) means no progress is kept.
// size works as for EVERef.
func (b *Backfill) JSONL(ctx context.Context, name string, size int64, r io.Reader) (Tally, error) {
	read := func(ctx context.Context, fn func(Record) error) error { return ReadJSONL(ctx, r, fn) }
	return b.file(ctx, progressKey(PrefixBackfillJSONL, name), size, read)
}

// progressKey is the KV key of a file's progress; "" (no progress) for a
// nameless source.
func progressKey(prefix, name string) string {
	if name == "" {
		return ""
	}
	return prefix + name
}

// fileProgress is the value under a file's progress key.
type fileProgress struct {
	// Records is how many records (from the first) are done.
	Records int `json:"records"`
	// Done says the whole file is.
	Done bool `json:"done"`
	// Size is the file's length when they were done.
	Size int64 `json:"size"`
}

func (p fileProgress) encode() []byte {
	b, _ := json.Marshal(p) // ints and a bool cannot fail
	return b
}

// progress reads the value under key into v; false when there is none
// (or it is damaged, which restarts the source: idempotence makes that
// safe).
func (b *Backfill) progress(ctx context.Context, key string, v any) (bool, error) {
	raw, err := b.st.GetKV(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("ingest: backfill progress %s: %w", key, err)
	}
	if json.Unmarshal(raw, v) != nil {
		b.log.WarnContext(ctx, "damaged backfill progress; starting the source over", "key", key)
		return false, nil
	}
	return true, nil
}

// file imports the records read calls its callback with; key "" keeps no
// progress.
func (b *Backfill) file(ctx context.Context, key string, size int64, read reader) (Tally, error) {
	var prog fileProgress
	if key != "" {
		ok, err := b.progress(ctx, key, &prog)
		if err != nil {
			return Tally{}, err
		}
		if ok && prog.Size != size {
			b.log.InfoContext(ctx, "source changed size; reading it again", "key", key, "was", prog.Size, "now", size)
			prog = fileProgress{}
		}
	}
	if prog.Done {
		t := Tally{Skipped: prog.Records}
		b.count(t)
		return t, nil
	}
	if prog.Records > 0 {
		b.log.InfoContext(ctx, "resuming", "key", key, "records_done", prog.Records)
	}
	run := &fileRun{b: b, key: key, size: size, skip: prog.Records}
	return run.run(ctx, read)
}
