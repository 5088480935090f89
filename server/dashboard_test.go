package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
)

// TestDashboardPage: / and /dashboard serve the page; / accepts only
// HTML (406 otherwise, API.md §1), /dashboard checks nothing.
func TestDashboardPage(t *testing.T) {
	s := openTestServer(t, Config{})
	cases := []struct {
		name, method, path, accept string
		want                       int
	}{
		{"root, no Accept", http.MethodGet, "/", "", http.StatusOK},
		{"root, browser Accept", http.MethodGet, "/", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", http.StatusOK},
		{"root, any", http.MethodGet, "/", "*/*", http.StatusOK},
		{"root, json", http.MethodGet, "/", "application/json", http.StatusNotAcceptable},
		{"root, text", http.MethodGet, "/", "text/plain", http.StatusNotAcceptable},
		{"root, HEAD", http.MethodHead, "/", "text/html", http.StatusOK},
		{"dashboard", http.MethodGet, "/dashboard", "", http.StatusOK},
		{"dashboard, json", http.MethodGet, "/dashboard", "application/json", http.StatusOK},
		{"dashboard/ is not it", http.MethodGet, "/dashboard/", "", http.StatusNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.accept != "" {
				req.Header.Set("Accept", tc.accept)
			}
			s.Handler().ServeHTTP(rec, req)
			require.Equal(t, tc.want, rec.Code, rec.Body.String())
			switch tc.want {
			case http.StatusOK:
				assert.Equal(t, "text/html; charset=utf-8", rec.Header().Get("Content-Type"))
				assert.Equal(t, "no-cache", rec.Header().Get("Cache-Control"))
				assert.NotEmpty(t, rec.Header().Get("ETag"))
				assert.Contains(t, rec.Body.String(), "<title>wanderer-kills")
			case http.StatusNotAcceptable:
				assert.JSONEq(t, `{"error":"Not Acceptable","status":"406"}`, rec.Body.String())
			}
		})
	}
}

// TestDashboardSelfContained: the page loads nothing from elsewhere, and
// its CSP admits exactly its inline style sheet and script.
func TestDashboardSelfContained(t *testing.T) {
	s := openTestServer(t, Config{})
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dashboard", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body, csp := rec.Body.String(), rec.Header().Get("Content-Security-Policy")

	assert.NotRegexp(t, `(?i)(src|href)\s*=\s*["']?(https?:)?//`, body, "no external resource")
	assert.NotContains(t, body, "{{", "template fully rendered")
	for _, el := range []string{"style", "script"} {
		m := regexp.MustCompile(`(?s)<`+el+`>(.*?)</`+el+`>`).FindAllStringSubmatch(body, -1)
		require.Len(t, m, 1, "one inline %s", el)
		sum := sha256.Sum256([]byte(m[0][1]))
		assert.Contains(t, csp, el+"-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'", "CSP admits the inline %s", el)
	}
	assert.Contains(t, csp, "default-src 'none'")
	assert.Contains(t, csp, "connect-src 'self'")
	// The figures' sources are what the script reads.
	for _, u := range []string{"/api/v1/stats/stream", "/api/v2/killmails?limit=", "/api/v1/kills/stream", "/api/v1/killmail/"} {
		assert.Contains(t, body, u)
	}

	t.Run("ETag revalidates", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header.Set("If-None-Match", rec.Header().Get("ETag"))
		again := httptest.NewRecorder()
		s.Handler().ServeHTTP(again, req)
		assert.Equal(t, http.StatusNotModified, again.Code)
		assert.Empty(t, again.Body.String())
	})
}

// statsEvent reads the next "stats" event of a stream.
func statsEvent(t *testing.T, r *sseReader) map[string]any {
	t.Helper()
	ev := r.until(func(ev sseEvent) bool { return ev.event == "stats" })
	var snap map[string]any
	require.NoError(t, json.Unmarshal([]byte(ev.data), &snap), ev.data)
	return snap
}

