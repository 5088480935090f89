package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// PipelineConfig configures a Pipeline. Zero values mean the defaults.
type PipelineConfig struct {
	// FetchTimeout bounds fetching one missing body from ESI. Zero means
	// 30s.
	FetchTimeout time.Duration
	// EnrichTimeout bounds the enrichment of one Process batch (and of
	// each step of an enrichment pass); past it the killmails are stored
	// with the names found so far. Zero means 15s.
	EnrichTimeout time.Duration
	// Concurrency bounds the missing bodies one Process call fetches at
	// once. Zero means 8.
	Concurrency int
	// EnrichInterval is the pause between two passes of RunEnrichment.
	// Zero means 1m.
	EnrichInterval time.Duration
	// EnrichBatch caps the killmails one pass looks at. Zero means 200.
	EnrichBatch int
	// MaxEnrichAttempts is how many passes may fail on a killmail before
	// it is left as it is (ids ESI will never name). Zero means 60.
	MaxEnrichAttempts int
	// Now is the clock of validation. Nil means time.Now.
	Now func() time.Time
	// Registerer receives the pipeline's collectors. Nil means none.
	Registerer prometheus.Registerer
	// Quiet stores killmails as quiet (store.Batch.Quiet): indexed and
	// served like the others, but not pushed to live subscribers. The
	// backfill of old kills builds its own Pipeline with it set.
	Quiet bool
}

