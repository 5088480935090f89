package server

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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/data"
	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

const pushKey = "push-s3cret"

// pushEnv is the server with push ingest on: a real store, the real
// pipeline enriching from the fake ESI over HTTP, the hub's tail running,
// and the handler behind httptest.NewServer.
type pushEnv struct {
	t   *testing.T
	st  *store.Store
	srv *Server
	ts  *httptest.Server
}

func newPushEnv(t *testing.T, mut ...func(*Config)) *pushEnv {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	cfg := Config{Version: "test", APIKey: pushKey, ShutdownTimeout: 5 * time.Second}
	for _, m := range mut {
		m(&cfg)
	}
	srv, err := New(cfg, Deps{Store: st, Push: pushPipeline(t, st)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	waitLive := srv.startLive(ctx)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		srv.shutdownLive()
		ts.Close()
		cancel()
		waitLive()
		require.NoError(t, st.Close())
	})
	return &pushEnv{t: t, st: st, srv: srv, ts: ts}
}

// pushPipeline is the live feeds' pipeline over st, fetching names from
// the fake ESI over HTTP.
func pushPipeline(t *testing.T, st *store.Store) *ingest.Pipeline {
	t.Helper()
	fu := fakeupstream.New(t, fakeupstream.Options{})
	ec := esi.New(nil, esi.Config{BaseURL: fu.ESIURL(), Retries: -1, RatePerSecond: 1000, Burst: 1000}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ec.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	cat, err := data.Load()
	require.NoError(t, err)
	return ingest.NewPipeline(st, ec, esi.NewEnricher(ec, cat), ingest.PipelineConfig{}, nil)
}

// push POSTs a body; hdr is name, value pairs (the right key unless an
// Authorization is given).
func (e *pushEnv) push(body []byte, hdr ...string) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+pushPath, bytes.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+pushKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := e.ts.Client().Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	return res.StatusCode, res.Header, b
}

// pushOK pushes and decodes the 200 answer.
func (e *pushEnv) pushOK(body []byte, hdr ...string) pushReply {
	e.t.Helper()
	code, _, b := e.push(body, hdr...)
	require.Equal(e.t, http.StatusOK, code, "%s", b)
	var r pushReply
	require.NoError(e.t, json.Unmarshal(b, &r), "%s", b)
	return r
}

// esiBodies are the real ESI killmails of the fixtures, as JSON objects.
func esiBodies(t testing.TB) []map[string]any {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "fixtures", "killmails.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		require.NoError(t, dec.Decode(&m))
		out = append(out, m)
	}
	require.NoError(t, sc.Err())
	return out
}

func idOf(t testing.TB, m map[string]any) int64 {
	t.Helper()
	id, err := m["killmail_id"].(json.Number).Int64()
	require.NoError(t, err)
	return id
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// withHash returns a copy of an ESI body carrying its killmail_hash.
func withHash(m map[string]any, extra ...any) map[string]any {
	c := make(map[string]any, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	c["killmail_hash"] = "cea7da03d815cbe8d5db3d135ed6f7e3a6ec2e60"
	for i := 0; i+1 < len(extra); i += 2 {
		c[extra[i].(string)] = extra[i+1]
	}
	return c
}

func TestPushAuth(t *testing.T) {
	km := withHash(esiBodies(t)[0])
	body := mustJSON(t, km)
	t.Run("off without a key", func(t *testing.T) {
		e := newPushEnv(t, func(c *Config) { c.APIKey = "" })
		code, _, b := e.push(body, "Authorization", "")
		require.Equal(t, http.StatusNotFound, code, "%s", b)
		assert.Contains(t, string(b), `"code":"NOT_FOUND"`)
		assert.Contains(t, string(b), `"error":"Not Found"`)
	})
	t.Run("off without a processor", func(t *testing.T) {
		s := openTestServer(t, Config{APIKey: pushKey})
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, pushPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+pushKey)
		s.Handler().ServeHTTP(rec, req)
		assert.Equal(t, http.StatusNotFound, rec.Code)
	})
	e := newPushEnv(t)
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"wrong", "Bearer not-the-key", http.StatusUnauthorized},
		{"not bearer", "Basic " + pushKey, http.StatusUnauthorized},
		{"right", "Bearer " + pushKey, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, hdr, b := e.push(body, "Authorization", tc.auth)
			require.Equal(t, tc.want, code, "%s", b)
			if code == http.StatusUnauthorized {
				assert.Contains(t, string(b), `"code":"UNAUTHORIZED"`)
				assert.NotEmpty(t, hdr.Get("WWW-Authenticate"))
			}
		})
	}
	_, err := e.st.Get(context.Background(), idOf(t, km))
	require.NoError(t, err, "stored by the authorized push")
}

