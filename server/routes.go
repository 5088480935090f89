package server

import (
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// route is one entry of the route table.
type route struct {
	method string
	// path is the httprouter pattern; the OpenAPI document has the same
	// path with {name} for :name.
	path   string
	handle httprouter.Handle
	// accepts lists the media types the route serves; a request whose
	// Accept header admits none of them gets 406 (API.md §1). Nil checks
	// nothing (streams check their own way).
	accepts []string
	// stream marks long-lived responses (SSE, WebSocket): counted, but
	// kept out of the duration histogram.
	stream bool
}

// routeTable lists every route of the service: method, path, handler.
// The OpenAPI document is checked against this table by a test, so a
// route added here needs its operation in openapi.json.
func (s *Server) routeTable() []route {
	return []route{
		// Infra (API.md §2, rows 2-10).
		{method: http.MethodGet, path: "/", handle: s.dashboardHTML, accepts: acceptsHTML},
		{method: http.MethodGet, path: "/dashboard", handle: s.dashboardHTML},
		{method: http.MethodGet, path: "/api/v1/stats/stream", handle: s.statsStream, stream: true},
		{method: http.MethodGet, path: "/ping", handle: s.ping, accepts: acceptsInfra},
		{method: http.MethodGet, path: "/health", handle: s.health, accepts: acceptsInfra},
		{method: http.MethodGet, path: "/api/health", handle: s.health, accepts: acceptsInfra},
		{method: http.MethodGet, path: "/healthz", handle: s.healthz, accepts: acceptsInfra},
		{method: http.MethodGet, path: "/readyz", handle: s.readyz, accepts: acceptsInfra},
		{method: http.MethodGet, path: "/status", handle: s.status, accepts: acceptsInfra},
		{method: http.MethodGet, path: "/metrics", handle: s.metricsRoute, accepts: acceptsMetrics},
		{method: http.MethodGet, path: "/websocket", handle: s.websocketInfo, accepts: acceptsInfra},
		{method: http.MethodGet, path: "/websocket/status", handle: s.websocketStatus, accepts: acceptsInfra},
		{method: http.MethodGet, path: "/api/openapi", handle: s.openAPI, accepts: acceptsJSON},
		{method: http.MethodGet, path: "/api/openapi.json", handle: s.openAPI, accepts: acceptsJSON},

		// Kills (API.md §2.5-2.9), served from the store.
		{method: http.MethodGet, path: "/api/v1/kills/system/:system_id", handle: s.systemKills, accepts: acceptsJSON},
		{method: http.MethodPost, path: "/api/v1/kills/systems", handle: s.bulkSystemKills, accepts: acceptsJSON},
		{method: http.MethodGet, path: "/api/v1/kills/cached/:system_id", handle: s.cachedKills, accepts: acceptsJSON},
		{method: http.MethodGet, path: "/api/v1/killmail/:killmail_id", handle: s.killmail, accepts: acceptsJSON},
		{method: http.MethodGet, path: "/api/v1/kills/count/:system_id", handle: s.killCount, accepts: acceptsJSON},
		{method: http.MethodPost, path: pushPath, handle: s.pushRoute(), accepts: acceptsJSON},

		// Live feeds (API.md §4, §5): WebSocket channels and SSE streams.
		{method: http.MethodGet, path: "/socket/websocket", handle: s.socketWebsocket, stream: true},
		{method: http.MethodGet, path: "/api/v1/kills/stream", handle: s.killStream, stream: true},
		{method: http.MethodGet, path: "/api/v1/kills/stream/enhanced", handle: s.killStreamEnhanced, stream: true},
		{method: http.MethodGet, path: "/api/v1/kills/stream/stats", handle: s.killStreamStats, accepts: acceptsJSON},

		// Webhook subscriptions (API.md §6). GET :id serves the stats for
		// "stats": httprouter cannot register /subscriptions/stats beside
		// /subscriptions/:id. DELETE's :id is a subscriber id.
		{method: http.MethodPost, path: "/api/v1/subscriptions", handle: s.requireKey(s.createSubscription), accepts: acceptsJSON},
		{method: http.MethodGet, path: "/api/v1/subscriptions", handle: s.listSubscriptions, accepts: acceptsJSON},
		{method: http.MethodGet, path: "/api/v1/subscriptions/:id", handle: s.subscriptionByID, accepts: acceptsJSON},
		{method: http.MethodDelete, path: "/api/v1/subscriptions/:id", handle: s.requireKey(s.deleteSubscriber), accepts: acceptsJSON},

		// Queries on the indexes.
		{method: http.MethodGet, path: "/api/v2/killmails", handle: s.queryKillmails, accepts: acceptsJSON},
	}
}

// routes builds the router from the route table. Unknown paths and
// methods get the 404 shapes of API.md §1.
func (s *Server) routes() *httprouter.Router {
	r := httprouter.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = false
	r.NotFound = http.HandlerFunc(notFound)
	for _, rt := range s.routeTable() {
		r.Handle(rt.method, rt.path, s.wrapRoute(rt))
	}
	return r
}

// wrapRoute labels the request with its route pattern for the metrics
// and applies the route's Accept check.
func (s *Server) wrapRoute(rt route) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		if info := routeOf(r); info != nil {
			info.pattern, info.stream = rt.path, rt.stream
		}
		if rt.accepts != nil && !acceptable(r.Header.Get("Accept"), rt.accepts) {
			notAcceptable(w)
			return
		}
		rt.handle(w, r, ps)
	}
}

func (s *Server) ping(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("pong"))
}

func (s *Server) metricsRoute(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s.metrics(w, r)
}
