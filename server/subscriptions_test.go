package server

import (
	"bytes"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSubscriptionValidation: API.md §9 item 6, the 400 messages in the
// original's order, in its {"error":{"message","details"}} shape.
func TestSubscriptionValidation(t *testing.T) {
	e := newLiveEnv(t, "", "", fastHooks())
	base := func(mut func(map[string]any)) map[string]any {
		m := map[string]any{"subscriber_id": "test_user_123", "system_ids": []any{30000142}, "callback_url": "https://example.com/webhook"}
		mut(m)
		return m
	}
	for _, tc := range []struct {
		name string
		body map[string]any
		want []string
	}{
		{"missing subscriber_id", base(func(m map[string]any) { delete(m, "subscriber_id") }), []string{"subscriber_id is required"}},
		{"empty subscriber_id", base(func(m map[string]any) { m["subscriber_id"] = "" }), []string{"subscriber_id"}},
		{"missing callback_url", base(func(m map[string]any) { delete(m, "callback_url") }), []string{"callback_url is required"}},
		{"not a URL", base(func(m map[string]any) { m["callback_url"] = "not-a-url" }), []string{"callback_url", "HTTP"}},
		{"ftp URL", base(func(m map[string]any) { m["callback_url"] = "ftp://example.com/x" }), []string{"callback_url must be a valid HTTP/HTTPS URL"}},
		{"neither list", base(func(m map[string]any) { delete(m, "system_ids") }), []string{"system_id", "character_id"}},
		{"bad systems", base(func(m map[string]any) { m["system_ids"] = []any{-1, 0, "not_a_number"} }),
			[]string{"system_ids must be an array of positive integers"}},
		{"bad characters", base(func(m map[string]any) { m["character_ids"] = []any{-1, 0, "not_a_number"} }),
			[]string{"character_ids", "positive integers"}},
		{"101 systems", base(func(m map[string]any) { m["system_ids"] = seq(1, 101) }), []string{"Maximum 100 system_ids allowed per subscription"}},
		{"1001 characters", base(func(m map[string]any) { m["character_ids"] = seq(1, 1001) }), []string{"character_ids", "1000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, m := postJSON(t, e.httpURL("/api/v1/subscriptions"), tc.body)
			require.Equal(t, http.StatusBadRequest, status)
			errObj := m["error"].(map[string]any)
			for _, w := range tc.want {
				assert.Contains(t, errObj["message"], w)
			}
			assert.Equal(t, errObj["message"], errObj["details"])
		})
	}
	t.Run("malformed body", func(t *testing.T) {
		res, err := http.Post(e.httpURL("/api/v1/subscriptions"), "application/json", strings.NewReader("{nope"))
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	})
	assert.Empty(t, e.srv.webhooks.Subscriptions(), "nothing was created")
}

func seq(from, to int) []any {
	out := make([]any, 0, to-from+1)
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// TestSubscriptionsLifecycle: API.md §9 item 6 — create (systems only,
// characters only, both), normalisation, list, stats, get with state,
// delete one subscriber only; it all survives a restart; the list and the
// stats include a live WebSocket channel.
func TestSubscriptionsLifecycle(t *testing.T) {
	dir := t.TempDir()
	e := newLiveEnv(t, dir, "", fastHooks())
	create := func(body map[string]any) string {
		t.Helper()
		status, m := postJSON(t, e.httpURL("/api/v1/subscriptions"), body)
		require.Equal(t, http.StatusCreated, status, "%v", m)
		data := m["data"].(map[string]any)
		assert.Equal(t, "Subscription created successfully", data["message"])
		assert.Regexp(t, regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`), data["subscription_id"])
		assert.Regexp(t, regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`), data["secret"])
		return data["subscription_id"].(string)
	}
	create(map[string]any{"subscriber_id": "only_systems", "system_ids": []any{30000142}, "callback_url": "https://example.com/a"})
	create(map[string]any{"subscriber_id": "only_chars", "character_ids": []any{95465499}, "callback_url": "https://example.com/b"})
	both := create(map[string]any{"subscriber_id": "test_user_123", "callback_url": "http://example.com/webhook",
		"system_ids": []any{30000143, 30000142, 30000143, "x", 1.5}, "character_ids": []any{789, 123, 456, 123}})
	create(map[string]any{"subscriber_id": "test_user_123", "system_ids": []any{30000142}, "character_ids": "nope",
		"callback_url": "https://example.com/c"})

	code, m := getJSON(t, e.httpURL("/api/v1/subscriptions/"+both))
	require.Equal(t, http.StatusOK, code)
	sub := m["data"].(map[string]any)
	assert.Equal(t, []any{30000142.0, 30000143.0}, sub["system_ids"], "deduplicated, sorted, integers only")
	assert.Equal(t, []any{123.0, 456.0, 789.0}, sub["character_ids"])
	assert.Equal(t, "webhook", sub["type"])
	assert.Equal(t, "http://example.com/webhook", sub["callback_url"])
	assert.NotContains(t, sub, "secret", "the secret is shown once")
	delivery := sub["delivery"].(map[string]any)
	assert.Equal(t, false, delivery["disabled"])
	assert.EqualValues(t, e.st.Head(), delivery["cursor"], "a new subscription starts at the head")

	// A live WebSocket channel is listed too.
	ws := dialWS(t, e.addr, "2.0.0", "client_id", "mapper")
	status, _ := ws.call(lobbyTopic, "phx_join", map[string]any{"systems": []int{30000144}, "character_ids": []int{95465500}})
	require.Equal(t, "ok", status)

	status2, m := getJSON(t, e.httpURL("/api/v1/subscriptions"))
	require.Equal(t, http.StatusOK, status2)
	data := m["data"].(map[string]any)
	assert.EqualValues(t, 5, data["count"])
	subs := data["subscriptions"].([]any)
	var types []string
	for _, s := range subs {
		types = append(types, s.(map[string]any)["type"].(string))
	}
	assert.Equal(t, []string{"webhook", "webhook", "webhook", "webhook", "websocket"}, types)
	chanSub := subs[4].(map[string]any)
	assert.Nil(t, chanSub["callback_url"])
	assert.True(t, strings.HasPrefix(chanSub["subscriber_id"].(string), "mapper_"))
	assert.Equal(t, []any{30000144.0}, chanSub["system_ids"])

	code, m = getJSON(t, e.httpURL("/api/v1/subscriptions/stats"))
	require.Equal(t, http.StatusOK, code)
	stats := m["data"].(map[string]any)
	assert.EqualValues(t, 4, stats["webhook_subscriptions"])
	assert.EqualValues(t, 1, stats["websocket_subscriptions"])
	assert.EqualValues(t, 0, stats["sse_subscriptions"])
	assert.EqualValues(t, 5, stats["total_subscriptions"])
	assert.EqualValues(t, 3, stats["total_systems"], "142, 143, 144 distinct")
	assert.EqualValues(t, 5, stats["total_characters"], "95465499, 123, 456, 789, 95465500")
	assert.Greater(t, stats["memory_usage"], 0.0)

	code, m = doJSON(t, http.MethodDelete, e.httpURL("/api/v1/subscriptions/test_user_123"))
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, map[string]any{"message": "Successfully unsubscribed", "subscriber_id": "test_user_123"}, m["data"])
	code, m = doJSON(t, http.MethodDelete, e.httpURL("/api/v1/subscriptions/nobody"))
	require.Equal(t, http.StatusOK, code, "unknown subscribers too")
	assert.Equal(t, "Successfully unsubscribed", m["data"].(map[string]any)["message"])
	code, _ = getJSON(t, e.httpURL("/api/v1/subscriptions/"+both))
	assert.Equal(t, http.StatusNotFound, code)

	left := func(e *liveEnv) []string {
		var out []string
		for _, s := range e.srv.webhooks.Subscriptions() {
			out = append(out, s.SubscriberID)
		}
		slices.Sort(out)
		return out
	}
	assert.Equal(t, []string{"only_chars", "only_systems"}, left(e), "only the target subscriber went")
	_ = ws.c.Close()
	e.stop()
	e2 := newLiveEnv(t, dir, "", fastHooks())
	assert.Equal(t, []string{"only_chars", "only_systems"}, left(e2), "persisted across a restart")
}

