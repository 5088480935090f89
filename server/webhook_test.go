package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// TestWebhookSignatureTestVector: our signer gives the spec's test vector
// (DESIGN.md §5b), and the authors' package accepts what we sign.
func TestWebhookSignatureTestVector(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	body := []byte(`{"test": 2432232314}`)
	sig := signWebhook(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
	assert.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig)

	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", sig)
	require.NoError(t, wh.VerifyIgnoringTimestamp(body, h))
	h.Set("webhook-signature", signWebhook(key, "msg_other", 1614265330, body))
	require.Error(t, wh.VerifyIgnoringTimestamp(body, h))
}

// TestWebhookDeliversMatchingKills: system OR character matches reach the
// endpoint in log order, batched per system (at most 50), signed, with the
// original's payload and headers; the cursor moves to the last one.
func TestWebhookDeliversMatchingKills(t *testing.T) {
	e := newLiveEnv(t, "", "", fastHooks(func(c *WebhookConfig) { c.BatchWindow = time.Second }))
	h := newHookReceiver(t, nil)
	fx := liveFixtures(t)
	var charKill *store.Killmail
	for _, km := range fx {
		if km.Victim.CharacterID > 0 {
			charKill = km
			break
		}
	}
	require.NotNil(t, charKill)
	id := e.subscribe(h, []int64{30000142}, []int64{charKill.Victim.CharacterID})

	many := makeKills(t, 7_000_000, 120, 30000142) // one append: batches of 50, 50, then the rest
	e.add(many...)
	want := ids(many)
	now := time.Now()
	byChar := killIn(charKill, 7_100_001, 30002187, now) // character match in another system
	other := killIn(fx[len(fx)-1], 7_100_002, 30002659, now)
	other.Victim.CharacterID, other.Attackers = 0, nil // matches nothing
	e.add(killIn(fx[1], 7_100_003, 30000142, now), byChar, other)
	want = append(want, 7_100_003, 7_100_001)
	last := e.add(killIn(fx[2], 7_100_004, 30000142, now))
	want = append(want, 7_100_004)

	require.Eventually(t, func() bool { return len(h.ackedKills()) >= len(want) }, 20*time.Second, 5*time.Millisecond)
	assert.Equal(t, want, h.ackedKills(), "each matching kill once, in log order")
	reqs := h.requests()
	assert.Len(t, reqs[0].payload.Kills, 50)
	assert.Len(t, reqs[1].payload.Kills, 50)
	seen := map[string]bool{}
	for i, r := range reqs {
		require.NoError(t, r.verifyErr, "request %d verifies with standardwebhooks", i)
		assert.Equal(t, "application/json", r.header.Get("Content-Type"))
		assert.Equal(t, "WandererKills/1.0", r.header.Get("User-Agent"))
		assert.Equal(t, "killmail_update", r.payload.Type)
		_, err := time.Parse(time.RFC3339Nano, r.payload.Timestamp)
		assert.NoError(t, err, "ISO-8601 timestamp")
		assert.LessOrEqual(t, len(r.payload.Kills), 50)
		for _, k := range r.payload.Kills {
			assert.Equal(t, r.payload.SystemID, k.SystemID, "a batch holds one system")
		}
		assert.False(t, seen[r.header.Get("webhook-id")], "webhook-id is unique per batch")
		seen[r.header.Get("webhook-id")] = true
	}
	// The receiver counts a request before its answer reaches the sender.
	require.Eventually(t, func() bool {
		st := e.delivery(id)
		return st.Cursor == last[0] && st.Pending == 0 && metricValue(t, e.srv.webhooks.met.killmails) == float64(len(want))
	}, 5*time.Second, 5*time.Millisecond, "cursor at the last match, nothing pending, every kill counted")
	st := e.delivery(id)
	assert.NotEmpty(t, st.LastSuccessAt)
	assert.False(t, st.Disabled)
	assert.EqualValues(t, len(reqs), metricValue(t, e.srv.webhooks.met.deliveries.WithLabelValues("success")))
}

