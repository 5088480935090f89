package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/server"
)

// fakeFeed and fakeESI stand in for the running feed and ESI client: the
// server reads nothing from them but a snapshot.
type fakeFeed struct{ st ingest.State }

func (f fakeFeed) State() ingest.State { return f.st }

type fakeESI struct{ st esi.Stats }

func (f fakeESI) Stats() esi.Stats { return f.st }

// Upstream api_smoke_test.exs and health_controller_test.exs (API.md §9
// items 1 and 2).
func TestPing(t *testing.T) {
	e := newAPIEnv(t)
	for _, accept := range []string{"", "*/*", "text/plain", "application/json", "text/*"} {
		r := e.get("/ping", "Accept", accept)
		require.Equal(t, http.StatusOK, r.status)
		assert.Equal(t, "pong", string(r.body))
		assert.Equal(t, "text/plain; charset=utf-8", r.header.Get("Content-Type"))
		assert.NotEmpty(t, r.header.Get("X-Request-Id"))
	}
	r := e.do(http.MethodHead, "/ping", nil)
	assert.Equal(t, http.StatusOK, r.status)
	assert.Empty(t, r.body)
}

func TestHealth(t *testing.T) {
	e := newAPIEnv(t, func(_ *server.Config, d *server.Deps) {
		d.Feed = fakeFeed{ingest.State{Source: "r2z2", State: ingest.StateRunning, LastSequence: 900001}}
		d.ESI = fakeESI{esi.Stats{CacheHits: 3, CacheMisses: 1, HitRate: 0.75, ErrorBudgetRemaining: 100,
			Breaker: esi.BreakerStats{State: esi.StateClosed, Threshold: 5, Cooldown: time.Minute}}}
	})
	for _, path := range []string{"/health", "/api/health"} {
		r := e.get(path)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		m := r.object(t)
		for _, k := range []string{"healthy", "status", "details", "timestamp", "circuit_breaker", "connection_monitor"} {
			assert.Contains(t, m, k)
		}
		assert.Equal(t, true, m["healthy"])
		assert.Equal(t, "ok", m["status"])
		details := m["details"].(map[string]any)
		for _, k := range []string{"cache", "application", "subscriptions"} {
			assert.Contains(t, details, k)
		}
		assert.Equal(t, json.Number("0.75"), details["cache"].(map[string]any)["hit_rate"])
		cb := m["circuit_breaker"].(map[string]any)
		for _, k := range []string{"circuit_state", "consecutive_errors", "max_consecutive_errors", "circuit_opened_at",
			"circuit_reset_timeout_ms", "last_updated"} {
			assert.Contains(t, cb, k)
		}
		assert.Equal(t, "closed", cb["circuit_state"])
	}
}

func TestHealthDegraded(t *testing.T) {
	cases := []struct {
		name string
		feed ingest.State
		esi  esi.Stats
	}{
		{"feed failing", ingest.State{Source: "r2z2", State: ingest.StateBackoff, ConsecutiveErrors: 12,
			LastError: "boom", LastErrorAt: time.Now()}, esi.Stats{}},
		{"esi breaker open", ingest.State{Source: "r2z2"}, esi.Stats{Breaker: esi.BreakerStats{State: esi.StateOpen}}},
		{"esi timing out", ingest.State{Source: "r2z2"}, esi.Stats{ConsecutiveTimeouts: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newAPIEnv(t, func(_ *server.Config, d *server.Deps) {
				d.Feed, d.ESI = fakeFeed{tc.feed}, fakeESI{tc.esi}
			})
			r := e.get("/health")
			require.Equal(t, http.StatusServiceUnavailable, r.status)
			m := r.object(t)
			assert.Equal(t, false, m["healthy"])
			assert.Equal(t, "degraded", m["status"])
		})
	}
}

// TestHealthCheckFailure: when the check itself fails (here: the store
// is closed under the server) the body is the exact error map of §2.1,
// and the server keeps serving.
func TestHealthCheckFailure(t *testing.T) {
	e := newAPIEnv(t)
	require.NoError(t, e.st.Close())
	for _, path := range []string{"/health", "/api/health"} {
		r := e.get(path)
		require.Equal(t, http.StatusServiceUnavailable, r.status)
		m := r.object(t)
		require.Equal(t, []string{"error"}, keys(m))
		em := m["error"].(map[string]any)
		details := em["details"].(map[string]any)
		assert.NotEmpty(t, details["reason"])
		assert.NotEmpty(t, details["timestamp"])
		delete(em, "details")
		assert.Equal(t, map[string]any{"domain": "system", "type": "health_check_failed",
			"message": "Health check failed", "retryable": false}, em)
	}
	r := e.get("/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, r.status)
	assert.Equal(t, false, r.object(t)["ready"])
	assert.Equal(t, http.StatusOK, e.get("/healthz").status)
}

func TestReadyz(t *testing.T) {
	feed := &switchFeed{st: ingest.State{Source: "r2z2", State: ingest.StateRunning}}
	e := newAPIEnv(t, func(_ *server.Config, d *server.Deps) { d.Feed = feed })
	r := e.get("/readyz")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	m := r.object(t)
	assert.Equal(t, true, m["ready"])
	assert.Equal(t, "ok", m["checks"].(map[string]any)["store"])

	feed.set(ingest.StateStopped)
	r = e.get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	assert.Equal(t, false, r.object(t)["ready"])

	r = e.get("/healthz", "Accept", "text/plain")
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "alive", r.object(t)["status"])
}