// TestSubscriptionStatsOriginal: the original's stats case (API.md §9
// item 6): systems {142,143},{142}, characters {123},{456,789}.
func TestSubscriptionStatsOriginal(t *testing.T) {
	e := newLiveEnv(t, "", "", fastHooks())
	for _, b := range []map[string]any{
		{"subscriber_id": "a", "system_ids": []int{30000142, 30000143}, "character_ids": []int{123}, "callback_url": "https://example.com/a"},
		{"subscriber_id": "b", "system_ids": []int{30000142}, "character_ids": []int{456, 789}, "callback_url": "https://example.com/b"},
	} {
		status, _ := postJSON(t, e.httpURL("/api/v1/subscriptions"), b)
		require.Equal(t, http.StatusCreated, status)
	}
	_, m := getJSON(t, e.httpURL("/api/v1/subscriptions/stats"))
	stats := m["data"].(map[string]any)
	assert.EqualValues(t, 2, stats["webhook_subscriptions"])
	assert.EqualValues(t, 0, stats["websocket_subscriptions"])
	assert.EqualValues(t, 3, stats["total_characters"])
	assert.EqualValues(t, 2, stats["total_systems"])
	_, m = getJSON(t, e.httpURL("/api/v1/subscriptions"))
	assert.EqualValues(t, 2, m["data"].(map[string]any)["count"])
}