// TestWebhookRetries: a 500, a timeout and a redirect are failures,
// retried with the same webhook-id and body until a 2xx; the cursor moves
// only then.
func TestWebhookRetries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fail   func(w http.ResponseWriter, r *http.Request) int
		result string
	}{
		{"500", func(http.ResponseWriter, *http.Request) int { return http.StatusInternalServerError }, "http_error"},
		{"timeout", func(_ http.ResponseWriter, r *http.Request) int {
			<-r.Context().Done() // never answers in time
			return http.StatusServiceUnavailable
		}, "timeout"},
		{"redirect not followed", func(w http.ResponseWriter, _ *http.Request) int {
			w.Header().Set("Location", "/elsewhere")
			return http.StatusFound
		}, "http_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLiveEnv(t, "", "", fastHooks(func(c *WebhookConfig) { c.Timeout = 300 * time.Millisecond }))
			h := newHookReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) int {
				if r.URL.Path != "/hook" {
					t.Errorf("request to %s: redirect followed", r.URL.Path)
				}
				if n <= 2 {
					return tc.fail(w, r)
				}
				return http.StatusNoContent
			})
			id := e.subscribe(h, []int64{30000142}, nil)
			offs := e.add(makeKills(t, 7_200_000, 1, 30000142)...)
			require.Eventually(t, func() bool { return len(h.ackedKills()) == 1 }, 20*time.Second, 5*time.Millisecond)
			reqs := h.requests()
			require.Len(t, reqs, 3, "two failures, then the success")
			for _, r := range reqs {
				require.NoError(t, r.verifyErr)
				assert.Equal(t, reqs[0].header.Get("webhook-id"), r.header.Get("webhook-id"), "stable across retries")
				assert.Equal(t, reqs[0].body, r.body)
			}
			require.Eventually(t, func() bool {
				return e.delivery(id).Cursor == offs[0] && metricValue(t, e.srv.webhooks.met.killmails) == 1
			}, 5*time.Second, 5*time.Millisecond)
			st := e.delivery(id)
			assert.NotEmpty(t, st.LastError)
			assert.Empty(t, st.FailingSince, "the success ended the failure streak")
			met := e.srv.webhooks.met
			assert.EqualValues(t, 2, metricValue(t, met.retries))
			assert.EqualValues(t, 2, metricValue(t, met.deliveries.WithLabelValues(tc.result)))
		})
	}
}

// TestWebhookDisables: a 410, or failures past the max failure age,
// disable the subscription for good (across a restart), and it says so.
func TestWebhookDisables(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		cfg    func(*WebhookConfig)
		reason string
	}{
		{"410 gone", http.StatusGone, nil, "410"},
		{"max failure age", http.StatusServiceUnavailable, func(c *WebhookConfig) { c.MaxFailureAge = 50 * time.Millisecond }, "max failure age"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mut := fastHooks()
			if tc.cfg != nil {
				mut = fastHooks(tc.cfg)
			}
			e := newLiveEnv(t, dir, "", mut)
			h := newHookReceiver(t, func(int, http.ResponseWriter, *http.Request) int { return tc.status })
			id := e.subscribe(h, []int64{30000142}, nil)
			e.add(makeKills(t, 7_300_000, 1, 30000142)...)
			require.Eventually(t, func() bool { return e.delivery(id).Disabled }, 20*time.Second, 5*time.Millisecond)
			st := e.delivery(id)
			assert.Contains(t, st.DisabledReason, tc.reason)
			assert.NotEmpty(t, st.LastError)
			assert.EqualValues(t, 1, metricValue(t, e.srv.webhooks.met.disabled))
			require.Eventually(t, func() bool {
				e.srv.webhooks.mu.Lock()
				defer e.srv.webhooks.mu.Unlock()
				return e.srv.webhooks.subs[id].done == nil
			}, 5*time.Second, time.Millisecond, "its goroutine ended")
			n := h.count()
			e.add(makeKills(t, 7_300_100, 1, 30000142)...)
			e.settle()
			assert.Equal(t, n, h.count(), "nothing sent once disabled")

			e.stop()
			e2 := newLiveEnv(t, dir, "", mut)
			assert.True(t, e2.delivery(id).Disabled, "still disabled after a restart")
		})
	}
}

// TestWebhookSlowEndpointDoesNotDelayFast: while one endpoint hangs, the
// other subscription on the same system gets every kill.
func TestWebhookSlowEndpointDoesNotDelayFast(t *testing.T) {
	e := newLiveEnv(t, "", "", fastHooks())
	release := make(chan struct{})
	slow := newHookReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) int {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return http.StatusOK
	})
	fast := newHookReceiver(t, nil)
	e.subscribe(slow, []int64{30000142}, nil)
	e.subscribe(fast, []int64{30000142}, nil)
	var want []int64
	for i := range 5 {
		kms := makeKills(t, int64(7_400_000+i), 1, 30000142)
		e.add(kms...)
		want = append(want, kms[0].KillmailID)
	}
	require.Eventually(t, func() bool { return slices.Equal(fast.ackedKills(), want) }, 20*time.Second, 5*time.Millisecond)
	assert.Empty(t, slow.ackedKills(), "the slow endpoint has answered nothing yet")
	close(release)
	require.Eventually(t, func() bool { return slices.Equal(slow.ackedKills(), want) }, 20*time.Second, 5*time.Millisecond)
}

