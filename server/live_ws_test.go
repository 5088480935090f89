package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// serializers are the two wire formats real clients use (API.md §4.1):
// the Wanderer app speaks V2 arrays, the notifier V1 objects, and V1 is
// also what an absent vsn means.
var serializers = []struct{ name, vsn string }{
	{"v2 arrays", "2.0.0"},
	{"v1 objects", "1.0.0"},
	{"v1 by default", ""},
}

// TestWebSocketStreaming ports upstream's websocket_streaming_test (API.md
// §9 item 7) over both serializers: join with no payload, subscribe,
// receive the kill, unsubscribe, receive nothing more.
func TestWebSocketStreaming(t *testing.T) {
	for _, tc := range serializers {
		t.Run(tc.name, func(t *testing.T) {
			e := newLiveEnv(t, "", "")
			kms := liveFixtures(t)
			ws := dialWS(t, e.addr, tc.vsn)

			status, resp := ws.call(lobbyTopic, evJoin, nil)
			require.Equal(t, "ok", status, resp)
			assert.Equal(t, "connected", resp["status"])
			assert.Len(t, resp["subscription_id"], 22)
			assert.Equal(t, []any{}, resp["subscribed_systems"])

			status, resp = ws.call(lobbyTopic, "subscribe_systems", map[string]any{"systems": []int64{30000142}})
			require.Equal(t, "ok", status)
			assert.Equal(t, map[string]any{"subscribed_systems": []any{float64(30000142)}}, resp)

			now := time.Now()
			offs := e.add(killIn(kms[0], 900001, 30000142, now))
			up := ws.event("killmail_update")
			assert.Equal(t, lobbyTopic, up.Topic)
			p := up.object(t)
			assert.EqualValues(t, 30000142, p["system_id"])
			assert.Equal(t, false, p["preload"])
			assert.EqualValues(t, offs[0], p["offset"])
			assert.NotEmpty(t, p["timestamp"])
			assert.Equal(t, []int64{900001}, killIDsOf(t, up))
			count := ws.event("kill_count_update").object(t)
			assert.EqualValues(t, 30000142, count["system_id"])
			assert.EqualValues(t, 1, count["count"], "absolute stored count")

			status, resp = ws.call(lobbyTopic, "unsubscribe_systems", map[string]any{"systems": []int64{30000142}})
			require.Equal(t, "ok", status)
			assert.Equal(t, map[string]any{"subscribed_systems": []any{}}, resp)
			status, _ = ws.call(lobbyTopic, "subscribe_systems", map[string]any{"systems": []int64{30000144}})
			require.Equal(t, "ok", status)
			// The tail handles the log in order: the kill in 30000144 coming
			// first proves the one in 30000142 was not sent.
			e.add(killIn(kms[1], 900002, 30000142, now), killIn(kms[2], 900003, 30000144, now))
			up = ws.event("killmail_update")
			assert.Equal(t, []int64{900003}, killIDsOf(t, up))
		})
	}
}

// TestWebSocketTwoSockets: two sockets on one system both receive the
// kill (API.md §9 item 7).
func TestWebSocketTwoSockets(t *testing.T) {
	e := newLiveEnv(t, "", "")
	kms := liveFixtures(t)
	var clients []*wsClient
	for _, vsn := range []string{"2.0.0", "1.0.0"} {
		ws := dialWS(t, e.addr, vsn)
		status, _ := ws.call(lobbyTopic, evJoin, map[string]any{"systems": []int64{30000142}, "preload": false})
		require.Equal(t, "ok", status)
		clients = append(clients, ws)
	}
	e.add(killIn(kms[0], 900010, 30000142, time.Now()))
	for _, ws := range clients {
		assert.Equal(t, []int64{900010}, killIDsOf(t, ws.event("killmail_update")))
	}
}

