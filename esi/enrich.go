package esi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wanderer-industries/wanderer-kills-go/data"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// Enricher adds names to killmails: character, corporation and alliance
// names and tickers on the victim and every attacker, ship names, and the
// system name. Ships and systems come from the embedded catalog first;
// everything else from the Client's caches and ESI. Safe for concurrent
// use.
type Enricher struct {
	c   *Client
	cat *data.Catalog
}

// NewEnricher builds an Enricher. cat may be nil, then ship and system
// names also come from ESI.
func NewEnricher(c *Client, cat *data.Catalog) *Enricher {
	return &Enricher{c: c, cat: cat}
}

// Enrich fills km's names. See EnrichMany.
func (e *Enricher) Enrich(ctx context.Context, km *store.Killmail) error {
	return e.EnrichMany(ctx, []*store.Killmail{km})
}

// EnrichMany fills the names of all kms with as few ESI requests as it
// can: one POST /universe/names/ per 1000 unknown ids across all of them,
// and one GET per unknown corporation and alliance for its ticker (at
// most Config.Concurrency at a time). Names already set are kept when a
// lookup fails. If some lookups failed the error wraps ErrIncomplete and
// every name that was found is filled in; ids ESI does not know are not
// failures. When every id is cached it makes no allocation per attacker.
func (e *Enricher) EnrichMany(ctx context.Context, kms []*store.Killmail) error {
	e.c.ensureLoaded(ctx)
	if e.fill(kms, true) {
		return nil
	}
	nameMiss, entMiss := e.missing(kms)
	var err error
	if len(nameMiss) > 0 || len(entMiss) > 0 {
		err = e.resolve(ctx, nameMiss, entMiss)
	}
	e.fill(kms, false)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrIncomplete, err)
	}
	return nil
}

// fill copies every cached name onto kms under one read lock; it never
// clears a name. It reports whether every id was cached, and counts the
// lookups in the metrics when count is set.
func (e *Enricher) fill(kms []*store.Killmail, count bool) bool {
	f := filler{e: e, snap: e.c.snap, now: time.Now().UnixNano()}
	f.snap.mu.RLock()
	for _, km := range kms {
		f.killmail(km)
	}
	f.snap.mu.RUnlock()
	if count {
		e.c.metrics.lookupMany("name", f.hits, f.misses)
	}
	return f.misses == 0
}

// filler is one pass of fill.
type filler struct {
	e            *Enricher
	snap         *snapshot
	now          int64
	hits, misses int
	// onMiss, when set, is told the ids that are not cached.
	onMiss func(id int64, kind *entityKind)
}

func (f *filler) killmail(km *store.Killmail) {
	if s, ok := f.e.system(km.SystemID); ok {
		km.SystemName = s
	} else {
		f.name(&km.SystemName, km.SystemID)
	}
	v := &km.Victim
	f.party(&v.Names, v.CharacterID, v.CorporationID, v.AllianceID, v.ShipTypeID)
	for i := range km.Attackers {
		a := &km.Attackers[i]
		f.party(&a.Names, a.CharacterID, a.CorporationID, a.AllianceID, a.ShipTypeID)
	}
}

func (f *filler) party(n *store.Names, char, corp, alliance, ship int64) {
	f.name(&n.CharacterName, char)
	f.entity(&n.CorporationName, &n.CorporationTicker, corp, &kindCorporation)
	f.entity(&n.AllianceName, &n.AllianceTicker, alliance, &kindAlliance)
	if s, ok := f.e.ship(ship); ok {
		n.ShipName = s
	} else {
		f.name(&n.ShipName, ship)
	}
}

func (f *filler) name(dst *string, id int64) {
	if id <= 0 {
		return
	}
	s, ok := f.snap.name(id, f.now)
	f.count(ok, id, nil)
	if s != "" {
		*dst = s
	}
}

func (f *filler) entity(name, ticker *string, id int64, kind *entityKind) {
	if id <= 0 {
		return
	}
	n, t, ok := f.snap.entity(id, f.now)
	f.count(ok, id, kind)
	if !ok {
		n, _ = f.snap.name(id, f.now) // the names POST may know it
	}
	if n != "" {
		*name = n
	}
	if t != "" {
		*ticker = t
	}
}

func (f *filler) count(hit bool, id int64, kind *entityKind) {
	if hit {
		f.hits++
		return
	}
	f.misses++
	if f.onMiss != nil {
		f.onMiss(id, kind)
	}
}

func (e *Enricher) ship(id int64) (string, bool) {
	if e.cat == nil {
		return "", false
	}
	s, ok := e.cat.Ship(id)
	return s.Name, ok
}

func (e *Enricher) system(id int64) (string, bool) {
	if e.cat == nil {
		return "", false
	}
	s, ok := e.cat.System(id)
	return s.Name, ok
}

// entityRef is a corporation or alliance to fetch.
type entityRef struct {
	id   int64
	kind entityKind
}

// missing lists the distinct ids of kms that are not cached: names to
// POST (sorted) and entities to GET. Corporations and alliances go to
// both: the POST names them even when their ticker cannot be fetched.
func (e *Enricher) missing(kms []*store.Killmail) (names []int64, ents []entityRef) {
	seen := map[int64]bool{}
	f := filler{e: e, snap: e.c.snap, now: time.Now().UnixNano()}
	f.onMiss = func(id int64, kind *entityKind) {
		if kind != nil {
			ents = append(ents, entityRef{id: id, kind: *kind})
		}
		if !seen[id] {
			seen[id] = true
			if _, ok := f.snap.name(id, f.now); kind == nil || !ok {
				names = append(names, id)
			}
		}
	}
	f.snap.mu.RLock()
	for _, km := range kms {
		f.killmail(km) // what it fills, fill would fill too
	}
	f.snap.mu.RUnlock()
	slices.Sort(names)
	slices.SortFunc(ents, func(a, b entityRef) int { return cmp.Compare(a.id, b.id) })
	ents = slices.CompactFunc(ents, func(a, b entityRef) bool { return a.id == b.id })
	return slices.Compact(names), ents
}

// resolve fetches the missing names (one flight) and entities (bounded
// concurrency) at the same time.
func (e *Enricher) resolve(ctx context.Context, nameMiss []int64, entMiss []entityRef) error {
	var nameErr error
	var wg sync.WaitGroup
	if len(nameMiss) > 0 {
		wg.Go(func() { nameErr = e.c.resolveNames(ctx, nameMiss, map[int64]Name{}) })
	}
	entErr := e.c.resolveEntities(ctx, entMiss)
	wg.Wait()
	return errors.Join(nameErr, entErr)
}

// resolveEntities fetches refs with at most Concurrency requests at a
// time. Unknown ids are not errors; for the others it reports how many
// failed and the first error.
func (c *Client) resolveEntities(ctx context.Context, refs []entityRef) error {
	var (
		mu     sync.Mutex
		first  error
		failed int
		g      errgroup.Group
	)
	g.SetLimit(c.cfg.Concurrency)
	for _, r := range refs {
		g.Go(func() error {
			_, err := c.entity(ctx, r.kind, r.id)
			if err != nil && !errors.Is(err, ErrNotFound) {
				mu.Lock()
				failed++
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	if failed > 0 {
		return fmt.Errorf("%d of %d corporation/alliance lookups failed, first: %w", failed, len(refs), first)
	}
	return nil
}
