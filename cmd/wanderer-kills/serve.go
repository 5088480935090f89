package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/wanderer-industries/wanderer-kills-go/data"
	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/server"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// serveFlags is the configuration of `serve` (DESIGN.md §7).
type serveFlags struct {
	storeFlags
	port         int
	source       string
	r2z2URL      string
	r2z2Start    int
	r2z2Rate     int
	r2z2Idle     time.Duration
	redisqURL    string
	redisqQueue  string
	zkbURL       string
	esiURL       string
	userAgent    string
	apiKey       string
	maxConnPerIP int

	// Webhook delivery (server.WebhookConfig).
	webhookBackoff       time.Duration
	webhookMaxFailureAge time.Duration
	webhookAllowPrivate  bool
}

func (f *serveFlags) register(fs *flagSet) {
	f.storeFlags.register(fs)
	fs.integer(&f.port, "port", "PORT", 4004, "HTTP port")
	fs.str(&f.source, "source", "WK_SOURCE", "r2z2", "live feed: r2z2, redisq or none")
	fs.str(&f.r2z2URL, "r2z2-url", "WK_R2Z2_URL", "https://r2z2.zkillboard.com", "R2Z2 base URL (/ephemeral/... is appended)")
	fs.integer(&f.r2z2Start, "r2z2-start", "WK_R2Z2_START", 0, "R2Z2 sequence to start at on an empty store; 0 reads sequence.json")
	fs.integer(&f.r2z2Rate, "r2z2-rate", "WK_R2Z2_RATE", 10, "R2Z2 requests per second (under 20, zKillboard's limit)")
	fs.duration(&f.r2z2Idle, "r2z2-idle", "WK_R2Z2_IDLE", 6*time.Second, "pause after R2Z2 answers 404 (caught up) before asking again")
	fs.str(&f.redisqURL, "redisq-url", "WK_REDISQ_URL", "https://zkillredisq.stream/listen.php", "RedisQ endpoint")
	fs.str(&f.redisqQueue, "redisq-queue", "WK_REDISQ_QUEUE", "", "RedisQ queueID; empty means one stable id per data directory")
	fs.str(&f.zkbURL, "zkb-url", "WK_ZKB_URL", "https://zkillboard.com/api", "zKillboard API base URL")
	fs.str(&f.esiURL, "esi-url", "WK_ESI_URL", "https://esi.evetech.net/latest", "ESI base URL")
	fs.str(&f.userAgent, "user-agent", "WK_USER_AGENT", defaultUserAgent(), "User-Agent of every outbound request")
	fs.str(&f.apiKey, "api-key", "WK_API_KEY", "", "when set, write routes need 'Authorization: Bearer <key>'")
	fs.integer(&f.maxConnPerIP, "max-conn-per-ip", "WK_MAX_CONN_PER_IP", 100, "live connections (WebSocket + SSE) per client IP; negative means no cap")
	fs.duration(&f.webhookBackoff, "webhook-backoff", "WK_WEBHOOK_BACKOFF", 10*time.Second, "first retry delay of a failed webhook delivery; doubles per failure up to 1h, jittered")
	fs.duration(&f.webhookMaxFailureAge, "webhook-max-failure-age", "WK_WEBHOOK_MAX_FAILURE_AGE", 72*time.Hour, "a webhook failing this long without a success is disabled")
	fs.boolean(&f.webhookAllowPrivate, "webhook-allow-private", "WK_WEBHOOK_ALLOW_PRIVATE", false, "let webhook callback URLs reach loopback, private, link-local and metadata addresses")
}

func defaultUserAgent() string {
	return "wanderer-kills-go/" + version + " (+https://github.com/wanderer-industries/wanderer-kills-go)"
}

func (f *serveFlags) validate() error {
	if err := f.storeFlags.validate(); err != nil {
		return err
	}
	if f.port < 1 || f.port > 65535 {
		return fmt.Errorf("--port must be 1..65535, got %d", f.port)
	}
	switch f.source {
	case "r2z2", "redisq", "none":
	default:
		return fmt.Errorf("--source %q: want r2z2, redisq or none", f.source)
	}
	if f.r2z2Start < 0 {
		return fmt.Errorf("--r2z2-start must be >= 0, got %d", f.r2z2Start)
	}
	if f.webhookBackoff <= 0 {
		return fmt.Errorf("--webhook-backoff (WK_WEBHOOK_BACKOFF) must be positive, got %s", f.webhookBackoff)
	}
	if f.webhookMaxFailureAge <= 0 {
		return fmt.Errorf("--webhook-max-failure-age (WK_WEBHOOK_MAX_FAILURE_AGE) must be positive, got %s", f.webhookMaxFailureAge)
	}
	return nil
}

func runServe(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fset := newFlagSet("serve", "Run the service: live ingest, the store, the HTTP API and the live feeds.", env, stderr)
	var f serveFlags
	f.register(fset)
	if err := fset.parse(args); err != nil {
		return err
	}
	if err := f.validate(); err != nil {
		return err
	}
	return f.withStore(ctx, stderr, func(st *store.Store, log *slog.Logger) error {
		svc, err := f.build(st, log)
		if err != nil {
			return err
		}
		log.Info("serving", "version", version, "port", f.port, "source", f.source, "data_dir", f.dataDir,
			"killmails", st.Count(), "head", st.Head())
		return svc.run(ctx, log)
	})
}

