package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/julienschmidt/httprouter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

func openTestServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	s, err := New(cfg, Deps{Store: st})
	require.NoError(t, err)
	return s
}

func TestRequireKey(t *testing.T) {
	write := func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) { w.WriteHeader(http.StatusCreated) }
	call := func(h httprouter.Handle, auth string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/v1/subscriptions", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		h(rec, req, nil)
		return rec
	}
	t.Run("no key configured: open", func(t *testing.T) {
		s := openTestServer(t, Config{})
		assert.Equal(t, http.StatusCreated, call(s.requireKey(write), "").Code)
	})
	s := openTestServer(t, Config{APIKey: "s3cret-key"})
	h := s.requireKey(write)
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"Bearer s3cret-key", http.StatusCreated},
		{"bearer s3cret-key", http.StatusCreated},
		{"Bearer  s3cret-key ", http.StatusCreated},
		{"", http.StatusUnauthorized},
		{"Bearer", http.StatusUnauthorized},
		{"Bearer ", http.StatusUnauthorized},
		{"Bearer s3cret-ke", http.StatusUnauthorized},
		{"Bearer s3cret-key2", http.StatusUnauthorized},
		{"Basic czNjcmV0LWtleQ==", http.StatusUnauthorized},
		{"s3cret-key", http.StatusUnauthorized},
	} {
		rec := call(h, tc.auth)
		require.Equal(t, tc.want, rec.Code, "%q", tc.auth)
		if tc.want == http.StatusUnauthorized {
			assert.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
			assert.Contains(t, rec.Body.String(), `"code":"UNAUTHORIZED"`)
			assert.Contains(t, rec.Body.String(), `"error":"Missing or invalid API key"`)
			assert.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
		}
	}
}

// TestReadsStayPublic: with a key set, every read route still answers
// without one.
func TestReadsStayPublic(t *testing.T) {
	s := openTestServer(t, Config{APIKey: "k"})
	for _, rt := range s.routeTable() {
		if rt.method != http.MethodGet || rt.stream {
			continue // streams never end; the live tests cover them
		}
		rec := httptest.NewRecorder()
		path := httprouterSample(rt.path)
		s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		assert.NotEqual(t, http.StatusUnauthorized, rec.Code, path)
	}
}
