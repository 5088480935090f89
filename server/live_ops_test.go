package server

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLiveShutdown: on shutdown every WebSocket gets a 1001 close frame
// and every SSE stream a final event naming where to resume.
func TestLiveShutdown(t *testing.T) {
	e := newLiveEnv(t, "", "")
	ws := dialWS(t, e.addr, "2.0.0")
	status, _ := ws.call(lobbyTopic, evJoin, map[string]any{})
	require.Equal(t, "ok", status)
	std := openSSE(t, e.httpURL("/api/v1/kills/stream"))
	enh := openSSE(t, e.httpURL("/api/v1/kills/stream/enhanced"))
	assert.Equal(t, "2000", std.next().retry)
	assert.Equal(t, "connected", enh.next().event)

	go e.stop()
	_, err := ws.next(10 * time.Second)
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseGoingAway, ce.Code)
	assert.Equal(t, "server shutting down", ce.Text)
	for _, r := range []*sseReader{std, enh} {
		ev := r.next()
		assert.Equal(t, "error", ev.event)
		assert.Equal(t, `"server_shutdown"`, string(mustKey(t, ev.data, "type")))
		assert.Contains(t, string(mustKey(t, ev.data, "message")), e.st.Epoch()+"-0")
	}
}

// TestLiveMetrics: the live figures reach /metrics and /websocket/status.
func TestLiveMetrics(t *testing.T) {
	e := newLiveEnv(t, "", "")
	kms := liveFixtures(t)
	ws := dialWS(t, e.addr, "2.0.0")
	status, _ := ws.call(lobbyTopic, evJoin, map[string]any{"systems": []int{30000142, 30000144}, "character_ids": []int64{95465499}})
	require.Equal(t, "ok", status)
	sse := openSSE(t, e.httpURL("/api/v1/kills/stream?system_ids=30000142"))
	sse.next()
	require.Eventually(t, func() bool { return e.srv.hub.Stats().Subscriptions == 2 }, 5*time.Second, time.Millisecond)
	e.add(killIn(kms[0], 980001, 30000142, time.Now()))
	ws.event("killmail_update")
	sse.next()

	code, st := getJSON(t, e.httpURL("/websocket/status"))
	assert.Equal(t, http.StatusOK, code)
	assert.EqualValues(t, 1, st["active_connections"])
	assert.EqualValues(t, 2, st["active_subscriptions"])

	req, _ := http.NewRequest(http.MethodGet, e.httpURL("/metrics"), nil)
	req.Header.Set("Accept", "text/plain")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	text := string(body)
	for _, want := range []string{
		`wanderer_kills_live_connections{kind="websocket"} 1`,
		`wanderer_kills_live_connections{kind="sse"} 1`,
		`wanderer_kills_live_subscriptions 2`,
		`wanderer_kills_live_subscribed_ids{kind="system"} 2`,
		`wanderer_kills_live_subscribed_ids{kind="character"} 1`,
		`wanderer_kills_live_messages_sent_total{transport="sse"}`,
		`wanderer_kills_live_messages_sent_total{transport="websocket"}`,
		`wanderer_kills_live_connections_opened_total{transport="websocket"} 1`,
		`wanderer_kills_live_queue_bytes`,
		`wanderer_kills_live_tail_offset 1`,
	} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, `live_slow_consumer_disconnects_total{transport="websocket"} 1`)

	code, stats := getJSON(t, e.httpURL("/api/v1/kills/stream/stats"))
	assert.Equal(t, http.StatusOK, code)
	assert.EqualValues(t, 1, stats["active_connections"])
	assert.Equal(t, e.st.Epoch(), stats["epoch"])
}

// TestHubSubscribe: the callback API webhooks build on gets each matching
// killmail once, in log order, with its offset, until cancelled; an empty
// filter matches everything.
func TestHubSubscribe(t *testing.T) {
	e := newLiveEnv(t, "", "")
	kms := liveFixtures(t)
	var mu sync.Mutex
	var byFilter, all []int64
	cancel := e.srv.hub.Subscribe(Filter{Systems: []int64{30000142}, MinValue: 2e6}, func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		byFilter = append(byFilter, ev.Killmail.KillmailID)
		assert.NotZero(t, ev.Offset)
		assert.True(t, strings.Contains(string(ev.JSON), `"killmail_id"`))
	})
	cancelAll := e.srv.hub.Subscribe(Filter{}, func(ev Event) {
		mu.Lock()
		defer mu.Unlock()
		all = append(all, ev.Killmail.KillmailID)
	})
	defer cancelAll()
	now := time.Now()
	e.add(killIn(kms[0], 1, 30000142, now), killIn(kms[2], 2, 30000142, now), killIn(kms[3], 3, 30000144, now))
	e.settle()
	cancel()
	cancel()
	e.add(killIn(kms[4], 4, 30000142, now))
	e.settle()
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []int64{2}, byFilter, "1 is below min_value (1e6), 3 is elsewhere, 4 came after cancel")
	assert.Equal(t, []int64{1, 2, 3, 4}, all)
}
