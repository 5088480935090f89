package server

import (
	"context"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
)

// liveShutdownTimeout bounds how long shutdown waits for live connections
// to take their final message.
const liveShutdownTimeout = 5 * time.Second

// socketWebsocket serves /socket/websocket: the Phoenix channel endpoint
// (API.md §4).
func (s *Server) socketWebsocket(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s.hub.serveWS(w, r)
}

// killStream serves /api/v1/kills/stream (API.md §5.2).
func (s *Server) killStream(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s.hub.serveSSE(w, r, sseStandard)
}

// killStreamEnhanced serves /api/v1/kills/stream/enhanced (API.md §5.3).
func (s *Server) killStreamEnhanced(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	s.hub.serveSSE(w, r, sseEnhanced)
}

// killStreamStats serves /api/v1/kills/stream/stats: the SSE figures.
func (s *Server) killStreamStats(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	hs := s.hub.Stats()
	epoch, offset := s.hub.Position()
	writeJSON(w, http.StatusOK, map[string]any{
		"active_connections": hs.SSEConnections,
		"max_connections":    s.hub.cfg.MaxSSEConnections,
		"epoch":              epoch,
		"offset":             offset,
		"timestamp":          nowStamp(),
	})
}

// startLive runs the hub's tail until ctx ends; the returned function
// waits for it to stop.
func (s *Server) startLive(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.hub.Run(ctx)
	}()
	return func() { <-done }
}

// shutdownLive is the shutdown hook of the live feeds: every WebSocket
// gets a close frame, every SSE stream a final event.
func (s *Server) shutdownLive() {
	ctx, cancel := context.WithTimeout(context.Background(), min(liveShutdownTimeout, s.cfg.ShutdownTimeout))
	defer cancel()
	if err := s.hub.Shutdown(ctx); err != nil {
		s.log.Warn("live connections did not all close in time", "err", err)
	}
}
