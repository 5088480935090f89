package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/server"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// apiEnv is a real store in a temp dir behind the real server, over HTTP.
type apiEnv struct {
	t   testing.TB
	st  *store.Store
	srv *server.Server
	ts  *httptest.Server
}

// newAPIEnv opens a store and serves it; mut adjusts config and deps.
func newAPIEnv(t testing.TB, mut ...func(*server.Config, *server.Deps)) *apiEnv {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return newAPIEnvOn(t, st, mut...)
}

// newAPIEnvOn serves an open store.
func newAPIEnvOn(t testing.TB, st *store.Store, mut ...func(*server.Config, *server.Deps)) *apiEnv {
	t.Helper()
	cfg, deps := server.Config{Version: "test"}, server.Deps{Store: st}
	for _, m := range mut {
		m(&cfg, &deps)
	}
	srv, err := server.New(cfg, deps)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &apiEnv{t: t, st: st, srv: srv, ts: ts}
}

// apiResp is a response read whole.
type apiResp struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request; hdr is name, value pairs.
func (e *apiEnv) do(method, path string, body []byte, hdr ...string) apiResp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	require.NoError(e.t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.ts.Client().Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return apiResp{status: res.StatusCode, header: res.Header, body: b}
}

func (e *apiEnv) get(path string, hdr ...string) apiResp {
	return e.do(http.MethodGet, path, nil, hdr...)
}

// object decodes the body as a JSON object (numbers as json.Number).
func (r apiResp) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&m), "body: %s", r.body)
	return m
}

// withoutTimestamps drops the server-generated timestamps so a body can
// be compared exactly; it fails if the envelope lacks one.
func withoutTimestamps(t testing.TB, m map[string]any) map[string]any {
	t.Helper()
	ts, ok := m["timestamp"].(string)
	require.True(t, ok, "timestamp missing in %v", m)
	_, err := time.Parse("2006-01-02T15:04:05.000000Z", ts)
	require.NoError(t, err, "timestamp %q: six fractional digits, Z", ts)
	delete(m, "timestamp")
	return m
}

// apiFixtures decodes the 88 real killmails.
func apiFixtures(t testing.TB) []*store.Killmail {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "fixtures", "killmails.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var out []*store.Killmail
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	for sc.Scan() {
		km, err := esi.DecodeKillmail(sc.Bytes())
		require.NoError(t, err)
		out = append(out, km)
	}
	require.NoError(t, sc.Err())
	require.Len(t, out, 88)
	return out
}

// appendAll stores killmails and requires each to be added.
func (e *apiEnv) appendAll(kms ...*store.Killmail) {
	e.t.Helper()
	res, err := e.st.Append(context.Background(), store.Batch{Killmails: kms})
	require.NoError(e.t, err)
	for i, r := range res {
		require.Equal(e.t, store.Added, r.Status, "killmail %d: %v", kms[i].KillmailID, r.Err)
	}
}

// recentKill is a copy of a fixture moved to a system and a time.
func recentKill(km *store.Killmail, id, system int64, at time.Time) *store.Killmail {
	c := *km
	c.KillmailID, c.SystemID = id, system
	c.KillTime = store.Time{Time: at.UTC().Truncate(time.Second)}
	c.ZKB = &store.ZKB{Hash: "abcdef123456", TotalValue: float64(id) * 1000, Points: 1}
	return &c
}

// killIDs returns the killmail_id of each JSON killmail of a list.
func killIDs(t testing.TB, list any) []int64 {
	t.Helper()
	items, ok := list.([]any)
	require.True(t, ok, "not a list: %T", list)
	ids := make([]int64, len(items))
	for i, it := range items {
		n, err := it.(map[string]any)["killmail_id"].(json.Number).Int64()
		require.NoError(t, err)
		ids[i] = n
	}
	return ids
}
