package esi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jellydator/ttlcache/v3"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"
)

// Client calls ESI politely and caches what it learns. Build it with New;
// it is safe for concurrent use. Run does its background work (dropping
// expired cache entries, name persistence); calls work without Run, but
// after Run has returned they fail with ErrClosed.
type Client struct {
	hc      *http.Client
	cfg     Config
	log     *slog.Logger
	limiter *rate.Limiter
	gate    *gate
	breaker *breaker
	metrics *metrics
	// timeouts counts timeouts in a row, for /health.
	timeouts atomic.Int64

	names     *ttlcache.Cache[int64, Name] // an empty Name.Name marks an id ESI does not know
	entities  *ttlcache.Cache[int64, Entity]
	systems   *ttlcache.Cache[int64, System]
	killmails *ttlcache.Cache[string, *RawKillmail]
	snap      *snapshot // names and entities again, for the enrichment hot path

	sf          singleflight.Group
	flightMu    sync.Mutex
	nameFlights map[int64]*nameFlight

	// life ends when Run returns; detached lookups (flights) end with it.
	life     context.Context
	stopLife context.CancelFunc
	lifeMu   sync.Mutex
	closed   bool
	flights  sync.WaitGroup

	loadSem chan struct{} // held while persisted names load
	loaded  atomic.Bool
	dirtyMu sync.Mutex
	dirty   map[int64]struct{}
}

// Name is what POST /universe/names/ says about an id. Category is one
// of alliance, character, constellation, corporation, inventory_type,
// region, solar_system, station, faction.
type Name struct {
	ID       int64  `json:"id"`
	Name     string `json:"name"`
	Category string `json:"category"`
}

// Entity is a corporation or an alliance: its name and ticker.
type Entity struct {
	ID     int64
	Name   string
	Ticker string
}

// System is what GET /universe/systems/{id}/ says about a solar system.
type System struct {
	ID              int64   `json:"system_id"`
	Name            string  `json:"name"`
	ConstellationID int64   `json:"constellation_id"`
	SecurityStatus  float64 `json:"security_status"`
	SecurityClass   string  `json:"security_class"`
}

// New builds a Client. hc nil means a plain http.Client (every call gets
// Config.Timeout anyway); log nil discards logs. Metrics that cannot be
// registered are logged, not fatal.
func New(hc *http.Client, cfg Config, log *slog.Logger) *Client {
	cfg.defaults()
	if hc == nil {
		hc = &http.Client{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "esi")
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		log.Warn("registering metrics", "err", err)
	}
	c := &Client{
		hc:          hc,
		cfg:         cfg,
		log:         log,
		limiter:     rate.NewLimiter(rate.Limit(cfg.RatePerSecond), cfg.Burst),
		gate:        newGate(cfg.ErrorBudgetFloor, time.Now),
		metrics:     m,
		names:       newCache[int64, Name](),
		entities:    newCache[int64, Entity](),
		systems:     newCache[int64, System](),
		killmails:   newCache[string, *RawKillmail](),
		snap:        newSnapshot(),
		nameFlights: map[int64]*nameFlight{},
		loadSem:     make(chan struct{}, 1),
		dirty:       map[int64]struct{}{},
	}
	c.breaker = newBreaker(cfg.BreakerFailures, cfg.BreakerCooldown, time.Now, m.breakerState)
	c.life, c.stopLife = context.WithCancel(context.Background())
	return c
}

func newCache[K comparable, V any]() *ttlcache.Cache[K, V] {
	return ttlcache.New(ttlcache.WithDisableTouchOnHit[K, V]())
}