// switchFeed is a feed whose state a test changes between requests.
type switchFeed struct {
	mu sync.Mutex
	st ingest.State
}

func (f *switchFeed) State() ingest.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *switchFeed) set(state string) {
	f.mu.Lock()
	f.st.State = state
	f.mu.Unlock()
}

func TestStatus(t *testing.T) {
	e := newAPIEnv(t)
	e.appendAll(apiFixtures(t)[:7]...)
	e.get("/ping")
	r := e.get("/status")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	m := r.object(t)
	for _, k := range []string{"metrics", "summary", "timestamp"} {
		assert.Contains(t, m, k)
	}
	summary := m["summary"].(map[string]any)
	for _, k := range []string{"api_requests_per_minute", "active_subscriptions", "killmails_stored", "cache_hit_rate",
		"memory_usage_mb", "uptime_hours", "processing_lag_seconds", "active_preload_tasks"} {
		assert.Contains(t, summary, k)
	}
	assert.Equal(t, json.Number("7"), summary["killmails_stored"])
	rpm, err := summary["api_requests_per_minute"].(json.Number).Int64()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, rpm, int64(1))
	metrics := m["metrics"].(map[string]any)
	for _, k := range []string{"system", "websocket", "processing", "storage", "api", "sse", "parser_stats"} {
		assert.Contains(t, metrics, k)
	}
}

func TestMetrics(t *testing.T) {
	e := newAPIEnv(t)
	e.appendAll(apiFixtures(t)[:3]...)
	e.get("/api/v1/kills/system/30000142")
	e.get("/api/v1/kills/system/30000144")
	e.get("/no/such/path")

	t.Run("prometheus by default", func(t *testing.T) {
		for _, accept := range []string{"", "text/plain", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"} {
			r := e.get("/metrics", "Accept", accept)
			require.Equal(t, http.StatusOK, r.status)
			body := string(r.body)
			assert.Contains(t, body, "wanderer_kills_store_killmails 3")
			assert.Contains(t, body, "wanderer_kills_store_head_offset 3")
			assert.Contains(t, body, "wanderer_kills_store_disk_bytes")
			assert.Contains(t, body, "wanderer_kills_store_recent_bytes")
			assert.Contains(t, body, `wanderer_kills_live_connections{kind="websocket"} 0`)
			assert.Contains(t, body, `wanderer_kills_http_requests_total{method="GET",route="/api/v1/kills/system/:system_id",status="200"} 2`)
			assert.Contains(t, body, `route="unmatched",status="404"`)
			assert.Contains(t, body, `wanderer_kills_http_request_duration_seconds_bucket{method="GET",route="/api/v1/kills/system/:system_id"`)
			assert.NotContains(t, body, "/no/such/path", "raw paths never become labels")
		}
	})
	t.Run("the original's JSON on request", func(t *testing.T) {
		for _, accept := range []string{"application/json", "application/json, text/plain;q=0.5"} {
			r := e.get("/metrics", "Accept", accept)
			require.Equal(t, http.StatusOK, r.status)
			assert.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
			m := r.object(t)
			assert.Contains(t, m, "timestamp")
			comps := m["components"].(map[string]any)
			for _, k := range []string{"cache", "application", "subscriptions"} {
				assert.Contains(t, comps, k)
			}
			app := comps["application"].(map[string]any)
			for _, k := range []string{"memory", "processes", "schedulers", "rate_limiter"} {
				assert.Contains(t, app, k)
			}
		}
	})
}

func TestWebSocketInfo(t *testing.T) {
	e := newAPIEnv(t)
	r := e.get("/websocket")
	require.Equal(t, http.StatusOK, r.status)
	m := r.object(t)
	host := strings.TrimPrefix(e.ts.URL, "http://")
	assert.Equal(t, "ws://"+host+"/socket", m["websocket_url"])
	assert.Equal(t, "Phoenix Channels", m["protocol"])
	assert.Equal(t, map[string]any{"killmails": "killmails:lobby"}, m["channels"])
	for _, k := range []string{"authentication", "limits", "documentation", "version"} {
		assert.Contains(t, m, k)
	}
	r = e.get("/websocket", "X-Forwarded-Proto", "https")
	assert.Equal(t, "wss://"+host+"/socket", r.object(t)["websocket_url"])

	r = e.get("/websocket/status")
	require.Equal(t, http.StatusOK, r.status)
	m = withoutTimestamps(t, r.object(t))
	assert.Equal(t, "operational", m["status"])
	for _, k := range []string{"active_connections", "active_subscriptions", "uptime_seconds"} {
		assert.Contains(t, m, k)
	}
}