// TestWebhookCatchesUpFromCursor: kills stored while the server was down,
// and kills past the live inbox's cap while the endpoint was stuck, are
// read from the store from the cursor: each delivered once, in order.
func TestWebhookCatchesUpFromCursor(t *testing.T) {
	dir := t.TempDir()
	block := make(chan struct{})
	h := newHookReceiver(t, func(n int, _ http.ResponseWriter, r *http.Request) int {
		if n == 2 {
			select {
			case <-block:
			case <-r.Context().Done():
				return http.StatusServiceUnavailable
			}
		}
		return http.StatusOK
	})
	e := newLiveEnv(t, dir, "", fastHooks())
	e.subscribe(h, []int64{30000142}, []int64{})
	first := makeKills(t, 7_500_000, 1, 30000142)
	e.add(first...)
	require.Eventually(t, func() bool { return len(h.ackedKills()) == 1 }, 10*time.Second, 5*time.Millisecond)
	second := makeKills(t, 7_500_100, 1, 30000142)
	e.add(second...)
	require.Eventually(t, func() bool { return h.count() == 2 }, 10*time.Second, 5*time.Millisecond)
	// More than the live inbox holds while the endpoint is stuck.
	flood := makeKills(t, 7_510_000, webhookInboxMax+40, 30000142)
	e.add(flood...)
	e.settle()
	close(block)
	want := append(append(ids(first), ids(second)...), ids(flood)...)
	require.Eventually(t, func() bool { return len(h.ackedKills()) >= len(want) }, 30*time.Second, 5*time.Millisecond)
	assert.Equal(t, want, h.ackedKills())

	e.stop()
	st, err := store.Open(context.Background(), store.Config{Dir: dir})
	require.NoError(t, err)
	offline := makeKills(t, 7_600_000, 3, 30000142)
	other := makeKills(t, 7_600_100, 2, 30002187)
	_, err = st.Append(context.Background(), store.Batch{Killmails: append(append([]*store.Killmail{}, offline[:2]...), append(other, offline[2])...)})
	require.NoError(t, err)
	require.NoError(t, st.Close())

	newLiveEnv(t, dir, "", fastHooks())
	want = append(want, ids(offline)...)
	require.Eventually(t, func() bool { return len(h.ackedKills()) >= len(want) }, 20*time.Second, 5*time.Millisecond)
	assert.Equal(t, want, h.ackedKills(), "after the restart, from the cursor, each once")
}

// TestWebhookSendContract: API.md §9 item 12, on the sending function.
func TestWebhookSendContract(t *testing.T) {
	st, err := store.Open(context.Background(), store.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	hub, err := NewHub(st, HubConfig{}, nil, nil)
	require.NoError(t, err)
	w, err := NewWebhooks(context.Background(), st, hub, WebhookConfig{AllowPrivate: true}, nil, nil)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, w.cfg.Timeout, 5*time.Second, "timeout at least 5 s")
	msg := webhookMessage{id: "msg_1", body: batchBody(30000142, nil, nowStamp())}

	res := w.send(context.Background(), "", []byte("k"), msg)
	assert.Equal(t, outcomeSuccess, res.outcome, "an empty URL is a no-op success")
	assert.NoError(t, res.err)

	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		got = r
		rw.WriteHeader(http.StatusInternalServerError)
		_, _ = rw.Write([]byte(strings.Repeat("oops ", 10_000)))
	}))
	defer srv.Close()
	res = w.send(context.Background(), srv.URL, []byte("k"), msg)
	assert.Equal(t, outcomeHTTPError, res.outcome, "an HTTP failure is an error")
	require.Error(t, res.err)
	assert.Less(t, len(res.err.Error()), 300, "the body excerpt is capped")
	assert.Equal(t, "application/json", got.Header.Get("Content-Type"))
	assert.Equal(t, "WandererKills/1.0", got.Header.Get("User-Agent"))
	for _, h := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		assert.NotEmpty(t, got.Header.Get(h), h)
	}
	var body map[string]any
	require.NoError(t, json.Unmarshal(msg.body, &body))
	assert.Equal(t, "killmail_update", body["type"])
	assert.EqualValues(t, 30000142, body["system_id"])
	assert.Equal(t, []any{}, body["kills"])
	_, err = time.Parse(time.RFC3339Nano, body["timestamp"].(string))
	assert.NoError(t, err)
}

// TestWebhookBackoff: doubling from Backoff, capped, jittered in the
// upper half.
func TestWebhookBackoff(t *testing.T) {
	c := WebhookConfig{}
	c.defaults()
	for attempt, base := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 9: 2560 * time.Second, 10: time.Hour, 40: time.Hour} {
		for range 50 {
			d := c.backoff(attempt)
			assert.GreaterOrEqual(t, d, base/2, "attempt %d", attempt)
			assert.LessOrEqual(t, d, base, "attempt %d", attempt)
		}
	}
}
