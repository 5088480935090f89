package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
)

// e2eReceiver is a webhook endpoint that verifies each request with the
// Standard Webhooks authors' package. While hang is set it answers
// nothing: the request stays in flight until the sender goes away.
type e2eReceiver struct {
	mu     sync.Mutex
	secret string
	hang   bool
	reqs   []e2eRequest
}

type e2eRequest struct {
	id       string
	kills    []int64
	acked    bool // answered 2xx
	verified error
}

func (rc *e2eReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var p struct {
		Type  string `json:"type"`
		Kills []struct {
			ID int64 `json:"killmail_id"`
		} `json:"kills"`
	}
	perr := json.Unmarshal(body, &p)
	rc.mu.Lock()
	secret, hang := rc.secret, rc.hang
	rc.mu.Unlock()
	req := e2eRequest{id: r.Header.Get("webhook-id"), verified: perr}
	if wh, err := standardwebhooks.NewWebhook(secret); err != nil {
		req.verified = err
	} else if err := wh.Verify(body, r.Header); err != nil {
		req.verified = err
	}
	for _, k := range p.Kills {
		req.kills = append(req.kills, k.ID)
	}
	if hang {
		rc.record(req)
		<-r.Context().Done()
		return
	}
	req.acked = true
	rc.record(req)
	w.WriteHeader(http.StatusOK)
}

func (rc *e2eReceiver) record(req e2eRequest) {
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, req)
	rc.mu.Unlock()
}

func (rc *e2eReceiver) set(secret string, hang bool) {
	rc.mu.Lock()
	rc.secret, rc.hang = secret, hang
	rc.mu.Unlock()
}

func (rc *e2eReceiver) requests() []e2eRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.reqs)
}

// acked counts each killmail id in acknowledged requests.
func (rc *e2eReceiver) acked() map[int64]int {
	n := map[int64]int{}
	for _, r := range rc.requests() {
		if r.acked {
			for _, id := range r.kills {
				n[id]++
			}
		}
	}
	return n
}

// TestServeKill9MidWebhookDelivery runs the real binary with a webhook on
// every system of the fixtures, kills it with SIGKILL while a delivery
// is in flight, restarts it and checks that every killmail is then
// acknowledged exactly once: the only repeats are of the batch that was
// never acknowledged.
func TestServeKill9MidWebhookDelivery(t *testing.T) {
	up := fakeupstream.New(t, fakeupstream.Options{})
	kms := up.Killmails()
	var systems []int64
	for _, km := range kms {
		if !slices.Contains(systems, km.SystemID) {
			systems = append(systems, km.SystemID)
		}
	}
	require.LessOrEqual(t, len(systems), 100, "one subscription holds every system")
	rc := &e2eReceiver{}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	dataDir := filepath.Join(t.TempDir(), "store")
	args := []string{"--r2z2-start", strconv.FormatInt(up.FirstSequence(), 10), "--webhook-allow-private", "--webhook-backoff", "100ms"}

	p := startServe(t, dataDir, up, args...)
	body, err := json.Marshal(map[string]any{"subscriber_id": "e2e", "system_ids": systems, "callback_url": hook.URL + "/hook"})
	require.NoError(t, err)
	resp, err := http.Post(p.base+"/api/v1/subscriptions", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	var created struct {
		Data struct {
			ID     string `json:"subscription_id"`
			Secret string `json:"secret"`
		} `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&created))
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	rc.set(created.Data.Secret, false)

	up.Release(30)
	require.Eventually(t, func() bool { return len(rc.acked()) == 30 }, 60*time.Second, 20*time.Millisecond,
		"the first 30 delivered")
	rc.set(created.Data.Secret, true)
	up.Release(30)
	require.Eventually(t, func() bool {
		reqs := rc.requests()
		return len(reqs) > 0 && !reqs[len(reqs)-1].acked
	}, 60*time.Second, 10*time.Millisecond, "a delivery is in flight")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done

	rc.set(created.Data.Secret, false)
	up.ReleaseAll()
	p2 := startServe(t, dataDir, up, args...)
	require.Eventually(t, func() bool { return len(rc.acked()) == len(kms) }, 120*time.Second, 50*time.Millisecond,
		"every killmail delivered after the restart")

	reqs := rc.requests()
	var inFlight []int64
	for i, r := range reqs {
		require.NoError(t, r.verified, "request %d verifies with standardwebhooks", i)
		if !r.acked {
			inFlight = append(inFlight, r.kills...)
		}
	}
	require.NotEmpty(t, inFlight)
	for id, n := range rc.acked() {
		assert.Equal(t, 1, n, "killmail %d acknowledged once", id)
	}
	for _, km := range kms {
		assert.Contains(t, rc.acked(), km.ID, "killmail %d delivered", km.ID)
	}
	var state struct {
		Data struct {
			Delivery struct {
				Cursor   uint64 `json:"cursor"`
				Pending  int    `json:"pending"`
				Disabled bool   `json:"disabled"`
			} `json:"delivery"`
		} `json:"data"`
	}
	require.Eventually(t, func() bool {
		return p2.getJSON(t, "/api/v1/subscriptions/"+created.Data.ID, &state) == http.StatusOK &&
			state.Data.Delivery.Cursor == uint64(len(kms))
	}, 10*time.Second, 50*time.Millisecond, "the cursor reached the last offset")
	assert.False(t, state.Data.Delivery.Disabled)
	t.Logf("%d requests; %d killmails were in flight at the kill and sent again", len(reqs), len(inFlight))
}

func TestServeWebhookFlags(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve", "--help"}, func(string) string { return "" }, &out, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, env := range []string{"WK_WEBHOOK_BACKOFF", "WK_WEBHOOK_MAX_FAILURE_AGE", "WK_WEBHOOK_ALLOW_PRIVATE"} {
		assert.Contains(t, out.String(), "["+env+"]")
	}
	for name, env := range map[string]map[string]string{
		"backoff":     {"WK_WEBHOOK_BACKOFF": "-1s"},
		"failure age": {"WK_WEBHOOK_MAX_FAILURE_AGE": "0s"},
		"bool":        {"WK_WEBHOOK_ALLOW_PRIVATE": "maybe"},
	} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), []string{"serve", "--data-dir", t.TempDir()}, func(k string) string { return env[k] }, &out, &out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "WEBHOOK", "names the variable: %v", err)
		})
	}
}