// TestSubscriptionsNeedAPIKey: with WK_API_KEY the write routes need the
// bearer key; the reads stay public.
func TestSubscriptionsNeedAPIKey(t *testing.T) {
	e := newLiveEnv(t, "", "", fastHooks(), func(c *Config) { c.APIKey = "k3y" })
	body := []byte(`{"subscriber_id":"s","system_ids":[30000142],"callback_url":"https://example.com/x"}`)
	send := func(method, path, key string, body []byte) int {
		req, err := http.NewRequest(method, e.httpURL(path), bytes.NewReader(body))
		require.NoError(t, err)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, send(http.MethodPost, "/api/v1/subscriptions", "", body))
	assert.Equal(t, http.StatusUnauthorized, send(http.MethodPost, "/api/v1/subscriptions", "wrong", body))
	assert.Equal(t, http.StatusCreated, send(http.MethodPost, "/api/v1/subscriptions", "k3y", body))
	assert.Equal(t, http.StatusUnauthorized, send(http.MethodDelete, "/api/v1/subscriptions/s", "", nil))
	assert.Equal(t, http.StatusOK, send(http.MethodGet, "/api/v1/subscriptions", "", nil))
	assert.Equal(t, http.StatusOK, send(http.MethodGet, "/api/v1/subscriptions/stats", "", nil))
	assert.Equal(t, http.StatusOK, send(http.MethodDelete, "/api/v1/subscriptions/s", "k3y", nil))
	assert.Empty(t, e.srv.webhooks.Subscriptions())
}

func TestSubscriptionLimit(t *testing.T) {
	e := newLiveEnv(t, "", "", fastHooks(func(c *WebhookConfig) { c.MaxSubscriptions = 1 }))
	body := map[string]any{"subscriber_id": "s", "system_ids": []int{30000142}, "callback_url": "https://example.com/x"}
	status, _ := postJSON(t, e.httpURL("/api/v1/subscriptions"), body)
	require.Equal(t, http.StatusCreated, status)
	status, m := postJSON(t, e.httpURL("/api/v1/subscriptions"), body)
	require.Equal(t, http.StatusTooManyRequests, status)
	assert.Equal(t, "Maximum 1 webhook subscriptions reached", m["error"].(map[string]any)["message"])
}
