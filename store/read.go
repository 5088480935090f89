package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	"github.com/cockroachdb/pebble/v2"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

// Entry is one record of the write log.
type Entry struct {
	Offset uint64
	// Quiet entries were backfilled: stored and indexed, not for live feeds.
	Quiet bool
	// JSON is the canonical killmail encoding (API.md §3.1). The slice is
	// the caller's.
	JSON json.RawMessage
}

// Killmail decodes the entry.
func (e Entry) Killmail() (*Killmail, error) {
	km := new(Killmail)
	if err := json.Unmarshal(e.JSON, km); err != nil {
		return nil, fmt.Errorf("%w: offset %d: %w", ErrCorrupt, e.Offset, err)
	}
	return km, nil
}

func (s *Store) offsetOf(id int64) (uint64, error) {
	v, closer, err := s.db.Get(idKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("store: lookup %d: %w", id, err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: id key %d", ErrCorrupt, id)
	}
	return binary.BigEndian.Uint64(v), nil
}

// Get returns the killmail with this id, or ErrNotFound.
func (s *Store) Get(ctx context.Context, killmailID int64) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	off, err := s.offsetOf(killmailID)
	if err != nil {
		return Entry{}, err
	}
	return s.At(ctx, off)
}

// At returns the log entry at an offset, or ErrNotFound.
func (s *Store) At(ctx context.Context, offset uint64) (Entry, error) {
	if err := ctx.Err(); err != nil {
		return Entry{}, err
	}
	if rec, ok := s.recent.get(offset); ok {
		return decodeRecord(offset, rec)
	}
	v, closer, err := s.db.Get(logKey(offset))
	if errors.Is(err, pebble.ErrNotFound) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("store: read offset %d: %w", offset, err)
	}
	defer closer.Close()
	return decodeRecord(offset, v)
}

// Read returns up to max accepted entries with offsets greater than after,
// in log order. It never returns an entry beyond Head. An empty result
// means the reader has caught up: wait on Changed.
func (s *Store) Read(ctx context.Context, after uint64, max int) ([]Entry, error) {
	head := s.Head()
	if after >= head || max <= 0 {
		return nil, ctx.Err()
	}
	if out, ok, err := s.recent.read(after, head, max); ok {
		return out, errors.Join(err, ctx.Err())
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: logKey(after + 1),
		UpperBound: logKey(head + 1),
	})
	if err != nil {
		return nil, fmt.Errorf("store: read log: %w", err)
	}
	defer it.Close()
	var out []Entry
	for ok := it.First(); ok && len(out) < max; ok = it.Next() {
		off := binary.BigEndian.Uint64(it.Key()[1:])
		e, err := decodeRecord(off, it.Value())
		if err != nil {
			return out, err
		}
		out = append(out, e)
	}
	if err := it.Error(); err != nil {
		return out, fmt.Errorf("store: read log: %w", err)
	}
	return out, ctx.Err()
}

// Entries returns the entries at the given offsets, in the same order,
// skipping offsets that retention removed meanwhile. Recent records come
// from memory; for the others one iterator serves every offset, visited
// in log order, so neighbouring records share the blocks it has loaded.
func (s *Store) Entries(ctx context.Context, offsets []uint64) ([]Entry, error) {
	if len(offsets) == 0 {
		return nil, ctx.Err()
	}
	found := make(map[uint64]Entry, len(offsets))
	var missed []uint64
	for _, off := range offsets {
		rec, ok := s.recent.get(off)
		if !ok {
			missed = append(missed, off)
			continue
		}
		e, err := decodeRecord(off, rec)
		if err != nil {
			return nil, err
		}
		found[off] = e
	}
	if err := s.readEntries(ctx, missed, found); err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(offsets))
	for _, off := range offsets {
		if e, ok := found[off]; ok {
			out = append(out, e)
		}
	}
	return out, ctx.Err()
}

