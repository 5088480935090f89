package server

import (
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
)

// degradedConnections is the original's websocket.degraded_threshold.
const degradedConnections = 1000

// websocketInfo serves /websocket (API.md §2.4): how to connect. The
// limits are the original's static text.
func (s *Server) websocketInfo(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, map[string]any{
		"websocket_url": socketURL(r),
		"protocol":      "Phoenix Channels",
		"version":       "2.0.0",
		"channels":      map[string]string{"killmails": "killmails:lobby"},
		"authentication": map[string]any{
			"required": false, "type": "none",
			"description": "No authentication required for public killmail data",
		},
		"limits": map[string]any{
			"max_systems_per_subscription": 100, "timeout_seconds": 45, "rate_limit": "per_connection",
		},
		"documentation": map[string]string{
			"url":      "https://github.com/wanderer-industries/wanderer-kills",
			"examples": "/examples/websocket_client.ex",
		},
	})
}

// socketURL is ws[s]://host[:port]/socket for the request: wss when the
// request came over TLS (or a proxy says so), no port for 80 and 443.
func socketURL(r *http.Request) string {
	scheme := "ws"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "wss"
	}
	host := r.Host
	if h, port, err := net.SplitHostPort(host); err == nil && (port == "80" || port == "443") {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + host + "/socket"
}

// websocketStatus serves /websocket/status (API.md §2.4).
func (s *Server) websocketStatus(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	hs := s.hub.Stats()
	status := "operational"
	if hs.WebSocketConnections > degradedConnections {
		status = "degraded"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status":               status,
		"active_connections":   hs.WebSocketConnections,
		"active_subscriptions": hs.Subscriptions,
		"uptime_seconds":       int64(time.Since(s.started).Seconds()),
		"timestamp":            nowStamp(),
	})
}
