package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// maxConsecutiveTimeouts is the original's threshold of upstream timeouts
// in a row past which /health reports unhealthy.
const maxConsecutiveTimeouts = 3

// health serves /health (API.md §2.1): 200 when the store answers, no
// circuit is open and upstream is not timing out, 503 otherwise.
func (s *Server) health(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	feed, es := s.feedState(), s.esiState()
	if err := s.probeStore(r.Context()); err != nil {
		// The original's shape when the check itself fails.
		writeErrorMap(w, http.StatusServiceUnavailable, errorMap{
			Domain: "system", Type: "health_check_failed", Message: "Health check failed",
			Details: map[string]any{"reason": err.Error(), "timestamp": nowStamp()},
		})
		return
	}
	feedCircuit := feedBreaker(feed)
	healthy := feedCircuit.State != esi.StateOpen && es.Breaker.State != esi.StateOpen &&
		es.ConsecutiveTimeouts < maxConsecutiveTimeouts
	status, code := "ok", http.StatusOK
	if !healthy {
		status, code = "degraded", http.StatusServiceUnavailable
	}
	hs := s.hub.Stats()
	writeJSON(w, code, map[string]any{
		"healthy": healthy,
		"status":  status,
		"details": map[string]any{
			"cache": map[string]any{
				"size": es.CacheEntries, "memory_bytes": 0, "hit_rate": es.HitRate,
				"namespace_stats": map[string]any{},
			},
			"application":   s.applicationDetails(),
			"subscriptions": subscriptionDetails(hs),
			"store":         s.storeDetails(nil),
			"feed":          feedDetails(feed),
		},
		"timestamp":       nowStamp(),
		"circuit_breaker": breakerJSON(feedCircuit),
		"connection_monitor": map[string]any{
			"consecutive_timeouts":     es.ConsecutiveTimeouts,
			"max_consecutive_timeouts": maxConsecutiveTimeouts,
			"esi_circuit_breaker":      breakerJSON(es.Breaker),
			"esi_error_budget":         es.ErrorBudgetRemaining,
		},
	})
}

func (s *Server) feedState() ingest.State {
	if s.deps.Feed == nil {
		return ingest.None{}.State()
	}
	return s.deps.Feed.State()
}

func (s *Server) esiState() esi.Stats {
	if s.deps.ESI == nil {
		return esi.Stats{ErrorBudgetRemaining: -1, Breaker: esi.BreakerStats{State: esi.StateClosed}}
	}
	return s.deps.ESI.Stats()
}

// probeStore checks that the store answers a read. A store that panics
// (Pebble does once closed) fails the check instead of the request.
func (s *Server) probeStore(ctx context.Context) (err error) {
	if s.draining.Load() {
		return errShuttingDown
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("server: store probe: %v", v)
		}
	}()
	_, err = s.deps.Store.GetKV(ctx, "server/probe")
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}

// errShuttingDown fails readiness once graceful shutdown has begun.
var errShuttingDown = errors.New("server: shutting down")

func (s *Server) applicationDetails() map[string]any {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return map[string]any{
		"memory_mb":      mib(ms.Sys),
		"process_count":  runtime.NumGoroutine(),
		"uptime_seconds": int64(time.Since(s.started).Seconds()),
		"version":        s.cfg.Version,
	}
}

func (s *Server) storeDetails(probe error) map[string]any {
	st := s.deps.Store.Stats()
	d := map[string]any{"killmails": st.Killmails, "head_offset": st.Head, "epoch": st.Epoch, "ok": probe == nil}
	if probe != nil {
		d["error"] = probe.Error()
	}
	return d
}

func subscriptionDetails(hs HubStats) map[string]any {
	return map[string]any{
		"character_subscriptions": map[string]any{"count": hs.Subscriptions, "characters": hs.Characters},
		"system_subscriptions":    map[string]any{"count": hs.Subscriptions, "systems": hs.Systems},
	}
}

func feedDetails(f ingest.State) map[string]any {
	d := map[string]any{
		"source": f.Source, "state": f.State, "last_sequence": f.LastSequence,
		"upstream_sequence": f.UpstreamSequence, "lag_sequences": f.LagSequences,
		"lag_seconds": f.Lag.Seconds(), "consecutive_errors": f.ConsecutiveErrors,
		"killmails": f.Killmails, "last_error": nil,
	}
	if f.LastError != "" {
		d["last_error"] = f.LastError
		d["last_error_at"] = f.LastErrorAt.UTC().Format(time.RFC3339)
	}
	return d
}