// TestWebSocketOrRule: a kill reaches a channel when its system OR one of
// its characters is subscribed (API.md §11 item 3), exactly once even when
// both match (§11 item 2).
func TestWebSocketOrRule(t *testing.T) {
	e := newLiveEnv(t, "", "")
	kms := liveFixtures(t)
	victim := kms[0].Victim.CharacterID
	require.NotZero(t, victim)
	ws := dialWS(t, e.addr, "2.0.0")
	status, _ := ws.call(lobbyTopic, evJoin, map[string]any{
		"systems": []int64{30000142}, "character_ids": []int64{victim}, "preload": false,
	})
	require.Equal(t, "ok", status)
	now := time.Now()
	e.add(
		killIn(kms[0], 900021, 30000142, now), // both
		killIn(kms[0], 900022, 30002187, now), // character only
		killIn(kms[1], 900023, 30002187, now), // neither
		killIn(kms[1], 900024, 30000142, now), // system only
	)
	var got []int64
	for len(got) < 3 {
		got = append(got, killIDsOf(t, ws.event("killmail_update"))...)
	}
	assert.Equal(t, []int64{900021, 900022, 900024}, got)
	status, resp := ws.call(lobbyTopic, "get_status", map[string]any{})
	require.Equal(t, "ok", status)
	assert.Equal(t, []any{float64(30000142)}, resp["subscribed_systems"])
	assert.Equal(t, []any{float64(victim)}, resp["subscribed_characters"])
	assert.Contains(t, resp["user_id"], "_")
	assert.NotEmpty(t, resp["connected_at"])
}

// TestWebSocketValidation: bad ids are error replies with the upstream
// reasons, on join and on subscribe events, and never end the channel
// (API.md §4.2, §11 item 4).
func TestWebSocketValidation(t *testing.T) {
	tooMany := make([]int64, 10001)
	for i := range tooMany {
		tooMany[i] = int64(30000000 + i)
	}
	cases := []struct {
		name    string
		payload map[string]any
		reason  string
	}{
		{"too many systems", map[string]any{"systems": tooMany}, "[validation:too_many_systems] Too many systems (max: 10000)"},
		{"system out of range", map[string]any{"systems": []any{0}}, "[validation:invalid_system_ids] Invalid system IDs"},
		{"system above max", map[string]any{"systems": []any{50000001}}, "[validation:invalid_system_ids] Invalid system IDs"},
		{"system string", map[string]any{"systems": []any{"30000142"}}, "[validation:non_integer_system_ids] System IDs must be integers"},
		{"system float", map[string]any{"systems": []any{30000142.5}}, "[validation:non_integer_system_ids] System IDs must be integers"},
		{"character out of range", map[string]any{"character_ids": []any{123}}, "[validation:invalid_character_ids] Invalid character IDs"},
		{"character string", map[string]any{"character_ids": []any{"x"}}, "[validation:non_integer_character_ids] Character IDs must be integers"},
		{"bad since_offset", map[string]any{"since_offset": -1}, "[validation:invalid_since_offset] since_offset must be a non-negative integer"},
	}
	e := newLiveEnv(t, "", "")
	for _, vsn := range []string{"2.0.0", "1.0.0"} {
		ws := dialWS(t, e.addr, vsn)
		for _, tc := range cases {
			t.Run(vsn+"/join/"+tc.name, func(t *testing.T) {
				status, resp := ws.call(lobbyTopic, evJoin, tc.payload)
				assert.Equal(t, "error", status)
				assert.Equal(t, map[string]any{"reason": tc.reason}, resp)
			})
		}
		status, _ := ws.call(lobbyTopic, evJoin, map[string]any{"systems": []any{30000142, 30000142}})
		require.Equal(t, "ok", status)
		for _, tc := range cases[1:5] {
			t.Run(vsn+"/subscribe_systems/"+tc.name, func(t *testing.T) {
				status, resp := ws.call(lobbyTopic, "subscribe_systems", tc.payload)
				assert.Equal(t, "error", status)
				assert.Equal(t, map[string]any{"reason": tc.reason}, resp)
			})
		}
		t.Run(vsn+"/missing list", func(t *testing.T) {
			status, resp := ws.call(lobbyTopic, "subscribe_characters", map[string]any{"systems": []int{1}})
			assert.Equal(t, "error", status)
			assert.Equal(t, `[validation:invalid_payload] Payload must contain a "character_ids" list`, resp["reason"])
		})
		t.Run(vsn+"/unknown event", func(t *testing.T) {
			status, resp := ws.call(lobbyTopic, "update_subscriptions", map[string]any{"add_systems": []int{1}})
			assert.Equal(t, "error", status)
			assert.Equal(t, `[validation:unknown_event] Unknown event "update_subscriptions"`, resp["reason"])
		})
		t.Run(vsn+"/still joined", func(t *testing.T) {
			status, resp := ws.call(lobbyTopic, "get_status", nil)
			require.Equal(t, "ok", status)
			assert.Equal(t, []any{float64(30000142)}, resp["subscribed_systems"], "duplicates dropped")
			status, resp = ws.call(lobbyTopic, "subscribe_systems", map[string]any{"systems": []int{30000142}})
			assert.Equal(t, "ok", status)
			assert.Equal(t, "Already subscribed to all requested systems", resp["message"])
			status, resp = ws.call(lobbyTopic, "unsubscribe_characters", map[string]any{"character_ids": []int{95465499}})
			assert.Equal(t, "ok", status)
			assert.Equal(t, "Not subscribed to any of the requested characters", resp["message"])
		})
	}
}

