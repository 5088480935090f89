package esi

import (
	"sync"
	"time"
)

// snapshot mirrors the names and entities caches in one read-mostly map,
// so that enriching a killmail from a warm cache takes one read lock for
// all its ids instead of a ttlcache lookup (a mutex, an LRU move and a
// clock read) per id. Entries carry their own expiry; Run prunes the
// expired ones.
type snapshot struct {
	mu sync.RWMutex
	m  map[int64]snapEntry
}

// snapEntry is what is known of one id. An expiry of zero means not
// known; a known Name or Entity with an empty name is an id ESI does
// not know.
type snapEntry struct {
	name      Name
	nameUntil int64 // Unix nanoseconds
	entity    Entity
	entUntil  int64
}

func newSnapshot() *snapshot { return &snapshot{m: map[int64]snapEntry{}} }

// storeName caches a name (or, with an empty Name.Name, an unknown id).
func (c *Client) storeName(n Name, ttl time.Duration) {
	c.names.Set(n.ID, n, ttl)
	until := time.Now().Add(ttl).UnixNano()
	c.snap.mu.Lock()
	e := c.snap.m[n.ID]
	e.name, e.nameUntil = n, until
	c.snap.m[n.ID] = e
	c.snap.mu.Unlock()
}

// storeEntity caches a corporation or alliance (or an unknown one).
func (c *Client) storeEntity(ent Entity, ttl time.Duration) {
	c.entities.Set(ent.ID, ent, ttl)
	until := time.Now().Add(ttl).UnixNano()
	c.snap.mu.Lock()
	e := c.snap.m[ent.ID]
	e.entity, e.entUntil = ent, until
	c.snap.m[ent.ID] = e
	c.snap.mu.Unlock()
}

// prune drops the entries whose name and entity have both expired.
func (s *snapshot) prune(now time.Time) {
	t := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, e := range s.m {
		if e.nameUntil <= t && e.entUntil <= t {
			delete(s.m, id)
		}
	}
}

// name returns the name of id if it is known at now (Unix ns). The
// caller holds s.mu for reading.
func (s *snapshot) name(id, now int64) (string, bool) {
	e, ok := s.m[id]
	if !ok || e.nameUntil <= now {
		return "", false
	}
	return e.name.Name, true
}

// entity returns the name and ticker of a corporation or alliance if it
// is known at now. The caller holds s.mu for reading.
func (s *snapshot) entity(id, now int64) (name, ticker string, ok bool) {
	e, found := s.m[id]
	if !found || e.entUntil <= now {
		return "", "", false
	}
	if e.entity.Name == "" && e.nameUntil > now {
		return e.name.Name, "", true // ESI has no record, but a name
	}
	return e.entity.Name, e.entity.Ticker, true
}