// TestPushBatch: a batch of good, duplicate and invalid items; each is
// reported, the good ones are stored enriched with their labels as given
// and delivered to a WebSocket client speaking Phoenix V2.
func TestPushBatch(t *testing.T) {
	e := newPushEnv(t)
	const system = 30000142
	bodies := esiBodies(t)
	ws := dialWS(t, e.ts.Listener.Addr().String(), "2.0.0")
	status, resp := ws.call(lobbyTopic, evJoin, map[string]any{"systems": []int64{system}})
	require.Equal(t, "ok", status, resp)

	good := withHash(bodies[0], "solar_system_id", system, "unexpected_top_level", map[string]any{"x": 1},
		"zkb", map[string]any{"hash": "cea7da03d815cbe8d5db3d135ed6f7e3a6ec2e60", "totalValue": 1.5e6,
			"labels": []string{"wkbench:sent:123", "Custom Label ✓"}})
	doc, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "r2z2", "900002.json"))
	require.NoError(t, err)
	var r2z2 map[string]any
	require.NoError(t, json.Unmarshal(doc, &r2z2))
	r2z2["esi"].(map[string]any)["solar_system_id"] = system
	r2z2ID := int64(r2z2["killmail_id"].(float64))
	invalid := withHash(bodies[2])
	invalid["victim"] = map[string]any{"ship_type_id": 0, "damage_taken": 5}
	noKey := bodies[3] // neither killmail_hash nor zkb
	idOnly := map[string]any{"killmail_id": 12345, "zkb": map[string]any{"hash": "abcdef"}}

	batch := []any{good, r2z2, good, invalid, noKey, 42, idOnly}
	r := e.pushOK(mustJSON(t, batch))
	assert.Equal(t, 2, r.Accepted)
	assert.Equal(t, 1, r.Duplicates, "the second copy of the first killmail")
	ids := func(v int64) *int64 { return &v }
	assert.Equal(t, []pushRejected{
		{Index: 3, KillmailID: ids(idOf(t, bodies[2])), Error: "invalid killmail: victim.ship_type_id: must be a positive type id"},
		{Index: 4, KillmailID: ids(idOf(t, bodies[3])), Error: "invalid killmail: killmail_hash: is required (or a zkb block)"},
		{Index: 5, Error: r.Rejected[2].Error},
		{Index: 6, KillmailID: ids(12345), Error: "invalid killmail: victim: is required (push the killmail body, not only its id and hash)"},
	}, r.Rejected)
	assert.Contains(t, r.Rejected[2].Error, "not a JSON object")

	// Stored (durable before the answer), enriched, labels as given.
	ent, err := e.st.Get(context.Background(), idOf(t, good))
	require.NoError(t, err)
	km, err := ent.Killmail()
	require.NoError(t, err)
	assert.EqualValues(t, system, km.SystemID)
	require.NotNil(t, km.ZKB)
	assert.Equal(t, []string{"wkbench:sent:123", "Custom Label ✓"}, km.ZKB.Labels)
	assert.NotEmpty(t, km.Victim.ShipName, "enriched")
	_, err = e.st.Get(context.Background(), r2z2ID)
	require.NoError(t, err)
	for _, bad := range []map[string]any{invalid, noKey} {
		_, err = e.st.Get(context.Background(), idOf(t, bad))
		require.ErrorIs(t, err, store.ErrNotFound)
	}

	// Delivered live, once each.
	got := map[int64]phxFrame{}
	for len(got) < 2 {
		f := ws.event("killmail_update")
		assert.Equal(t, false, f.object(t)["preload"])
		for _, id := range killIDsOf(t, f) {
			got[id] = f
		}
	}
	assert.Contains(t, got, r2z2ID)
	assert.Contains(t, string(got[idOf(t, good)].Payload), `"labels":["wkbench:sent:123","Custom Label ✓"]`)

	// Pushing a stored killmail again is a duplicate.
	r = e.pushOK(mustJSON(t, r2z2))
	assert.Equal(t, pushReply{Duplicates: 1, Rejected: []pushRejected{}}, r)
}

