package esi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KV is the key-value storage that persists learned names (the store
// offers it). Keys written by the client start with "esi/name/".
type KV interface {
	// PutKV sets the pairs in one write; a nil value deletes the key.
	PutKV(ctx context.Context, kv map[string][]byte) error
	// ScanKV calls fn for every key with the prefix.
	ScanKV(ctx context.Context, prefix string, fn func(key string, value []byte) error) error
}

// NamePrefix starts the keys of persisted names: "esi/name/{id}".
const NamePrefix = "esi/name/"

// nameRecord is a persisted name, with the corporation or alliance ticker
// when known. At is when it was learned (Unix seconds).
type nameRecord struct {
	Name     string `json:"n"`
	Category string `json:"c,omitempty"`
	Ticker   string `json:"t,omitempty"`
	At       int64  `json:"at"`
}

// LoadNames reads the names persisted in Config.NameStore into the caches
// (with what is left of their NameTTL) and deletes the expired ones. It
// returns how many names it loaded. It runs once: later calls, and every
// call without a NameStore, return 0 and nil. Lookups call it themselves
// on first use; Run calls it at start.
func (c *Client) LoadNames(ctx context.Context) (int, error) {
	if c.cfg.NameStore == nil || c.loaded.Load() {
		return 0, nil
	}
	select {
	case c.loadSem <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	defer func() { <-c.loadSem }()
	if c.loaded.Load() {
		return 0, nil
	}
	n, err := c.loadNames(ctx)
	if ctx.Err() == nil {
		c.loaded.Store(true) // a broken store must not be rescanned on every lookup
	}
	if err != nil {
		return n, fmt.Errorf("esi: load names: %w", err)
	}
	c.log.InfoContext(ctx, "loaded persisted names", "count", n)
	return n, nil
}

func (c *Client) loadNames(ctx context.Context) (int, error) {
	now := time.Now()
	stale := map[string][]byte{}
	n := 0
	err := c.cfg.NameStore.ScanKV(ctx, NamePrefix, func(key string, value []byte) error {
		id, err := strconv.ParseInt(strings.TrimPrefix(key, NamePrefix), 10, 64)
		var rec nameRecord
		if err != nil || json.Unmarshal(value, &rec) != nil || rec.Name == "" || id <= 0 {
			stale[key] = nil
			return nil
		}
		ttl := c.cfg.NameTTL - now.Sub(time.Unix(rec.At, 0))
		if ttl <= 0 {
			stale[key] = nil
			return nil
		}
		c.storeName(Name{ID: id, Name: rec.Name, Category: rec.Category}, ttl)
		if rec.Ticker != "" {
			c.storeEntity(Entity{ID: id, Name: rec.Name, Ticker: rec.Ticker}, ttl)
		}
		n++
		return nil
	})
	if err != nil {
		return n, err
	}
	if len(stale) > 0 {
		if err := c.cfg.NameStore.PutKV(ctx, stale); err != nil {
			return n, fmt.Errorf("deleting %d stale names: %w", len(stale), err)
		}
	}
	return n, nil
}

// ensureLoaded makes sure persisted names are in the cache before a
// lookup decides to ask ESI.
func (c *Client) ensureLoaded(ctx context.Context) {
	if c.cfg.NameStore == nil || c.loaded.Load() {
		return
	}
	if _, err := c.LoadNames(ctx); err != nil && ctx.Err() == nil {
		c.log.ErrorContext(ctx, "loading persisted names", "err", err)
	}
}

// markDirty schedules id's name for the next flush.
func (c *Client) markDirty(id int64) {
	if c.cfg.NameStore == nil {
		return
	}
	c.dirtyMu.Lock()
	c.dirty[id] = struct{}{}
	c.dirtyMu.Unlock()
}

// Flush writes the names learned since the last flush to
// Config.NameStore. Run calls it every FlushInterval and on stop.
func (c *Client) Flush(ctx context.Context) error {
	if c.cfg.NameStore == nil {
		return nil
	}
	c.dirtyMu.Lock()
	ids := c.dirty
	c.dirty = map[int64]struct{}{}
	c.dirtyMu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	kv := make(map[string][]byte, len(ids))
	for id := range ids {
		if rec, ok := c.record(id); ok {
			b, _ := json.Marshal(rec)
			kv[NamePrefix+strconv.FormatInt(id, 10)] = b
		}
	}
	if err := c.cfg.NameStore.PutKV(ctx, kv); err != nil {
		c.dirtyMu.Lock()
		for id := range ids {
			c.dirty[id] = struct{}{}
		}
		c.dirtyMu.Unlock()
		return fmt.Errorf("esi: persist %d names: %w", len(kv), err)
	}
	return nil
}

// record builds the persisted form of id from the caches.
func (c *Client) record(id int64) (nameRecord, bool) {
	it := c.names.Get(id)
	if it == nil || it.Value().Name == "" {
		return nameRecord{}, false
	}
	n := it.Value()
	rec := nameRecord{Name: n.Name, Category: n.Category, At: it.ExpiresAt().Add(-c.cfg.NameTTL).Unix()}
	if e := c.entities.Get(id); e != nil && e.Value().Ticker != "" {
		rec.Ticker = e.Value().Ticker
	}
	return rec, true
}

func (c *Client) flushLogged(ctx context.Context) {
	if err := c.Flush(ctx); err != nil && !errors.Is(err, context.Canceled) {
		c.log.ErrorContext(ctx, "persisting names", "err", err)
	}
}
