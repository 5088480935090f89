package server_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAccept: /api routes serve JSON only, infra routes JSON and text;
// an Accept header admitting none of them is 406 (API.md §1).
func TestAccept(t *testing.T) {
	e := newAPIEnv(t)
	cases := []struct {
		path, accept string
		want         int
	}{
		{"/api/v1/kills/count/30000142", "", http.StatusOK},
		{"/api/v1/kills/count/30000142", "*/*", http.StatusOK},
		{"/api/v1/kills/count/30000142", "application/json", http.StatusOK},
		{"/api/v1/kills/count/30000142", "application/*", http.StatusOK},
		{"/api/v1/kills/count/30000142", "text/html, application/json;q=0.1", http.StatusOK},
		{"/api/v1/kills/count/30000142", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", http.StatusOK},
		{"/api/v1/kills/count/30000142", "text/html", http.StatusNotAcceptable},
		{"/api/v1/kills/count/30000142", "text/plain", http.StatusNotAcceptable},
		{"/api/v1/kills/count/30000142", "application/json;q=0", http.StatusNotAcceptable},
		{"/api/v1/kills/count/30000142", "garbage", http.StatusNotAcceptable},
		{"/api/v2/killmails", "image/png", http.StatusNotAcceptable},
		{"/api/openapi", "text/html", http.StatusNotAcceptable},
		{"/ping", "text/plain", http.StatusOK},
		{"/ping", "text/html", http.StatusNotAcceptable},
		{"/health", "text/*", http.StatusOK},
		{"/status", "application/json", http.StatusOK},
		{"/status", "application/xml", http.StatusNotAcceptable},
		{"/metrics", "application/openmetrics-text", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.path+" "+tc.accept, func(t *testing.T) {
			r := e.get(tc.path, "Accept", tc.accept)
			require.Equal(t, tc.want, r.status, "%s", r.body)
			if tc.want == http.StatusNotAcceptable {
				assert.Equal(t, map[string]any{"error": "Not Acceptable", "status": "406"}, r.object(t))
			}
		})
	}
}

// TestJSONContentType: every JSON answer says application/json;
// charset=utf-8 (API.md §9 item 15).
func TestJSONContentType(t *testing.T) {
	e := newAPIEnv(t)
	for _, path := range []string{"/health", "/status", "/websocket", "/websocket/status", "/api/openapi",
		"/api/v1/kills/system/30000142", "/api/v1/kills/system/x", "/api/v1/kills/cached/1", "/api/v1/killmail/1",
		"/api/v1/kills/count/1", "/api/v2/killmails", "/api/v2/killmails?limit=0", "/nope", "/readyz", "/healthz"} {
		r := e.get(path)
		assert.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"), path)
	}
}

// TestBodyLimit: bodies past 1 MiB are 413 JSON, whether the length is
// announced or the body is chunked; 1 MiB itself is fine.
func TestBodyLimit(t *testing.T) {
	e := newAPIEnv(t)
	const limit = 1 << 20
	want := map[string]any{"error": "Request body too large", "code": "BODY_TOO_LARGE",
		"details": map[string]any{"max_bytes": float64(limit)}}
	padded := func(size int) []byte {
		head := `{"system_ids":[30000142],"pad":"`
		return []byte(head + strings.Repeat("x", size-len(head)-2) + `"}`)
	}
	t.Run("exactly the limit", func(t *testing.T) {
		r := e.do(http.MethodPost, "/api/v1/kills/systems", padded(limit))
		assert.Equal(t, http.StatusOK, r.status, "%.200s", r.body)
	})
	t.Run("announced", func(t *testing.T) {
		r := e.do(http.MethodPost, "/api/v1/kills/systems", padded(limit+1))
		require.Equal(t, http.StatusRequestEntityTooLarge, r.status)
		assert.Equal(t, want, floats(withoutTimestamps(t, r.object(t))))
	})
	t.Run("chunked", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, e.ts.URL+"/api/v1/kills/systems",
			io.MultiReader(bytes.NewReader(padded(3*limit))))
		require.NoError(t, err)
		req.ContentLength = -1
		res, err := e.ts.Client().Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
		b, _ := io.ReadAll(res.Body)
		assert.Equal(t, want, floats(withoutTimestamps(t, apiResp{body: b}.object(t))))
	})
	t.Run("on any route", func(t *testing.T) {
		r := e.do(http.MethodPost, "/api/v1/nope", padded(2*limit))
		assert.Equal(t, http.StatusRequestEntityTooLarge, r.status)
	})
	assert.Equal(t, http.StatusOK, e.get("/health").status)
}

// TestBadInputKeepsServing throws hostile input at every route: each
// answer is a 4xx JSON error (naming the field where there is one), and
// the server stays healthy.
func TestBadInputKeepsServing(t *testing.T) {
	e := newAPIEnv(t)
	e.appendAll(apiFixtures(t)[:3]...)
	garbage := []byte("\x00\x01\xff\xfe{\"system_ids\":[\xc3\x28]}\x7f")
	requests := []struct {
		method, path string
		body         []byte
		field        string
	}{
		{"GET", "/api/v1/kills/system/99999999999999999999999", nil, ""},
		{"GET", "/api/v1/kills/system/%EF%BC%91%EF%BC%92", nil, ""},
		{"GET", "/api/v1/kills/system/1?limit=-1", nil, ""},
		{"GET", "/api/v1/killmail/%00", nil, ""},
		{"GET", "/api/v1/kills/count/%FF", nil, ""},
		{"POST", "/api/v1/kills/systems", garbage, "body"},
		{"POST", "/api/v1/kills/systems", []byte(`{"system_ids":[` + idList(10000, 1) + `]}`), "system_ids"},
		{"POST", "/api/v1/kills/systems", []byte(`{"system_ids":[1],"limit":-1}`), "limit"},
		{"POST", "/api/v1/kills/systems", []byte(`{"system_ids":`), "body"},
		{"GET", "/api/v2/killmails?system_id=" + idList(10000, 1), nil, "system_id"},
		{"GET", "/api/v2/killmails?character_id=99999999999999999999", nil, "character_id"},
		{"GET", "/api/v2/killmails?alliance_id=%EF%BC%91", nil, "alliance_id"},
		{"GET", "/api/v2/killmails?limit=-3", nil, "limit"},
		{"GET", "/api/v2/killmails?min_value=-1", nil, "min_value"},
		{"GET", "/api/v2/killmails?since=%FF%FE", nil, "since"},
		{"GET", "/api/v2/killmails?cursor=%00%01", nil, "cursor"},
		{"GET", "/api/v2/killmails?%zz=1", nil, "query"},
	}
	for _, rq := range requests {
		r := e.do(rq.method, rq.path, rq.body)
		require.Equal(t, http.StatusBadRequest, r.status, "%s %.80s: %s", rq.method, rq.path, r.body)
		m := r.object(t)
		assert.NotEmpty(t, m["error"])
		if rq.field != "" {
			assert.Equal(t, rq.field, m["details"].(map[string]any)["field"], "%s %.80s", rq.method, rq.path)
		}
	}
	assert.Equal(t, http.StatusOK, e.get("/health").status)
	assert.Equal(t, http.StatusOK, e.get("/api/v2/killmails").status)
}

// floats turns json.Number values back into float64 for comparisons
// with literal maps.
func floats(m map[string]any) map[string]any {
	for k, v := range m {
		switch x := v.(type) {
		case map[string]any:
			m[k] = floats(x)
		case interface{ Float64() (float64, error) }:
			f, _ := x.Float64()
			m[k] = f
		}
	}
	return m
}
