package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"runtime/debug"
	"time"
)

// middleware wraps the router with what every request gets: a request id,
// HEAD served as GET, the body limit (413 beyond it), HTTP metrics by
// route pattern, and recovery from a handler panic into the original's
// 500 JSON.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		w.Header().Set("X-Request-Id", requestID())
		rec := &recorder{ResponseWriter: w}
		info := &routeInfo{pattern: unmatchedRoute}
		// WithContext copies the request: net/http still sees HEAD on its
		// own copy and drops the body.
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, info))
		if r.Method == http.MethodHead {
			r.Method = http.MethodGet
		}
		defer s.observe(rec, r.Method, info, start)
		defer s.recoverPanic(rec, r)
		limit := s.bodyLimit(r)
		if r.ContentLength > limit {
			bodyTooLarge(rec, limit)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(rec, r.Body, limit)
		}
		next.ServeHTTP(rec, r)
	})
}

func (s *Server) recoverPanic(rec *recorder, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.log.ErrorContext(r.Context(), "handler panic", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
	if !rec.wrote {
		writeJSON(rec, http.StatusInternalServerError, map[string]string{"error": "Internal Server Error", "status": "500"})
	}
}

// unmatchedRoute labels requests no route matched, so metrics never carry
// raw paths.
const unmatchedRoute = "unmatched"

// routeKey is the context key of the *routeInfo of a request.
type routeKey struct{}

// routeInfo is filled by the route wrapper so that the outer middleware
// can label the request with its route pattern.
type routeInfo struct {
	pattern string
	stream  bool
}

// route returns the route info of a request (nil outside the middleware).
func routeOf(r *http.Request) *routeInfo {
	info, _ := r.Context().Value(routeKey{}).(*routeInfo)
	return info
}

// recorder remembers the status of a response. It passes Flush and Hijack
// through, which the SSE and WebSocket handlers need.
type recorder struct {
	http.ResponseWriter
	status   int
	wrote    bool
	hijacked bool
}

// WriteHeader records the status.
func (rw *recorder) WriteHeader(code int) {
	if !rw.wrote {
		rw.status, rw.wrote = code, true
	}
	rw.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (rw *recorder) Write(b []byte) (int, error) {
	if !rw.wrote {
		rw.status, rw.wrote = http.StatusOK, true
	}
	return rw.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer when it can.
func (rw *recorder) Flush() {
	if !rw.wrote {
		rw.status, rw.wrote = http.StatusOK, true
	}
	_ = http.NewResponseController(rw.ResponseWriter).Flush()
}

// Hijack hands the connection over (WebSocket upgrades).
func (rw *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := rw.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("server: response does not support hijacking")
	}
	c, brw, err := h.Hijack()
	if err == nil {
		rw.hijacked = true
		rw.status, rw.wrote = http.StatusSwitchingProtocols, true
	}
	return c, brw, err
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

func requestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