// TestPushNDJSON: JSON lines, blank lines skipped, a bad line refused
// alone.
func TestPushNDJSON(t *testing.T) {
	e := newPushEnv(t)
	bodies := esiBodies(t)
	var body bytes.Buffer
	body.Write(mustJSON(t, withHash(bodies[0])))
	body.WriteString("\n\n  \r\n")
	body.WriteString(`{"killmail_id": 7, "victim": {`)
	body.WriteString("\n")
	body.Write(mustJSON(t, withHash(bodies[1])))
	r := e.pushOK(body.Bytes(), "Content-Type", "application/x-ndjson")
	assert.Equal(t, 2, r.Accepted)
	require.Len(t, r.Rejected, 1)
	assert.Equal(t, 1, r.Rejected[0].Index)
	assert.Contains(t, r.Rejected[0].Error, "garbage")
}

func TestPushBadBodies(t *testing.T) {
	e := newPushEnv(t)
	for _, tc := range []struct {
		name, body, code string
	}{
		{"empty", "", "INVALID_JSON"},
		{"empty array", "[]", "INVALID_JSON"},
		{"malformed array", `[{"killmail_id": 1},`, "INVALID_JSON"},
		{"malformed object", `{"killmail_id": 1`, "INVALID_JSON"},
		{"trailing data", `{"killmail_id": 1} {}`, "INVALID_JSON"},
		{"a number", `42`, "INVALID_JSON"},
		{"too many", "[" + strings.Repeat("{},", 1000) + "{}]", "TOO_MANY_KILLMAILS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, b := e.push([]byte(tc.body))
			require.Equal(t, http.StatusBadRequest, code, "%s", b)
			assert.Contains(t, string(b), `"code":"`+tc.code+`"`)
		})
	}
}

// TestPushBodyLimit: the route takes bodies past the global 1 MiB cap,
// up to its own 8 MiB; beyond is 413, announced or not.
func TestPushBodyLimit(t *testing.T) {
	e := newPushEnv(t)
	km := mustJSON(t, withHash(esiBodies(t)[0]))
	padded := append(append([]byte("["), km...), append(bytes.Repeat([]byte(" "), 2<<20), ']')...)
	r := e.pushOK(padded)
	assert.Equal(t, 1, r.Accepted, "a 2 MiB body is fine here")

	huge := append(append([]byte("["), km...), append(bytes.Repeat([]byte(" "), 8<<20), ']')...)
	code, _, b := e.push(huge)
	require.Equal(t, http.StatusRequestEntityTooLarge, code, "%s", b)
	assert.Contains(t, string(b), `"code":"BODY_TOO_LARGE"`)
	assert.Contains(t, string(b), strconv.Itoa(8<<20))

	// Without Content-Length (chunked) the reader stops at the limit.
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+pushPath, io.MultiReader(bytes.NewReader(huge)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+pushKey)
	req.ContentLength = -1
	res, err := e.ts.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)

	// Other routes keep the global cap.
	res, err = http.Post(e.ts.URL+"/api/v1/kills/systems", "application/json", bytes.NewReader(padded))
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
}

// TestPushRateLimit: past the key's burst the route answers 429 with
// Retry-After; refused keys do not spend the budget.
func TestPushRateLimit(t *testing.T) {
	e := newPushEnv(t, func(c *Config) { c.Push = PushConfig{RatePerSecond: 0.001, Burst: 2} })
	for range 3 {
		code, _, _ := e.push([]byte(`[42]`), "Authorization", "Bearer wrong")
		require.Equal(t, http.StatusUnauthorized, code)
	}
	for range 2 {
		e.pushOK([]byte(`[42]`))
	}
	code, hdr, b := e.push([]byte(`[42]`))
	require.Equal(t, http.StatusTooManyRequests, code, "%s", b)
	assert.Contains(t, string(b), `"code":"RATE_LIMITED"`)
	secs, err := strconv.Atoi(hdr.Get("Retry-After"))
	require.NoError(t, err)
	assert.Greater(t, secs, 100)
}

// TestPushStoreDown: when the store cannot commit, the answer is 503 and
// nothing is reported accepted.
func TestPushStoreDown(t *testing.T) {
	st, err := store.Open(context.Background(), store.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	s, err := New(Config{APIKey: pushKey}, Deps{Store: st, Push: pushPipeline(t, st)})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, pushPath, bytes.NewReader(mustJSON(t, withHash(esiBodies(t)[0]))))
	req.Header.Set("Authorization", "Bearer "+pushKey)
	s.Handler().ServeHTTP(rec, req)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	assert.Contains(t, rec.Body.String(), `"code":"UNAVAILABLE"`)
}
