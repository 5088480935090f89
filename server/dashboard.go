package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
)

// webFiles are the dashboard's sources: one HTML template, its style
// sheet and its script, inlined into one page at first use. Nothing is
// fetched from elsewhere: the page needs only this binary.
//
//go:embed web/dashboard.html web/dashboard.css web/dashboard.js
var webFiles embed.FS

// acceptsHTML is what / serves: the original's "html" (API.md §1).
var acceptsHTML = []string{"text/html"}

// dashboard is the state behind the dashboard page and the stats stream.
// Its zero value is ready.
type dashboard struct {
	// ingest counts killmails appended per second and per minute; the
	// sampler started by Serve feeds it.
	ingest ingestRing
	// streams counts open stats streams.
	streams atomic.Int64

	pageOnce sync.Once
	page     dashboardPage
	pageErr  error

	stopOnce  sync.Once
	stopCh    chan struct{}
	closeOnce sync.Once
}

// dashboardPage is the rendered page with its headers.
type dashboardPage struct {
	body []byte
	etag string
	// csp allows exactly the inline style sheet and script (by hash),
	// connections back to this server, and nothing else.
	csp string
}

// stopped returns the channel closed when graceful shutdown starts.
func (d *dashboard) stopped() <-chan struct{} {
	d.stopOnce.Do(func() { d.stopCh = make(chan struct{}) })
	return d.stopCh
}

// shutdown ends the stats streams.
func (d *dashboard) shutdown() {
	d.stopped()
	d.closeOnce.Do(func() { close(d.stopCh) })
}

// startDashboard runs the ingest sampler until ctx ends and makes
// graceful shutdown end the stats streams; the returned function waits
// for the sampler to stop.
func (s *Server) startDashboard(ctx context.Context) (wait func()) {
	s.onShutdown(s.dash.shutdown)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.dash.ingest.run(ctx, s.deps.Store.Head, time.Second)
	}()
	return func() { <-done }
}

// dashboardHTML serves / and /dashboard: the status page. It is static;
// the figures come from /api/v1/stats/stream, the killmails from
// /api/v2/killmails and /api/v1/kills/stream.
func (s *Server) dashboardHTML(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s.dash.pageOnce.Do(func() { s.dash.page, s.dash.pageErr = renderDashboard() })
	if s.dash.pageErr != nil {
		s.log.Error("dashboard page", "err", s.dash.pageErr)
		// The original's shape for a page that failed (API.md §2 row 1).
		writeJSON(w, http.StatusInternalServerError, map[string]string{
			"error": "Internal server error", "message": "Failed to load status page"})
		return
	}
	p := &s.dash.page
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", p.etag)
	h.Set("Content-Security-Policy", p.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	if etagMatches(r.Header.Get("If-None-Match"), p.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(p.body)
}

// renderDashboard inlines the style sheet and the script into the page.
func renderDashboard() (dashboardPage, error) {
	read := func(name string) (string, error) {
		b, err := webFiles.ReadFile("web/" + name)
		if err != nil {
			return "", fmt.Errorf("server: dashboard: %w", err)
		}
		return string(b), nil
	}
	tmpl, err := template.ParseFS(webFiles, "web/dashboard.html")
	if err != nil {
		return dashboardPage{}, fmt.Errorf("server: dashboard: %w", err)
	}
	css, err := read("dashboard.css")
	if err != nil {
		return dashboardPage{}, err
	}
	js, err := read("dashboard.js")
	if err != nil {
		return dashboardPage{}, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, struct {
		CSS template.CSS
		JS  template.JS
	}{template.CSS(css), template.JS(js)}); err != nil {
		return dashboardPage{}, fmt.Errorf("server: dashboard: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return dashboardPage{
		body: buf.Bytes(),
		etag: `"` + hex.EncodeToString(sum[:12]) + `"`,
		csp: "default-src 'none'; script-src " + cspHash(js) + "; style-src " + cspHash(css) +
			"; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	}, nil
}

// cspHash is the CSP source expression of an inline element's text.
func cspHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// etagMatches reports whether an If-None-Match header names etag.
func etagMatches(header, etag string) bool {
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == etag || tag == "*" {
			return true
		}
	}
	return false
}