// TestStatsStream: retry first, then a "stats" snapshot of the real
// figures; killmails stored show in the count and the ingest rate; the
// stream ends with a server_shutdown event when the server stops.
func TestStatsStream(t *testing.T) {
	e := newLiveEnv(t, "", "")
	r := openSSE(t, e.httpURL("/api/v1/stats/stream"))
	assert.Equal(t, "text/event-stream; charset=utf-8", r.res.Header.Get("Content-Type"))
	assert.Equal(t, "no-cache", r.res.Header.Get("Cache-Control"))
	assert.Equal(t, "2000", r.next().retry, "retry first, as on the kill stream")
	snap := statsEvent(t, r)
	for _, k := range []string{"timestamp", "version", "started_at", "store", "ingest", "feed", "esi", "live", "webhooks", "http"} {
		assert.Contains(t, snap, k)
	}
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`, snap["timestamp"])
	assert.Equal(t, "test", snap["version"])
	st := snap["store"].(map[string]any)
	assert.EqualValues(t, 0, st["killmails"])
	assert.Greater(t, st["disk_bytes"], 0.0)
	assert.NotEmpty(t, st["epoch"])
	feed := snap["feed"].(map[string]any)
	assert.Equal(t, "none", feed["source"])
	assert.Equal(t, "off", feed["state"])
	assert.Nil(t, feed["last_sequence"], "no sequence: null, not 0")
	assert.Equal(t, "closed", feed["circuit_breaker"].(map[string]any)["state"])
	assert.Nil(t, snap["esi"], "no ESI client: null")
	assert.Equal(t, map[string]any{"subscriptions": 0.0, "active": 0.0, "disabled": 0.0, "failed_attempts": 0.0,
		"killmails_delivered": 0.0}, snap["webhooks"])
	live := snap["live"].(map[string]any)
	for _, k := range []string{"websocket_connections", "sse_connections", "subscriptions", "systems", "characters"} {
		assert.Contains(t, live, k)
	}
	assert.Contains(t, snap["http"], "requests_per_minute")
	ing := snap["ingest"].(map[string]any)
	series := ing["per_minute_series"].([]any)
	require.Len(t, series, rateSlots)
	assert.NotNil(t, series[rateSlots-1], "the current minute is sampled")
	assert.Nil(t, series[0], "an hour ago was not sampled: null")
	assert.EqualValues(t, 0, ing["per_minute"])

	kms := liveFixtures(t)[:3]
	e.add(kms...)
	for {
		snap = statsEvent(t, r)
		if snap["ingest"].(map[string]any)["per_minute"].(float64) == 3 {
			break
		}
	}
	assert.EqualValues(t, 3, snap["store"].(map[string]any)["killmails"])
	ing = snap["ingest"].(map[string]any)
	assert.EqualValues(t, 3, ing["last_hour"])

	e.stop()
	ev := r.until(func(ev sseEvent) bool { return ev.event == "error" })
	assert.Contains(t, ev.data, `"type":"server_shutdown"`)
	_, open := <-r.evs
	assert.False(t, open, "the stream ends after the shutdown event")
}

// TestStatsStreamWithoutSampler: a server that is not Serving (a bare
// Handler) has no ingest sampler, and says so with null.
func TestStatsStreamWithoutSampler(t *testing.T) {
	s := openTestServer(t, Config{})
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	r := openSSE(t, hs.URL+"/api/v1/stats/stream")
	snap := statsEvent(t, r)
	assert.Nil(t, snap["ingest"])
	r.res.Body.Close()
}

// TestStatsWebhookFigures: a webhook whose endpoint fails shows in the
// failed attempts.
func TestStatsWebhookFigures(t *testing.T) {
	var hits atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(hook.Close) // after the server (cleanups run last first)
	e := newLiveEnv(t, "", "", func(c *Config) {
		c.Webhooks.AllowPrivate, c.Webhooks.BatchWindow = true, 10*time.Millisecond
	})
	km := liveFixtures(t)[0]
	_, _, err := e.srv.webhooks.Create(context.Background(), WebhookRequest{
		SubscriberID: "dashboard-test", SystemIDs: []int64{km.SystemID}, CallbackURL: hook.URL})
	require.NoError(t, err)
	e.add(km)
	require.Eventually(t, func() bool {
		return e.srv.statsSnapshot(time.Now()).Webhooks.FailedAttempts >= 1
	}, 10*time.Second, 10*time.Millisecond)
	f := e.srv.statsSnapshot(time.Now()).Webhooks
	assert.Equal(t, 1, f.Subscriptions)
	assert.Equal(t, 1, f.Active)
	assert.Zero(t, f.Disabled)
	assert.Zero(t, f.KillmailsDelivered)
	assert.Positive(t, hits.Load())
}

func TestIngestRing(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 10, 0, 30, 0, time.UTC)
	var g ingestRing
	_, ok := g.figures(t0)
	require.False(t, ok, "nothing known before sampling")
	g.start(t0)
	g.add(t0, 2)
	g.add(t0.Add(20*time.Second), 3) // 10:00:50
	g.add(t0.Add(40*time.Second), 4) // 10:01:10
	g.add(t0.Add(40*time.Second), 0)

	cases := []struct {
		name      string
		at        time.Duration
		perMinute int64
		lastHour  int64
		known     int // non-null minutes at the end of the series
		lastTwo   [2]int64
	}{
		{"same second", 40 * time.Second, 9, 9, 2, [2]int64{5, 4}},
		{"a minute later", 85 * time.Second, 4, 9, 2, [2]int64{5, 4}},
		{"two minutes later", 100 * time.Second, 0, 9, 3, [2]int64{4, 0}},
		{"an hour later", time.Hour + 31*time.Second, 0, 0, rateSlots, [2]int64{0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := g.figures(t0.Add(tc.at))
			require.True(t, ok)
			assert.Equal(t, tc.perMinute, f.PerMinute)
			assert.Equal(t, tc.lastHour, f.LastHour)
			require.Len(t, f.Series, rateSlots)
			n := 0
			for _, v := range f.Series {
				if v != nil {
					n++
				}
			}
			assert.Equal(t, tc.known, n)
			assert.Equal(t, tc.lastTwo[0], *f.Series[rateSlots-2])
			assert.Equal(t, tc.lastTwo[1], *f.Series[rateSlots-1])
			assert.Equal(t, "2026-01-02T10:00:30Z", f.SamplingSince)
			assert.True(t, strings.HasSuffix(f.SeriesEnd, ":00Z"), f.SeriesEnd)
		})
	}
}

func TestSnapshotFigures(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	t.Run("feed", func(t *testing.T) {
		ff := feedFiguresOf(ingest.State{Source: "r2z2", State: ingest.StateRunning, LastSequence: 100,
			UpstreamSequence: 130, LagSequences: 30, Lag: 90 * time.Second, ConsecutiveErrors: 12,
			LastError: "boom", LastErrorAt: now, LastSuccess: now})
		b, err := json.Marshal(ff)
		require.NoError(t, err)
		assert.JSONEq(t, `{"source":"r2z2","state":"running","last_sequence":100,"upstream_sequence":130,
			"lag_sequences":30,"lag_seconds":90,"killmails":0,"consecutive_errors":12,"last_error":"boom",
			"last_success":"2026-01-02T10:00:00Z","circuit_breaker":{"state":"open","consecutive_errors":12,"threshold":10}}`, string(b))
		redisq := feedFiguresOf(ingest.State{Source: "redisq", State: ingest.StateCaughtUp})
		assert.Nil(t, redisq.LastSequence)
		assert.Nil(t, redisq.LagSequences)
		assert.Nil(t, redisq.LastSuccess)
	})
	t.Run("esi before any call", func(t *testing.T) {
		ef := esiFiguresOf(esi.Stats{ErrorBudgetRemaining: -1}, now)
		assert.Nil(t, ef.ErrorBudgetRemaining)
		assert.Nil(t, ef.CacheHitRate)
		assert.Nil(t, ef.HeldUntil)
		assert.Equal(t, "closed", ef.Circuit.State)
	})
	t.Run("esi held", func(t *testing.T) {
		ef := esiFiguresOf(esi.Stats{ErrorBudgetRemaining: 7, ErrorBudgetReset: now.Add(time.Minute),
			HeldUntil: now.Add(30 * time.Second), CacheHits: 3, CacheMisses: 1, HitRate: 0.75,
			Breaker: esi.BreakerStats{State: esi.StateHalfOpen, ConsecutiveFailures: 5, Threshold: 5}}, now)
		require.NotNil(t, ef.ErrorBudgetRemaining)
		assert.Equal(t, 7, *ef.ErrorBudgetRemaining)
		assert.Equal(t, "2026-01-02T10:00:30Z", *ef.HeldUntil)
		assert.InDelta(t, 0.75, *ef.CacheHitRate, 1e-9)
		assert.Equal(t, circuitState{State: "half_open", ConsecutiveErrors: 5, Threshold: 5}, ef.Circuit)
	})
}