// Run loads the persisted names, drops expired cache entries (they leave
// memory within a minute) and writes newly
// learned names to Config.NameStore every FlushInterval. It blocks until
// ctx ends, then stops the lookups still in flight, writes the last names
// and returns nil. Call it once.
func (c *Client) Run(ctx context.Context) error {
	if _, err := c.LoadNames(ctx); err != nil && ctx.Err() == nil {
		c.log.ErrorContext(ctx, "loading persisted names", "err", err)
	}
	// The caches' expired entries are dropped here each minute rather than
	// by ttlcache's own janitors (Start/Stop): a Stop that comes before its
	// Start goroutine has begun is lost, and a Run cancelled at once (serve
	// failing to listen) then waited for that janitor forever.
	flush := time.NewTicker(c.cfg.FlushInterval)
	defer flush.Stop()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-flush.C:
			c.flushLogged(ctx)
		case now := <-prune.C:
			c.snap.prune(now)
			c.names.DeleteExpired()
			c.entities.DeleteExpired()
			c.systems.DeleteExpired()
			c.killmails.DeleteExpired()
		}
	}
	c.close()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	c.flushLogged(fctx)
	return nil
}

// close refuses new flights, cancels those in flight and waits for them.
func (c *Client) close() {
	c.lifeMu.Lock()
	c.closed = true
	c.lifeMu.Unlock()
	c.stopLife()
	c.flights.Wait()
}

// flightCtx makes the context of a lookup that many callers share: it
// keeps ctx's values but not its cancellation (one caller leaving must
// not fail the others), is bounded in time and ends when the client
// stops. done must be called when the lookup ends.
func (c *Client) flightCtx(ctx context.Context) (fctx context.Context, done func(), err error) {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.closed {
		return nil, nil, ErrClosed
	}
	c.flights.Add(1)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.flightTimeout())
	stop := context.AfterFunc(c.life, cancel)
	return fctx, func() { stop(); cancel(); c.flights.Done() }, nil
}

// flightTimeout bounds a shared lookup: every attempt, every backoff and
// one long hold.
func (c *Client) flightTimeout() time.Duration {
	n := time.Duration(c.cfg.Retries + 1)
	return n*c.cfg.Timeout + (1<<n)*c.cfg.RetryBackoff + maxHold
}

// coalesce runs fn once for all concurrent callers with the same key, on
// a flight context; each caller waits for the result or its own ctx.
func coalesce[T any](ctx context.Context, c *Client, key string, fn func(context.Context) (T, error)) (T, error) {
	ch := c.sf.DoChan(key, func() (any, error) {
		fctx, done, err := c.flightCtx(ctx)
		if err != nil {
			return nil, err
		}
		defer done()
		return fn(fctx)
	})
	var zero T
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Stats is a snapshot of the client for /health, /status and dashboards.
type Stats struct {
	// CacheEntries is the number of names, entities and systems cached.
	CacheEntries int
	// CacheHits and CacheMisses count cache lookups since start.
	CacheHits, CacheMisses uint64
	// HitRate is CacheHits over lookups; 0 before any.
	HitRate float64
	// ErrorBudgetRemaining is the last X-ESI-Error-Limit-Remain seen; -1
	// before any.
	ErrorBudgetRemaining int
	// ErrorBudgetReset is when that budget resets; zero if unknown.
	ErrorBudgetReset time.Time
	// HeldUntil is when the current hold (error limit, 420, 429) ends;
	// in the past when none is in force.
	HeldUntil time.Time
	// ConsecutiveTimeouts counts calls in a row that timed out.
	ConsecutiveTimeouts int
	// Breaker is the circuit breaker's state.
	Breaker BreakerStats
}

// Stats returns the client's figures. It is cheap and safe for
// concurrent use.
func (c *Client) Stats() Stats {
	s := Stats{
		CacheEntries:        c.names.Len() + c.entities.Len() + c.systems.Len(),
		CacheHits:           c.metrics.hits.Load(),
		CacheMisses:         c.metrics.misses.Load(),
		ConsecutiveTimeouts: int(c.timeouts.Load()),
		Breaker:             c.breaker.stats(),
	}
	if total := s.CacheHits + s.CacheMisses; total > 0 {
		s.HitRate = float64(s.CacheHits) / float64(total)
	}
	s.ErrorBudgetRemaining, s.ErrorBudgetReset, s.HeldUntil = c.gate.budget()
	return s
}
