package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// hookReceiver is a webhook endpoint on loopback. It verifies every
// request with the Standard Webhooks authors' own Go package, so our
// signatures are checked by code we did not write.
type hookReceiver struct {
	t   testing.TB
	srv *httptest.Server
	// answer gives the status of the n-th request (1-based); it may
	// set headers and block. Nil answers 200.
	answer func(n int, w http.ResponseWriter, r *http.Request) int

	mu     sync.Mutex
	secret string
	reqs   []hookRequest
}

// hookRequest is one request the receiver got.
type hookRequest struct {
	header  http.Header
	body    []byte
	payload hookPayload
	// verifyErr is the Standard Webhooks verification (nil = valid).
	verifyErr error
	status    int
}

// hookPayload is the webhook body (API.md §6.5).
type hookPayload struct {
	Type      string           `json:"type"`
	SystemID  int64            `json:"system_id"`
	Kills     []store.Killmail `json:"kills"`
	Timestamp string           `json:"timestamp"`
}

func newHookReceiver(t testing.TB, answer func(n int, w http.ResponseWriter, r *http.Request) int) *hookReceiver {
	t.Helper()
	h := &hookReceiver{t: t, answer: answer}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) url() string { return h.srv.URL + "/hook" }

func (h *hookReceiver) setSecret(s string) {
	h.mu.Lock()
	h.secret = s
	h.mu.Unlock()
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	secret := h.secret
	h.reqs = append(h.reqs, hookRequest{header: r.Header.Clone(), body: body})
	n := len(h.reqs)
	h.mu.Unlock()
	var verifyErr error
	wh, err := standardwebhooks.NewWebhook(secret)
	if err == nil {
		verifyErr = wh.Verify(body, r.Header)
	} else {
		verifyErr = err
	}
	var p hookPayload
	if err := json.Unmarshal(body, &p); err != nil && verifyErr == nil {
		verifyErr = err
	}
	status := http.StatusOK
	if h.answer != nil {
		status = h.answer(n, w, r)
	}
	h.mu.Lock()
	h.reqs[n-1].payload, h.reqs[n-1].verifyErr, h.reqs[n-1].status = p, verifyErr, status
	h.mu.Unlock()
	w.WriteHeader(status)
}

// requests returns a copy of what was received so far.
func (h *hookReceiver) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

func (h *hookReceiver) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.reqs)
}

// ackedKills lists the killmail ids of the requests answered 2xx, in
// arrival order.
func (h *hookReceiver) ackedKills() []int64 {
	var ids []int64
	for _, r := range h.requests() {
		if r.status >= 200 && r.status < 300 {
			for _, k := range r.payload.Kills {
				ids = append(ids, k.KillmailID)
			}
		}
	}
	return ids
}

// fastHooks is a config for tests: loopback allowed, short backoff and
// batch window; mut adjusts it.
func fastHooks(mut ...func(*WebhookConfig)) func(*Config) {
	return func(c *Config) {
		c.Webhooks = WebhookConfig{
			AllowPrivate: true, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			BatchWindow: 10 * time.Millisecond, Timeout: 10 * time.Second,
		}
		for _, m := range mut {
			m(&c.Webhooks)
		}
	}
}

// postJSON posts v and decodes the JSON answer.
func postJSON(t testing.TB, u string, v any) (int, map[string]any) {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	res, err := http.Post(u, "application/json", bytes.NewReader(b))
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
	return res.StatusCode, m
}

// doJSON sends a request without a body and decodes the JSON answer.
func doJSON(t testing.TB, method, u string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
	return res.StatusCode, m
}

// subscribe creates a webhook subscription for h and returns its id.
func (e *liveEnv) subscribe(h *hookReceiver, systems, chars []int64) string {
	e.t.Helper()
	status, m := postJSON(e.t, e.httpURL("/api/v1/subscriptions"), map[string]any{
		"subscriber_id": "sub-" + h.srv.Listener.Addr().String(), "system_ids": systems,
		"character_ids": chars, "callback_url": h.url(),
	})
	require.Equal(e.t, http.StatusCreated, status, "%v", m)
	data := m["data"].(map[string]any)
	h.setSecret(data["secret"].(string))
	return data["subscription_id"].(string)
}

// delivery reads a webhook's delivery state.
func (e *liveEnv) delivery(id string) DeliveryState {
	e.t.Helper()
	sub, ok := e.srv.webhooks.Subscription(id)
	require.True(e.t, ok, "subscription %s", id)
	return *sub.Delivery
}

// makeKills returns n killmails (ids from first) in system, built from
// the fixtures.
func makeKills(t testing.TB, first int64, n int, system int64) []*store.Killmail {
	t.Helper()
	fx := liveFixtures(t)
	out := make([]*store.Killmail, n)
	for i := range out {
		out[i] = killIn(fx[i%len(fx)], first+int64(i), system, time.Now())
	}
	return out
}

func ids(kms []*store.Killmail) []int64 {
	out := make([]int64, len(kms))
	for i, k := range kms {
		out[i] = k.KillmailID
	}
	return out
}

// metricValue reads the one counter or gauge a collector holds.
func metricValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	require.NoError(t, (<-ch).Write(&m))
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("not a counter or gauge")
	return 0
}
