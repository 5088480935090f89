package server

import (
	"context"
	"errors"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// ErrUpstreamNotFound is what a Fetcher's error wraps when zKillboard or
// ESI do not know the killmail; /api/v1/killmail/:id then answers 404.
// ingest.ErrNotFound means the same.
var ErrUpstreamNotFound = errors.New("server: killmail not found upstream")

// Fetcher brings a killmail the store lacks: zKillboard for its hash, ESI
// for its body, enrichment, then the store. It returns the stored entry.
// When upstream does not know the id the error wraps ErrUpstreamNotFound
// or ingest.ErrNotFound. It must be safe for concurrent use.
type Fetcher interface {
	FetchKillmail(ctx context.Context, id int64) (store.Entry, error)
}

// FeedStatus reports the live ingest feed for /health, /readyz and
// /status. ingest.Source implements it.
type FeedStatus interface {
	State() ingest.State
}

// ESIStatus reports the ESI client for /health, /status and /metrics.
// *esi.Client implements it.
type ESIStatus interface {
	Stats() esi.Stats
}

// Feed circuit as /health shows it: the original opened the RedisQ
// circuit after 10 errors in a row; our feeds back off on their own, so
// the circuit is derived from their run of errors.
const feedBreakerThreshold = 10

// feedBreaker derives the original's circuit_breaker object from a feed
// state.
func feedBreaker(st ingest.State) esi.BreakerStats {
	b := esi.BreakerStats{State: esi.StateClosed, ConsecutiveFailures: st.ConsecutiveErrors, Threshold: feedBreakerThreshold}
	if st.ConsecutiveErrors >= feedBreakerThreshold {
		b.State, b.OpenedAt, b.ChangedAt = esi.StateOpen, st.LastErrorAt, st.LastErrorAt
	}
	return b
}

// isUpstreamNotFound reports whether a Fetcher error means "upstream does
// not know this killmail".
func isUpstreamNotFound(err error) bool {
	return errors.Is(err, ErrUpstreamNotFound) || errors.Is(err, ingest.ErrNotFound)
}
