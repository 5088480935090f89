package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// mark is the value under PrefixUnenriched+id.
type mark struct {
	Attempts int       `json:"attempts"`
	Since    time.Time `json:"since"`
}

func (m mark) encode() []byte {
	b, _ := json.Marshal(m) // a struct of an int and a time cannot fail
	return b
}

func decodeMark(b []byte) mark {
	var m mark
	_ = json.Unmarshal(b, &m) // a damaged mark restarts from zero attempts
	return m
}

func unenrichedKey(id int64) string { return PrefixUnenriched + strconv.FormatInt(id, 10) }

// maxPassFailures ends a pass early: that many failures in a row mean
// ESI is down, and asking it about more killmails only burns its budget.
const maxPassFailures = 3

// RunEnrichment completes killmails stored without all their names: every
// EnrichInterval it runs EnrichPass. It blocks until ctx ends and returns
// nil then.
func (p *Pipeline) RunEnrichment(ctx context.Context) error {
	t := time.NewTicker(p.cfg.EnrichInterval)
	defer t.Stop()
	for {
		if _, err := p.EnrichPass(ctx); err != nil && ctx.Err() == nil {
			p.log.WarnContext(ctx, "enrichment pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

type pending struct {
	key  string
	id   int64
	mark mark
}

// EnrichPass enriches up to EnrichBatch marked killmails again, updates
// each stored copy in place (same offset) and clears the marks of the
// complete ones. It returns how many it completed. A killmail still
// incomplete after MaxEnrichAttempts passes keeps the names it has and
// loses its mark.
func (p *Pipeline) EnrichPass(ctx context.Context) (int, error) {
	batch, total, err := p.pendingMarks(ctx)
	if err != nil {
		return 0, err
	}
	p.m.unenriched.Set(float64(total))
	p.warm(ctx, batch)
	done, failures := 0, 0
	for _, pm := range batch {
		complete, err := p.reenrich(ctx, pm)
		if err != nil {
			return done, err
		}
		if complete {
			done++
			failures = 0
			continue
		}
		if failures++; failures >= maxPassFailures {
			break
		}
	}
	p.m.unenriched.Set(float64(total - done))
	return done, nil
}

// warm enriches the whole batch in one go, so that the per-killmail
// checks that follow mostly hit the ESI client's caches.
func (p *Pipeline) warm(ctx context.Context, batch []pending) {
	kms := make([]*store.Killmail, 0, len(batch))
	for _, pm := range batch {
		if e, err := p.km.Get(ctx, pm.id); err == nil {
			if km, err := e.Killmail(); err == nil {
				kms = append(kms, km)
			}
		}
	}
	if len(kms) > 1 {
		wctx, cancel := context.WithTimeout(ctx, p.cfg.EnrichTimeout)
		defer cancel()
		_ = p.names.EnrichMany(wctx, kms) // completeness is judged per killmail next
	}
}

// pendingMarks returns the first EnrichBatch marks and the count of all.
func (p *Pipeline) pendingMarks(ctx context.Context) ([]pending, int, error) {
	var batch []pending
	total := 0
	err := p.kv.ScanKV(ctx, PrefixUnenriched, func(key string, value []byte) error {
		total++
		if len(batch) < p.cfg.EnrichBatch {
			id, _ := strconv.ParseInt(strings.TrimPrefix(key, PrefixUnenriched), 10, 64)
			batch = append(batch, pending{key: key, id: id, mark: decodeMark(value)})
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("ingest: scan unenriched: %w", err)
	}
	return batch, total, nil
}

// reenrich works on one marked killmail and reports whether it is now
// complete (or gone). Its error is for the store or ctx.
func (p *Pipeline) reenrich(ctx context.Context, pm pending) (bool, error) {
	drop := map[string][]byte{pm.key: nil}
	e, err := p.km.Get(ctx, pm.id)
	if errors.Is(err, store.ErrNotFound) || pm.id <= 0 {
		return true, p.kv.PutKV(ctx, drop) // rejected or removed by retention
	}
	if err != nil {
		return false, err
	}
	km, err := e.Killmail()
	if err != nil {
		p.log.ErrorContext(ctx, "unenriched killmail unreadable; dropping its mark", "killmail_id", pm.id, "err", err)
		return true, p.kv.PutKV(ctx, drop)
	}
	before := km.NameCount()
	complete, err := p.enrich(ctx, []*store.Killmail{km})
	if err != nil {
		return false, err
	}
	if complete {
		p.m.enrich.WithLabelValues("filled").Inc()
		return true, p.update(ctx, e.Offset, km, drop)
	}
	next := pm.mark
	next.Attempts++
	kv := map[string][]byte{pm.key: next.encode()}
	if next.Attempts >= p.cfg.MaxEnrichAttempts {
		p.m.enrich.WithLabelValues("given_up").Inc()
		p.log.WarnContext(ctx, "giving up enriching killmail; keeping the names found",
			"killmail_id", pm.id, "attempts", next.Attempts, "since", next.Since)
		kv = drop
	} else {
		p.m.enrich.WithLabelValues("retry").Inc()
	}
	if km.NameCount() > before {
		return false, p.update(ctx, e.Offset, km, kv)
	}
	return false, p.kv.PutKV(ctx, kv)
}

// update writes the enriched copy in place; a copy the store now refuses
// (validation moved on) just loses its mark.
func (p *Pipeline) update(ctx context.Context, offset uint64, km *store.Killmail, kv map[string][]byte) error {
	err := p.km.Update(ctx, offset, km, kv)
	if errors.Is(err, store.ErrInvalid) {
		p.log.WarnContext(ctx, "enriched killmail refused by the store; dropping its mark",
			"killmail_id", km.KillmailID, "err", err)
		return p.kv.PutKV(ctx, map[string][]byte{unenrichedKey(km.KillmailID): nil})
	}
	if err != nil {
		return fmt.Errorf("ingest: update killmail %d: %w", km.KillmailID, err)
	}
	return nil
}
