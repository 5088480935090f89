// Package server is the HTTP face of the service: the REST routes of the
// original WandererKills (API.md §2), the /api/v2 query API on the bitmap
// indexes, operations endpoints (/metrics, /healthz, /readyz, OpenAPI), and
// the live feeds: the hub that follows the store's write log and fans each
// killmail out to WebSocket (Phoenix channels), SSE and webhook
// subscribers.
//
// Handlers are methods on *Server registered in one place (routes.go) and
// end in writeJSON or one of the error writers (respond.go). server imports
// store, index, esi and ingest; nothing imports server but cmd.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// Config configures a Server. Zero values are defaults.
type Config struct {
	// Addr is the listen address. Zero means ":4004".
	Addr string
	// APIKey, when set, is required as "Authorization: Bearer <key>" on the
	// write routes (subscriptions, push ingest). Reads stay public.
	APIKey string
	// MaxBodyBytes caps request bodies (413 beyond). Zero means 1 MiB.
	MaxBodyBytes int64
	// ReadHeaderTimeout, ReadTimeout and IdleTimeout bound the server's
	// connections; streams are not cut by them (writes have no deadline,
	// handlers set their own). Zero means 10s, 30s and 120s.
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown. Zero means 15s.
	ShutdownTimeout time.Duration
	// Version is reported by /health and /status.
	Version string
	// Registry receives the server's metrics and is what /metrics serves.
	// Nil means a private registry, which also gets the Go and process
	// collectors (a registry passed in is the caller's to equip).
	Registry *prometheus.Registry
	// Logger receives server logs. Nil discards them.
	Logger *slog.Logger
	// Live configures the live feeds (WebSocket, SSE): queues, limits,
	// timeouts. Zero values are defaults (see HubConfig).
	Live HubConfig
	// Push configures POST /api/v1/killmails (PushConfig).
	Push PushConfig
	// Webhooks configures webhook delivery (env WK_WEBHOOK_*). Zero
	// values are defaults (see WebhookConfig).
	Webhooks WebhookConfig
}

func (c *Config) defaults() {
	if c.Addr == "" {
		c.Addr = ":4004"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 15 * time.Second
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Deps are the parts the server talks to. Store is required; the others
// may be nil: without a Fetcher a killmail the store lacks is 404, without
// Feed or ESI their figures read as absent.
type Deps struct {
	Store *store.Store
	// Fetcher fetches killmails the store lacks for /api/v1/killmail/:id.
	Fetcher Fetcher
	// Feed reports the live ingest feed (the running ingest.Source).
	Feed FeedStatus
	// ESI reports the ESI client (*esi.Client).
	ESI ESIStatus
	// Push stores pushed killmails (the ingest pipeline); with APIKey it enables POST /api/v1/killmails.
	Push ingest.Processor
}

// Server serves HTTP. Build it with New, then call Run.
type Server struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	started time.Time
	router  *httprouter.Router
	hub     *Hub
	handler http.Handler
	http    *httpMetrics
	prom    http.Handler
	// dash is the dashboard's state: the ingest-rate sampler, the stats
	// streams and the rendered page.
	dash dashboard
	// draining is set when graceful shutdown starts: /readyz and /health
	// then answer 503 so balancers stop sending traffic.
	draining atomic.Bool

	// shutdownHooks run when Run begins its graceful shutdown, before
	// http.Server.Shutdown returns: they end hijacked and streaming
	// connections, which Shutdown does not wait for.
	hooksMu       sync.Mutex
	shutdownHooks []func()

	// webhooks owns the webhook subscriptions and their deliveries.
	webhooks *Webhooks
}

// New builds a server. It does not listen until Run.
func New(cfg Config, deps Deps) (*Server, error) {
	private := cfg.Registry == nil
	cfg.defaults()
	if deps.Store == nil {
		return nil, errors.New("server: Deps.Store is required")
	}
	hub, err := NewHub(deps.Store, cfg.Live, cfg.Registry, cfg.Logger)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		deps:    deps,
		log:     cfg.Logger.With("component", "server"),
		started: time.Now(),
		hub:     hub,
		http:    newHTTPMetrics(),
	}
	// Webhooks load their subscriptions from the store here, once.
	s.webhooks, err = NewWebhooks(context.Background(), deps.Store, hub, cfg.Webhooks, cfg.Registry, cfg.Logger)
	if err != nil {
		return nil, err
	}
	s.onShutdown(s.shutdownLive)
	if err := s.registerMetrics(cfg.Registry, private); err != nil {
		return nil, err
	}
	s.prom = s.promHandler()
	s.router = s.routes()
	s.handler = s.middleware(s.router)
	return s, nil
}

// Handler returns the server's HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// onShutdown registers fn to run when graceful shutdown starts.
func (s *Server) onShutdown(fn func()) {
	s.hooksMu.Lock()
	defer s.hooksMu.Unlock()
	s.shutdownHooks = append(s.shutdownHooks, fn)
}

// Run listens on Config.Addr and serves until ctx ends, then shuts down
// gracefully: in-flight requests finish, streams are closed with a final
// message, within ShutdownTimeout. It returns nil after a clean shutdown.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on an existing listener, which it closes.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer s.startLive(ctx)()
	defer s.startWebhooks(ctx)()
	defer s.startDashboard(ctx)()
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
	s.draining.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.hooksMu.Lock()
	hooks := append([]func(){}, s.shutdownHooks...)
	s.hooksMu.Unlock()
	for _, h := range hooks {
		h()
	}
	err := hs.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}