// breakerJSON prints a breaker with the original's circuit_breaker keys.
func breakerJSON(b esi.BreakerStats) map[string]any {
	var opened any
	if !b.OpenedAt.IsZero() {
		opened = b.OpenedAt.UnixMilli()
	}
	updated := b.ChangedAt
	if updated.IsZero() {
		updated = time.Now()
	}
	state := b.State
	if state == "" {
		state = esi.StateClosed
	}
	return map[string]any{
		"circuit_state":            state,
		"consecutive_errors":       b.ConsecutiveFailures,
		"max_consecutive_errors":   b.Threshold,
		"circuit_opened_at":        opened,
		"circuit_reset_timeout_ms": b.Cooldown.Milliseconds(),
		"last_updated":             updated.UnixMilli(),
	}
}

func mib(b uint64) float64 { return float64(b*10/(1<<20)) / 10 }

// healthz says the process is alive.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "alive", "timestamp": nowStamp()})
}

// readyz says whether the server should get traffic: the store answers,
// the server is not shutting down and the feed has not failed.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	feed := s.feedState()
	storeErr := s.probeStore(r.Context())
	ready := storeErr == nil && feed.State != ingest.StateStopped
	storeCheck := "ok"
	if storeErr != nil {
		storeCheck = storeErr.Error()
	}
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]any{
		"ready":     ready,
		"checks":    map[string]any{"store": storeCheck, "feed": feedDetails(feed)},
		"timestamp": nowStamp(),
	})
}

// status serves /status (API.md §2.2).
func (s *Server) status(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	hs, feed, es := s.hub.Stats(), s.feedState(), s.esiState()
	st := s.deps.Store.Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	uptime := time.Since(s.started)
	writeJSON(w, http.StatusOK, map[string]any{
		"metrics": map[string]any{
			"system":     s.applicationDetails(),
			"websocket":  map[string]any{"connections": hs.WebSocketConnections, "subscriptions": hs.Subscriptions},
			"processing": feedDetails(feed),
			"storage": map[string]any{"killmails": st.Killmails, "head_offset": st.Head,
				"trimmed_offset": st.Trimmed, "disk_bytes": st.DiskBytes, "epoch": st.Epoch},
			"api":          map[string]any{"requests_per_minute": s.http.perMin.sum(time.Now())},
			"sse":          map[string]any{"connections": hs.SSEConnections},
			"parser_stats": map[string]any{},
		},
		"summary": map[string]any{
			"api_requests_per_minute": s.http.perMin.sum(time.Now()),
			"active_subscriptions":    hs.Subscriptions,
			"killmails_stored":        st.Killmails,
			"cache_hit_rate":          es.HitRate,
			"memory_usage_mb":         mib(ms.Sys),
			"uptime_hours":            float64(int64(uptime.Hours()*100)) / 100,
			"processing_lag_seconds":  int64(feed.Lag.Seconds()),
			"active_preload_tasks":    0,
		},
		"timestamp": nowStamp(),
	})
}

// metricsJSON is the original's /metrics body (API.md §2.3).
func (s *Server) metricsJSON() map[string]any {
	es, hs := s.esiState(), s.hub.Stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return map[string]any{
		"timestamp": nowStamp(),
		"components": map[string]any{
			"cache": map[string]any{
				"size": es.CacheEntries, "memory_bytes": 0,
				"operations": map[string]any{"hits": es.CacheHits, "misses": es.CacheMisses, "writes": 0, "deletes": 0},
			},
			"application": map[string]any{
				"memory":     map[string]any{"total_mb": mib(ms.Sys), "processes_mb": mib(ms.HeapAlloc), "ets_mb": 0},
				"processes":  map[string]any{"count": runtime.NumGoroutine(), "limit": 0},
				"schedulers": map[string]any{"online": runtime.GOMAXPROCS(0), "available": runtime.NumCPU()},
				"rate_limiter": map[string]any{
					"esi_error_budget_remaining": es.ErrorBudgetRemaining,
					"esi_circuit_state":          es.Breaker.State,
				},
			},
			"subscriptions": subscriptionDetails(hs),
			"store":         s.storeDetails(nil),
		},
	}
}