// withStore makes the logger of f, opens the store of the data directory,
// runs fn with both and closes the store, logging a failure to close.
func (f storeFlags) withStore(ctx context.Context, stderr io.Writer, fn func(*store.Store, *slog.Logger) error) error {
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, f, log)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
	}()
	return fn(st, log)
}

// openStore opens the store of the data directory, explaining the usual
// reason it cannot be opened.
func openStore(ctx context.Context, f storeFlags, log *slog.Logger) (*store.Store, error) {
	recent := f.recentMB << 20
	if recent == 0 {
		recent = -1 // none
	}
	st, err := store.Open(ctx, store.Config{
		Dir:         f.dataDir,
		Retention:   time.Duration(f.retentionDays) * 24 * time.Hour,
		CacheBytes:  int64(f.cacheMB) << 20,
		RecentBytes: recent,
		Logger:      log,
	})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("the store in %s is held by another process (a running serve or backfill?): stop it or use another --data-dir: %w", f.dataDir, err)
	}
	return st, err
}

// service is every long-running part of `serve`, wired.
type service struct {
	st       *store.Store
	esi      *esi.Client
	pipeline *ingest.Pipeline
	source   ingest.Source
	server   *server.Server
}

func (f *serveFlags) build(st *store.Store, log *slog.Logger) (*service, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Every component sets its own per-request timeouts; the client follows
	// redirects (RedisQ answers 302).
	hc := &http.Client{}
	esiCfg := esi.Config{BaseURL: f.esiURL, UserAgent: f.userAgent, NameStore: st, Registerer: reg}
	if err := esiCfg.Validate(); err != nil {
		return nil, err
	}
	esiClient := esi.New(hc, esiCfg, log)
	catalog, err := data.Load()
	if err != nil {
		return nil, err
	}
	pipe := ingest.NewPipeline(st, esiClient, esi.NewEnricher(esiClient, catalog), ingest.PipelineConfig{Registerer: reg}, log)
	source, err := f.feed(hc, pipe, st, reg, log)
	if err != nil {
		return nil, err
	}
	zkb := ingest.NewZKB(ingest.ZKBConfig{URL: f.zkbURL, UserAgent: f.userAgent, Registerer: reg}, hc, log)
	srv, err := server.New(server.Config{
		Addr:     fmt.Sprintf(":%d", f.port),
		APIKey:   f.apiKey,
		Version:  version,
		Registry: reg,
		Logger:   log,
		Live:     server.HubConfig{MaxConnPerIP: f.maxConnPerIP},
		Webhooks: server.WebhookConfig{
			Backoff: f.webhookBackoff, MaxFailureAge: f.webhookMaxFailureAge, AllowPrivate: f.webhookAllowPrivate,
		},
	}, server.Deps{
		Store:   st,
		Fetcher: ingest.NewLookup(zkb, pipe, st),
		Feed:    source,
		ESI:     esiClient,
		Push:    pipe,
	})
	if err != nil {
		return nil, err
	}
	return &service{st: st, esi: esiClient, pipeline: pipe, source: source, server: srv}, nil
}

// feed builds the live feed chosen by --source.
func (f *serveFlags) feed(hc *http.Client, pipe *ingest.Pipeline, st *store.Store, reg prometheus.Registerer, log *slog.Logger) (ingest.Source, error) {
	switch f.source {
	case "r2z2":
		cfg := ingest.R2Z2Config{URL: f.r2z2URL, Start: int64(f.r2z2Start), RatePerSecond: float64(f.r2z2Rate),
			NotFoundWait: f.r2z2Idle, UserAgent: f.userAgent, Registerer: reg}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return ingest.NewR2Z2(cfg, hc, pipe, st, log), nil
	case "redisq":
		cfg := ingest.RedisQConfig{URL: f.redisqURL, Queue: f.redisqQueue, UserAgent: f.userAgent, Registerer: reg}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return ingest.NewRedisQ(cfg, hc, pipe, st, log), nil
	}
	return ingest.None{}, nil
}

// run runs every part until ctx ends or one fails, then stops them in
// order: the feed first, then the HTTP server (which closes the live
// streams with a final message), then the ESI client (which flushes the
// names it learned); the caller closes the store last.
func (s *service) run(ctx context.Context, log *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
	feedCtx, stopFeed := context.WithCancel(gctx)
	defer stopFeed()
	g.Go(func() error { return s.source.Run(feedCtx) })
	g.Go(func() error { return s.pipeline.RunEnrichment(feedCtx) })
	g.Go(func() error { return s.st.Run(gctx) })
	esiCtx, stopESI := context.WithCancel(context.WithoutCancel(ctx))
	esiDone := make(chan error, 1)
	go func() { esiDone <- s.esi.Run(esiCtx) }()
	g.Go(func() error {
		err := s.server.Run(gctx)
		stopFeed()
		return err
	})
	err := g.Wait()
	stopESI()
	if eerr := <-esiDone; eerr != nil && !errors.Is(eerr, context.Canceled) {
		log.Error("esi client stopped", "err", eerr)
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("stopped")
	return err
}
