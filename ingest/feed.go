package ingest

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// feed is what R2Z2 and RedisQ share: the HTTP getter, where items go,
// the key-value store for their position, logs, metrics, pacing, the
// state others read, and the error backoff (owned by Run).
type feed struct {
	get  getter
	proc Processor
	kv   KV
	log  *slog.Logger
	m    *feedMetrics
	lim  *rate.Limiter
	st   *tracker
	bo   backoff
}

// feedParams are the settings a feed takes from its Config.
type feedParams struct {
	source                 string
	userAgent              string
	timeout                time.Duration
	maxBody                int64
	ratePerSecond          float64
	backoffMin, backoffMax time.Duration
	registerer             prometheus.Registerer
}

func newFeed(p feedParams, hc *http.Client, proc Processor, kv KV, log *slog.Logger) feed {
	if hc == nil {
		hc = http.DefaultClient
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return feed{
		get:  getter{hc: hc, userAgent: p.userAgent, timeout: p.timeout, maxBody: p.maxBody},
		proc: proc,
		kv:   kv,
		log:  log.With("component", "ingest", "source", p.source),
		m:    newFeedMetrics(p.registerer),
		lim:  rate.NewLimiter(rate.Limit(p.ratePerSecond), 1),
		st:   newTracker(p.source),
		bo:   backoff{min: p.backoffMin, max: p.backoffMax},
	}
}

// State returns a snapshot of the feed. It is safe for concurrent use.
func (f *feed) State() State { return f.st.snapshot() }