// readEntries reads the records at offsets from Pebble into found.
func (s *Store) readEntries(ctx context.Context, offsets []uint64, found map[uint64]Entry) error {
	if len(offsets) == 0 {
		return nil
	}
	sorted := slices.Clone(offsets)
	slices.Sort(sorted)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: logKey(sorted[0]),
		UpperBound: logKey(sorted[len(sorted)-1] + 1),
	})
	if err != nil {
		return fmt.Errorf("store: read entries: %w", err)
	}
	defer it.Close()
	for _, off := range sorted {
		key := logKey(off)
		if !it.SeekGE(key) || !bytes.Equal(it.Key(), key) {
			continue
		}
		e, err := decodeRecord(off, it.Value())
		if err != nil {
			return err
		}
		found[off] = e
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("store: read entries: %w", err)
	}
	return nil
}

// Scan calls fn for each killmail with since <= kill time < until, oldest
// first, until fn returns false. A zero until means no upper bound.
func (s *Store) Scan(ctx context.Context, since, until time.Time, fn func(Entry) bool) error {
	lower := timeKey(max(since.Unix(), 0), 0)
	upper := []byte{prefixTime + 1}
	if !until.IsZero() {
		upper = timeKey(until.Unix(), 0)
	}
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("store: scan: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		e, err := s.At(ctx, binary.BigEndian.Uint64(it.Value()))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if !fn(e) {
			return nil
		}
	}
	return it.Error()
}

// Search runs an index query and returns the matching entries, newest
// first, with the cursor of the next page (nil on the last page).
func (s *Store) Search(ctx context.Context, q index.Query) ([]Entry, *index.Cursor, error) {
	page := s.ix.Search(q)
	offs := make([]uint64, len(page.Hits))
	for i, h := range page.Hits {
		offs[i] = h.Offset
	}
	entries, err := s.Entries(ctx, offs)
	return entries, page.Next, err
}

// GetKV returns the value stored under key by the key-value API, or
// ErrNotFound.
func (s *Store) GetKV(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, closer, err := s.db.Get(kvKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get %q: %w", key, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// PutKV durably sets (or, for a nil value, deletes) key-value pairs in one
// synced commit.
func (s *Store) PutKV(ctx context.Context, kv map[string][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := putKV(b, kv); err != nil {
		return fmt.Errorf("store: put kv: %w", err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store: put kv: %w", err)
	}
	return nil
}

// ScanKV calls fn for every key with the prefix, in key order, until fn
// returns an error, which ScanKV returns.
func (s *Store) ScanKV(ctx context.Context, prefix string, fn func(key string, value []byte) error) error {
	lower := kvKey(prefix)
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(lower)})
	if err != nil {
		return fmt.Errorf("store: scan kv: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := string(it.Key()[2:])
		if err := fn(key, append([]byte(nil), it.Value()...)); err != nil {
			return err
		}
	}
	return it.Error()
}

// loadIndex rebuilds the in-memory index and the set of stored ids from
// the persisted docs.
func (s *Store) loadIndex(ctx context.Context) (*index.Index, *roaring.Bitmap, error) {
	ix := index.New()
	known := roaring.New()
	it, err := s.db.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: []byte{prefixDoc},
		UpperBound: []byte{prefixDoc + 1},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: load index: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		d, err := index.DecodeDoc(it.Value())
		if err != nil {
			return nil, nil, fmt.Errorf("%w: doc at %x: %w", ErrCorrupt, it.Key(), err)
		}
		d.Offset = binary.BigEndian.Uint64(it.Key()[1:])
		if err := ix.Add(d); err != nil {
			return nil, nil, fmt.Errorf("store: load index: %w", err)
		}
		if d.KillmailID > 0 && d.KillmailID <= math.MaxUint32 {
			known.Add(uint32(d.KillmailID))
		}
	}
	if err := it.Error(); err != nil {
		return nil, nil, fmt.Errorf("store: load index: %w", err)
	}
	return ix, known, ctx.Err()
}
