package server

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// webhookLogCache is how many log entries the catch-up cache keeps.
const webhookLogCache = 8192

// logEntry is a log entry as a catch-up matches it: the sparse killmail
// (nil for a quiet or undecodable entry), not its JSON.
type logEntry struct {
	offset uint64
	km     *store.Killmail
}

// logCache keeps the stretch of the write log read last, decoded sparsely.
// Subscriptions that catch up over the same stretch (after a restart, all
// of them) then read and decode each entry about once between them, not
// once each; a match's JSON is read by offset. Safe for concurrent use.
type logCache struct {
	mu   sync.Mutex
	m    map[uint64]logEntry
	ring []uint64 // offsets in insertion order; 0 = free
	next int
	// loading holds the aligned chunks being read, so that subscriptions
	// asking for the same stretch at once wait for one read.
	loading map[uint64]chan struct{}
}

func newLogCache(n int) *logCache {
	return &logCache{m: make(map[uint64]logEntry, n), ring: make([]uint64, n), loading: make(map[uint64]chan struct{})}
}

// claim makes the caller the reader of the chunk after base (leader), or
// returns the channel closed when its reader is done.
func (c *logCache) claim(base uint64) (done chan struct{}, leader bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, busy := c.loading[base]; busy {
		return ch, false
	}
	ch := make(chan struct{})
	c.loading[base] = ch
	return ch, true
}

func (c *logCache) release(base uint64, ch chan struct{}) {
	c.mu.Lock()
	delete(c.loading, base)
	c.mu.Unlock()
	close(ch)
}

// cached returns the entries after `after` that the cache holds without a
// gap, at most max.
func (c *logCache) cached(after uint64, max int) []logEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []logEntry
	for off := after + 1; len(out) < max; off++ {
		e, ok := c.m[off]
		if !ok {
			break
		}
		out = append(out, e)
	}
	return out
}

func (c *logCache) put(entries []logEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range entries {
		if _, dup := c.m[e.offset]; dup {
			continue
		}
		if old := c.ring[c.next]; old != 0 {
			delete(c.m, old)
		}
		c.ring[c.next], c.m[e.offset] = e.offset, e
		c.next = (c.next + 1) % len(c.ring)
	}
}

// readLog returns up to max log entries after `after`, from the cache or
// else from the store. Store reads are of aligned chunks of max entries,
// one reader per chunk at a time, and are cached. Like store.Read it
// never passes the head; an empty result means there is nothing more.
func (w *Webhooks) readLog(ctx context.Context, after uint64, max int) ([]logEntry, error) {
	c := w.logCache
	for {
		if out := c.cached(after, max); len(out) > 0 {
			return out, nil
		}
		base := after - after%uint64(max)
		ch, leader := c.claim(base)
		if !leader {
			select {
			case <-ch:
				continue // read by another subscription: look again
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		entries, err := w.loadChunk(ctx, base, max)
		c.release(base, ch)
		out := entries[:0]
		for _, e := range entries {
			if e.offset > after {
				out = append(out, e)
			}
		}
		return out, err
	}
}

// loadChunk reads up to max entries after base from the store, decodes
// them sparsely and caches them.
func (w *Webhooks) loadChunk(ctx context.Context, base uint64, max int) ([]logEntry, error) {
	entries, err := w.st.Read(ctx, base, max)
	out := make([]logEntry, len(entries))
	for i, e := range entries {
		out[i].offset = e.Offset
		if e.Quiet {
			continue // backfilled: not for live feeds
		}
		km, derr := decodeMatchFields(e.JSON)
		if derr != nil {
			w.log.Error("undecodable log entry skipped", "offset", e.Offset, "err", derr)
			continue
		}
		out[i].km = km
	}
	w.logCache.put(out)
	return out, err
}

// matchFields is the part of a killmail a filter reads. Decoding only it
// skips the items and names, which are most of a killmail.
type matchFields struct {
	SystemID int64 `json:"system_id"`
	Victim   struct {
		CharacterID int64 `json:"character_id"`
	} `json:"victim"`
	Attackers []struct {
		CharacterID int64 `json:"character_id"`
	} `json:"attackers"`
	ZKB *struct {
		TotalValue float64 `json:"totalValue"`
	} `json:"zkb"`
}

// decodeMatchFields decodes what a filter needs into a sparse Killmail.
func decodeMatchFields(js []byte) (*store.Killmail, error) {
	var f matchFields
	if err := json.Unmarshal(js, &f); err != nil {
		return nil, err
	}
	km := &store.Killmail{SystemID: f.SystemID, Victim: store.Victim{CharacterID: f.Victim.CharacterID}}
	km.Attackers = make([]store.Attacker, len(f.Attackers))
	for i, a := range f.Attackers {
		km.Attackers[i].CharacterID = a.CharacterID
	}
	if f.ZKB != nil {
		km.ZKB = &store.ZKB{TotalValue: f.ZKB.TotalValue}
	}
	return km, nil
}