// TestWebSocketProtocol: heartbeats, topics, leave and rejoin follow the
// Phoenix semantics of API.md §4.1.
func TestWebSocketProtocol(t *testing.T) {
	e := newLiveEnv(t, "", "")
	ws := dialWS(t, e.addr, "2.0.0")

	status, resp := ws.call("phoenix", evHeartbeat, map[string]any{})
	assert.Equal(t, "ok", status)
	assert.Empty(t, resp)

	status, resp = ws.call("killmails:other", evJoin, map[string]any{})
	assert.Equal(t, "error", status)
	assert.Equal(t, "join crashed", resp["reason"])
	status, resp = ws.call("rooms:lobby", evJoin, map[string]any{})
	assert.Equal(t, "error", status)
	assert.Equal(t, "unmatched topic", resp["reason"])
	status, resp = ws.call(lobbyTopic, "get_status", map[string]any{})
	assert.Equal(t, "error", status, "a push before the join")
	assert.Equal(t, "unmatched topic", resp["reason"])

	status, first := ws.call(lobbyTopic, evJoin, map[string]any{"systems": []int{30000142}, "preload": false})
	require.Equal(t, "ok", status)
	firstRef := ws.join
	// A second join of the same topic closes the first channel.
	ref := ws.send(lobbyTopic, evJoin, map[string]any{"systems": []int{30000144}, "preload": false})
	closed := ws.event(evClose)
	assert.JSONEq(t, `"`+firstRef+`"`, string(closed.JoinRef))
	status, second := ws.reply(ref)
	require.Equal(t, "ok", status)
	assert.NotEqual(t, first["subscription_id"], second["subscription_id"])
	assert.Equal(t, []any{float64(30000144)}, second["subscribed_systems"])

	ref = ws.send(lobbyTopic, evLeave, map[string]any{})
	status, _ = ws.reply(ref)
	assert.Equal(t, "ok", status)
	closed = ws.event(evClose)
	assert.Equal(t, lobbyTopic, closed.Topic)
	status, resp = ws.call(lobbyTopic, "get_status", map[string]any{})
	assert.Equal(t, "error", status, "left")
	assert.Equal(t, "unmatched topic", resp["reason"])
}