func (c *PipelineConfig) defaults() {
	setDefault(&c.FetchTimeout, 30*time.Second)
	setDefault(&c.EnrichTimeout, 15*time.Second)
	setDefault(&c.Concurrency, 8)
	setDefault(&c.EnrichInterval, time.Minute)
	setDefault(&c.EnrichBatch, 200)
	setDefault(&c.MaxEnrichAttempts, 60)
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first field that cannot work.
func (c PipelineConfig) Validate() error {
	if c.FetchTimeout < 0 || c.EnrichTimeout < 0 || c.EnrichInterval < 0 {
		return errors.New("ingest: pipeline timeouts and intervals must not be negative")
	}
	if c.Concurrency < 0 || c.EnrichBatch < 0 || c.MaxEnrichAttempts < 0 {
		return errors.New("ingest: pipeline counts must not be negative")
	}
	return nil
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Pipeline turns items into stored killmails: it fetches missing bodies
// from ESI, validates, enriches, and appends them with the caller's KV in
// one commit (the store then indexes them and wakes the live feeds).
// Killmails whose enrichment is incomplete are stored anyway and marked;
// RunEnrichment completes them later. Live feeds, backfill and push
// ingest share it. It is safe for concurrent use.
type Pipeline struct {
	cfg    PipelineConfig
	km     Killmails
	kv     KV
	bodies Bodies
	names  Enricher
	log    *slog.Logger
	m      *pipelineMetrics
}

// NewPipeline builds a Pipeline writing to st, fetching missing bodies
// from bodies (an *esi.Client) and names from names (an *esi.Enricher).
func NewPipeline(st Store, bodies Bodies, names Enricher, cfg PipelineConfig, log *slog.Logger) *Pipeline {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{
		cfg: cfg, km: st, kv: st, bodies: bodies, names: names,
		log: log.With("component", "ingest"),
		m:   newPipelineMetrics(cfg.Registerer),
	}
}

// prepared is one item after fetch and validation.
type prepared struct {
	km       *store.Killmail
	rejected error
}

// Process stores items, in order, with kv in the same commit, and returns
// one result per item. An item whose body ESI refuses (bad id or hash) or
// that fails validation comes back Rejected with the reason in Err; the
// others are stored even when enrichment is incomplete (and then marked
// for RunEnrichment). The error is for failures a retry may fix (ESI
// unreachable for a missing body, the store's commit, ctx): then nothing
// was written, kv included.
func (p *Pipeline) Process(ctx context.Context, items []Item, kv map[string][]byte) ([]store.Result, error) {
	sub, err := p.Submit(ctx, items, kv)
	if err != nil {
		return nil, err
	}
	return sub.Wait()
}

// Submitted is a batch of items on its way into the store.
type Submitted struct {
	pending *store.Pending // nil when there was nothing to write
	prep    []prepared
	at      []int // the items given to the store, in its order
}

// Wait returns Process's results once the batch's commit is durable.
func (s *Submitted) Wait() ([]store.Result, error) {
	var res []store.Result
	if s.pending != nil {
		var err error
		if res, err = s.pending.Wait(); err != nil {
			return nil, err
		}
	}
	out := make([]store.Result, len(s.prep))
	for i, pr := range s.prep {
		if pr.rejected != nil {
			out[i] = store.Result{Status: store.Rejected, Err: pr.rejected}
		}
	}
	for j, i := range s.at {
		out[i] = res[j]
	}
	return out, nil
}

// Submit does what Process does up to queueing the batch for the store's
// writer and returns without waiting for the commit, so that the caller
// can prepare its next batch meanwhile; batches submitted one after
// another commit in that order (see store.Store.Submit). Its error is
// Process's, and then nothing was queued.
func (p *Pipeline) Submit(ctx context.Context, items []Item, kv map[string][]byte) (*Submitted, error) {
	prep := make([]prepared, len(items))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.cfg.Concurrency)
	for i := range items {
		g.Go(func() error {
			var err error
			prep[i], err = p.prepare(gctx, items[i])
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var kms []*store.Killmail
	for _, pr := range prep {
		if pr.km != nil {
			kms = append(kms, pr.km)
		}
	}
	complete, err := p.enrich(ctx, kms)
	if err != nil {
		return nil, err
	}
	return p.submit(ctx, prep, kv, complete)
}

// prepare fetches and validates one item. Its error means the whole
// batch must be retried.
func (p *Pipeline) prepare(ctx context.Context, it Item) (prepared, error) {
	km := it.Killmail
	if km == nil {
		var err error
		km, err = p.fetch(ctx, it)
		if err != nil {
			if errors.Is(err, esi.ErrNotFound) || errors.Is(err, store.ErrInvalid) || errors.Is(err, ErrGarbage) {
				return prepared{rejected: err}, nil
			}
			return prepared{}, err
		}
	}
	if km.Hash == "" {
		km.Hash = it.Hash
	}
	if km.ZKB == nil {
		km.ZKB = it.ZKB
	}
	km.Normalize()
	if err := km.Validate(p.cfg.Now()); err != nil {
		return prepared{rejected: fmt.Errorf("ingest: killmail %d: %w", km.KillmailID, err)}, nil
	}
	return prepared{km: km}, nil
}

// fetch brings a missing body from ESI.
func (p *Pipeline) fetch(ctx context.Context, it Item) (*store.Killmail, error) {
	if !validHash(it.Hash) {
		p.m.fetches.WithLabelValues("rejected").Inc()
		return nil, garbage(ReasonBadHash, fmt.Sprintf("killmail %d: no usable hash to fetch it by", it.KillmailID))
	}
	fctx, cancel := context.WithTimeout(ctx, p.cfg.FetchTimeout)
	defer cancel()
	km, err := p.bodies.Killmail(fctx, it.KillmailID, it.Hash)
	switch {
	case err == nil && km.KillmailID != it.KillmailID:
		err = garbage(ReasonIDMismatch, fmt.Sprintf("asked ESI for %d, got %d", it.KillmailID, km.KillmailID))
	case errors.Is(err, esi.ErrNotFound) || errors.Is(err, store.ErrInvalid):
		err = fmt.Errorf("ingest: killmail %d/%s refused by ESI: %w", it.KillmailID, it.Hash, err)
	case err != nil:
		p.m.fetches.WithLabelValues("failed").Inc()
		return nil, fmt.Errorf("ingest: fetch killmail %d from ESI: %w", it.KillmailID, err)
	}
	if err != nil {
		p.m.fetches.WithLabelValues("rejected").Inc()
		return nil, err
	}
	p.m.fetches.WithLabelValues("ok").Inc()
	return km, nil
}

// enrich adds names to kms within EnrichTimeout and reports whether it
// got them all. Only the caller's ctx ending is an error.
func (p *Pipeline) enrich(ctx context.Context, kms []*store.Killmail) (bool, error) {
	if len(kms) == 0 {
		return true, nil
	}
	ectx, cancel := context.WithTimeout(ctx, p.cfg.EnrichTimeout)
	defer cancel()
	err := p.names.EnrichMany(ectx, kms)
	if err == nil {
		p.m.enrich.WithLabelValues("complete").Add(float64(len(kms)))
		return true, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	p.m.enrich.WithLabelValues("incomplete").Add(float64(len(kms)))
	p.log.WarnContext(ctx, "enrichment incomplete; storing without some names",
		"killmails", len(kms), "first_killmail_id", kms[0].KillmailID, "err", err)
	return false, nil
}

// submit queues the prepared killmails with kv (and their marks when
// enrichment was incomplete); Submitted.Wait maps the results back to the
// items.
func (p *Pipeline) submit(ctx context.Context, prep []prepared, kv map[string][]byte, complete bool) (*Submitted, error) {
	batch := store.Batch{KV: make(map[string][]byte, len(kv)), Quiet: p.cfg.Quiet}
	for k, v := range kv {
		batch.KV[k] = v
	}
	sub := &Submitted{prep: prep}
	for i, pr := range prep {
		if pr.km == nil {
			continue
		}
		sub.at = append(sub.at, i)
		batch.Killmails = append(batch.Killmails, pr.km)
		if !complete {
			batch.KV[unenrichedKey(pr.km.KillmailID)] = mark{Since: p.cfg.Now()}.encode()
		}
	}
	if len(batch.Killmails) > 0 || len(batch.KV) > 0 {
		var err error
		if sub.pending, err = p.km.Submit(ctx, batch); err != nil {
			return nil, err
		}
	}
	return sub, nil
}
