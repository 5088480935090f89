package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/data"
	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
	"github.com/wanderer-industries/wanderer-kills-go/server"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// fetchEnv is the server with the real fallback: ingest.Lookup over the
// zKillboard client, the pipeline and the ESI client, all talking HTTP to
// the fake upstream that serves the real fixtures.
func fetchEnv(t *testing.T) (*apiEnv, *fakeupstream.Server) {
	t.Helper()
	fu := fakeupstream.New(t, fakeupstream.Options{})
	st, err := store.Open(context.Background(), store.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	ec := esi.New(nil, esi.Config{BaseURL: fu.ESIURL(), Retries: -1, RatePerSecond: 1000, Burst: 1000}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ec.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	cat, err := data.Load()
	require.NoError(t, err)
	pipe := ingest.NewPipeline(st, ec, esi.NewEnricher(ec, cat), ingest.PipelineConfig{}, nil)
	zkb := ingest.NewZKB(ingest.ZKBConfig{URL: fu.ZKBURL(), RatePerSecond: 1000, Burst: 1000}, nil, nil)
	e := newAPIEnvOn(t, st, func(_ *server.Config, d *server.Deps) {
		d.Fetcher = ingest.NewLookup(zkb, pipe, st)
		d.ESI = ec
	})
	return e, fu
}

// TestKillmailFetchedUpstream: a killmail the store lacks is fetched from
// zKillboard and ESI, enriched, stored, and served; the next request is
// served from the store without asking upstream again.
func TestKillmailFetchedUpstream(t *testing.T) {
	e, fu := fetchEnv(t)
	km := fu.Killmails()[5]
	path := "/api/v1/killmail/" + strconv.FormatInt(km.ID, 10)
	_, err := e.st.Get(context.Background(), km.ID)
	require.ErrorIs(t, err, store.ErrNotFound)

	r := e.get(path)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var body struct {
		Data store.Killmail `json:"data"`
	}
	require.NoError(t, json.Unmarshal(r.body, &body))
	assert.Equal(t, km.ID, body.Data.KillmailID)
	require.NotNil(t, body.Data.ZKB, "the zkb block came with it")
	assert.NotEmpty(t, body.Data.ZKB.Hash)
	assert.NotEmpty(t, body.Data.Victim.ShipName, "enriched")

	stored, err := e.st.Get(context.Background(), km.ID)
	require.NoError(t, err, "stored")
	assert.JSONEq(t, string(stored.JSON), string(mustField(t, r.body, "data")))

	zkbCalls := fu.Stats().Requests[fakeupstream.ZKB]
	r = e.get(path)
	require.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, zkbCalls, fu.Stats().Requests[fakeupstream.ZKB], "second answer from the store")
}

func TestKillmailUnknownUpstream(t *testing.T) {
	e, _ := fetchEnv(t)
	r := e.get("/api/v1/killmail/999999999")
	require.Equal(t, http.StatusNotFound, r.status, "%s", r.body)
	assert.Equal(t, map[string]any{"error": "Killmail not found", "code": "NOT_FOUND", "details": nil},
		withoutTimestamps(t, r.object(t)))
}

func TestKillmailUpstreamDown(t *testing.T) {
	e, fu := fetchEnv(t)
	fu.SetFaults(fakeupstream.ZKB, fakeupstream.Faults{FailRate: 1})
	r := e.get("/api/v1/killmail/" + strconv.FormatInt(fu.Killmails()[0].ID, 10))
	require.Equal(t, http.StatusInternalServerError, r.status, "%s", r.body)
	assert.Equal(t, map[string]any{"error": "Failed to fetch killmail", "code": "FETCH_ERROR",
		"details": map[string]any{"reason": "Internal Server Error"}}, withoutTimestamps(t, r.object(t)))
	assert.Equal(t, http.StatusOK, e.get("/health").status)
}

func mustField(t *testing.T, body []byte, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &m))
	return m[key]
}