// TestWebSocketPreload: a join with systems gets, per system, the newest
// stored kills of the window as killmail_update "preload": true, framed by
// preload_status and preload_complete; batch delivery when asked.
func TestWebSocketPreload(t *testing.T) {
	e := newLiveEnv(t, "", "")
	kms := liveFixtures(t)
	now := time.Now()
	var seed []*store.Killmail
	for i := range 7 {
		seed = append(seed, killIn(kms[i], int64(910000+i), 30000142, now.Add(-time.Duration(i)*time.Hour)))
	}
	seed = append(seed, killIn(kms[8], 910100, 30000142, now.Add(-30*time.Hour))) // outside 24 h
	seed = append(seed, killIn(kms[9], 910200, 30000144, now))
	e.add(seed...)
	e.settle()

	t.Run("per system", func(t *testing.T) {
		ws := dialWS(t, e.addr, "2.0.0")
		status, _ := ws.call(lobbyTopic, evJoin, map[string]any{"systems": []int{30000142, 30000144, 30000145}})
		require.Equal(t, "ok", status)
		st := ws.event("preload_status").object(t)
		assert.EqualValues(t, 3, st["total_systems"])
		up := ws.event("killmail_update")
		assert.Equal(t, true, up.object(t)["preload"])
		assert.EqualValues(t, 30000142, up.object(t)["system_id"])
		assert.Equal(t, []int64{910000, 910001, 910002, 910003, 910004}, killIDsOf(t, up), "5 newest first")
		up = ws.event("killmail_update")
		assert.Equal(t, []int64{910200}, killIDsOf(t, up))
		done := ws.event("preload_complete").object(t)
		assert.EqualValues(t, 6, done["total_kills"])
		assert.EqualValues(t, 3, done["systems_processed"])
	})
	t.Run("batches", func(t *testing.T) {
		ws := dialWS(t, e.addr, "1.0.0")
		status, _ := ws.call(lobbyTopic, evJoin, map[string]any{"systems": []int{30000142},
			"preload": map[string]any{"enabled": true, "limit_per_system": 20, "since_hours": 48, "delivery_batch_size": 5}})
		require.Equal(t, "ok", status)
		var sizes []float64
		for len(sizes) < 2 {
			b := ws.event("preload_batch").object(t)
			sizes = append(sizes, b["batch_size"].(float64))
			assert.Len(t, b["kills"], int(b["batch_size"].(float64)))
		}
		assert.Equal(t, []float64{5, 3}, sizes)
		assert.EqualValues(t, 8, ws.event("preload_complete").object(t)["total_kills"])
	})
	t.Run("disabled", func(t *testing.T) {
		ws := dialWS(t, e.addr, "2.0.0")
		status, _ := ws.call(lobbyTopic, evJoin, map[string]any{"systems": []int{30000142}, "preload": map[string]any{"enabled": false}})
		require.Equal(t, "ok", status)
		status, _ = ws.call(lobbyTopic, "subscribe_systems", map[string]any{"systems": []int{30000145}})
		require.Equal(t, "ok", status)
		e.add(killIn(kms[10], 910300, 30000142, now))
		f := ws.expect("live kill", func(f phxFrame) bool { return strings.HasPrefix(f.Event, "preload") || f.Event == "killmail_update" })
		assert.Equal(t, "killmail_update", f.Event)
		assert.Equal(t, false, f.object(t)["preload"])
	})
	t.Run("after subscribe", func(t *testing.T) {
		ws := dialWS(t, e.addr, "2.0.0")
		status, _ := ws.call(lobbyTopic, evJoin, map[string]any{})
		require.Equal(t, "ok", status)
		status, _ = ws.call(lobbyTopic, "subscribe_systems", map[string]any{"systems": []int{30000144}})
		require.Equal(t, "ok", status)
		up := ws.event("killmail_update")
		assert.Equal(t, true, up.object(t)["preload"])
		assert.Equal(t, []int64{910200}, killIDsOf(t, up))
	})
}

