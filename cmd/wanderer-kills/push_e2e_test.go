package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/bench"
	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

const e2eKey = "e2e-push-key"

// pushAnswer is the 200 answer of POST /api/v1/killmails.
type pushAnswer struct {
	Accepted   int               `json:"accepted"`
	Duplicates int               `json:"duplicates"`
	Rejected   []json.RawMessage `json:"rejected"`
}

// pushBatch is the fixture killmails with at most 10 attackers (few
// names to look up) as ESI bodies with their killmail_hash and a zkb
// block carrying a label.
func pushBatch(t *testing.T, up *fakeupstream.Server) ([]fakeupstream.Killmail, []byte) {
	t.Helper()
	var kms []fakeupstream.Killmail
	var items []map[string]any
	for _, km := range up.Killmails() {
		if km.Attackers > 10 {
			continue
		}
		kms = append(kms, km)
		var m map[string]any
		require.NoError(t, json.Unmarshal(km.ESI, &m))
		m["killmail_hash"] = km.Hash
		m["zkb"] = map[string]any{"hash": km.Hash, "totalValue": 1e6, "labels": []string{"e2e:push"}}
		items = append(items, m)
	}
	b, err := json.Marshal(items)
	require.NoError(t, err)
	return kms, b
}

// push POSTs a body with a key ("" for none).
func (p *proc) push(t *testing.T, key string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.base+"/api/v1/killmails", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, b
}

// TestServePushKill9: a batch pushed into the real binary is durable
// once the 200 arrives: SIGKILL right after it loses nothing, and the
// restarted binary knows every killmail (a second push is all
// duplicates).
func TestServePushKill9(t *testing.T) {
	up := fakeupstream.New(t, fakeupstream.Options{})
	kms, body := pushBatch(t, up)
	total := len(kms)
	require.Greater(t, total, 20)
	dataDir := filepath.Join(t.TempDir(), "store")
	p := startServe(t, dataDir, up, "--source", "none", "--api-key", e2eKey)

	code, b := p.push(t, "", body)
	require.Equal(t, http.StatusUnauthorized, code, "%s", b)
	code, b = p.push(t, e2eKey, body)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done
	require.Equal(t, http.StatusOK, code, "%s", b)
	var ans pushAnswer
	require.NoError(t, json.Unmarshal(b, &ans))
	require.Equal(t, pushAnswer{Accepted: total, Rejected: []json.RawMessage{}}, ans)

	st, err := store.Open(context.Background(), store.Config{Dir: dataDir})
	require.NoError(t, err)
	assert.EqualValues(t, total, st.Count())
	for _, km := range kms {
		ent, err := st.Get(context.Background(), km.ID)
		require.NoError(t, err, "killmail %d survived the kill", km.ID)
		got, err := ent.Killmail()
		require.NoError(t, err)
		require.NotNil(t, got.ZKB)
		assert.Equal(t, []string{"e2e:push"}, got.ZKB.Labels)
	}
	require.NoError(t, st.Close())

	p2 := startServe(t, dataDir, up, "--source", "none", "--api-key", e2eKey)
	code, b = p2.push(t, e2eKey, body)
	require.Equal(t, http.StatusOK, code, "%s", b)
	require.NoError(t, json.Unmarshal(b, &ans))
	assert.Equal(t, pushAnswer{Duplicates: total, Rejected: []json.RawMessage{}}, ans)
}

// TestServePushOffWithoutKey: without --api-key the route is the /api/v1
// 404.
func TestServePushOffWithoutKey(t *testing.T) {
	up := fakeupstream.New(t, fakeupstream.Options{})
	p := startServe(t, filepath.Join(t.TempDir(), "store"), up, "--source", "none")
	_, body := pushBatch(t, up)
	code, b := p.push(t, e2eKey, body)
	require.Equal(t, http.StatusNotFound, code, "%s", b)
	assert.Contains(t, string(b), `"code":"NOT_FOUND"`)
}

// TestServePushLoad drives the real binary from outside with the bench
// push load: WebSocket clients receive every pushed killmail.
func TestServePushLoad(t *testing.T) {
	up := fakeupstream.New(t, fakeupstream.Options{})
	p := startServe(t, filepath.Join(t.TempDir(), "store"), up, "--source", "none", "--api-key", e2eKey)
	rep, err := bench.PushLoad(context.Background(), bench.PushConfig{BaseURL: p.base, APIKey: e2eKey,
		Clients: 3, Systems: 10, Rate: 500, BatchSize: 25, Total: 200, Drain: 30 * time.Second,
		Gen: bench.GenConfig{Characters: 50, Corporations: 10, Alliances: 5, FleetFights: -1}})
	require.NoError(t, err)
	t.Log(rep)
	assert.Empty(t, rep.Errors)
	assert.Equal(t, 200, rep.Accepted)
	assert.Equal(t, 600, rep.Delivered)
	assert.Zero(t, rep.Lost())
	assert.Equal(t, 200, p.stored(t))
}