// TestWebSocketResume: since_offset sends every matching kill after the
// offset from the store, then live ones, each once; a foreign epoch is
// refused.
func TestWebSocketResume(t *testing.T) {
	e := newLiveEnv(t, "", "")
	kms := liveFixtures(t)
	now := time.Now()
	var offs []uint64
	for i := range 6 {
		sys := int64(30000142)
		if i%2 == 1 {
			sys = 30000144
		}
		offs = append(offs, e.add(killIn(kms[i], int64(920000+i), sys, now))...)
	}
	e.settle()
	ws := dialWS(t, e.addr, "2.0.0")
	status, resp := ws.call(lobbyTopic, evJoin, map[string]any{
		"systems": []int{30000142}, "since_offset": offs[1], "epoch": e.st.Epoch(), "preload": false,
	})
	require.Equal(t, "ok", status, resp)
	assert.Equal(t, e.st.Epoch(), resp["epoch"])
	assert.EqualValues(t, offs[5], resp["offset"])
	e.add(killIn(kms[7], 920007, 30000142, now))
	var got []int64
	var last float64
	for len(got) < 3 {
		up := ws.event("killmail_update")
		got = append(got, killIDsOf(t, up)...)
		off := up.object(t)["offset"].(float64)
		assert.Greater(t, off, last, "offsets rise")
		last = off
	}
	assert.Equal(t, []int64{920002, 920004, 920007}, got)

	ws2 := dialWS(t, e.addr, "1.0.0")
	status, resp = ws2.call(lobbyTopic, evJoin, map[string]any{"systems": []int{30000142}, "since_offset": 1, "epoch": "0000"})
	assert.Equal(t, "error", status)
	assert.Contains(t, resp["reason"], "[resume:epoch_mismatch]")
	status, resp = ws2.call(lobbyTopic, evJoin, map[string]any{"systems": []int{30000142}, "since_offset": 1 << 40})
	assert.Equal(t, "error", status)
	assert.Contains(t, resp["reason"], "[resume:offset_ahead]")
}

// TestWebSocketLimits: an inbound frame past the cap closes the socket
// (1009), a silent socket is closed after the idle timeout, and the
// per-address cap refuses extra connections.
func TestWebSocketLimits(t *testing.T) {
	e := newLiveEnv(t, "", "", func(c *Config) {
		c.Live.MaxFrameBytes = 1024
		c.Live.IdleTimeout = 300 * time.Millisecond
		c.Live.MaxConnPerIP = 3
	})
	t.Run("frame size", func(t *testing.T) {
		ws := dialWS(t, e.addr, "2.0.0")
		ws.send(lobbyTopic, evJoin, map[string]any{"pad": strings.Repeat("x", 2048)})
		_, err := ws.next(5 * time.Second)
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, websocket.CloseMessageTooBig, ce.Code)
	})
	t.Run("idle", func(t *testing.T) {
		ws := dialWS(t, e.addr, "2.0.0")
		_, err := ws.next(5 * time.Second)
		require.Error(t, err, "closed for silence")
	})
	t.Run("per ip", func(t *testing.T) {
		require.Eventually(t, func() bool { return e.srv.hub.Stats().WebSocketConnections == 0 }, 5*time.Second, 10*time.Millisecond)
		for range 3 {
			ws := dialWS(t, e.addr, "2.0.0")
			status, _ := ws.call("phoenix", evHeartbeat, map[string]any{})
			require.Equal(t, "ok", status)
		}
		_, res, err := websocket.DefaultDialer.Dial("ws://"+e.addr+"/socket/websocket?vsn=2.0.0", nil)
		require.Error(t, err)
		require.NotNil(t, res)
		assert.Equal(t, 429, res.StatusCode)
		var body map[string]map[string]string
		require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
		assert.Equal(t, "per_ip_limit", body["error"]["type"])
	})
}
