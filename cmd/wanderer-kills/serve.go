package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// serveFlags is the configuration of `serve` (DESIGN.md §7).
type serveFlags struct {
	storeFlags
	port        int
	source      string
	r2z2URL     string
	r2z2Start   int
	redisqURL   string
	redisqQueue string
	zkbURL      string
	esiURL      string
	userAgent   string
}

func (f *serveFlags) register(fs *flagSet) {
	f.storeFlags.register(fs)
	fs.integer(&f.port, "port", "PORT", 4004, "HTTP port")
	fs.str(&f.source, "source", "WK_SOURCE", "r2z2", "live feed: r2z2, redisq or none")
	fs.str(&f.r2z2URL, "r2z2-url", "WK_R2Z2_URL", "https://r2z2.zkillboard.com", "R2Z2 base URL (/ephemeral/... is appended)")
	fs.integer(&f.r2z2Start, "r2z2-start", "WK_R2Z2_START", 0, "R2Z2 sequence to start at on an empty store; 0 reads sequence.json")
	fs.str(&f.redisqURL, "redisq-url", "WK_REDISQ_URL", "https://zkillredisq.stream/listen.php", "RedisQ endpoint")
	fs.str(&f.redisqQueue, "redisq-queue", "WK_REDISQ_QUEUE", "", "RedisQ queueID; empty means one stable id per data directory")
	fs.str(&f.zkbURL, "zkb-url", "WK_ZKB_URL", "https://zkillboard.com/api", "zKillboard API base URL")
	fs.str(&f.esiURL, "esi-url", "WK_ESI_URL", "https://esi.evetech.net/latest", "ESI base URL")
	fs.str(&f.userAgent, "user-agent", "WK_USER_AGENT", defaultUserAgent(), "User-Agent of every outbound request")
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
	log, err := f.logger(stderr)
	if err != nil {
		return err
	}
	st, err := store.Open(ctx, store.Config{
		Dir:       f.dataDir,
		Retention: time.Duration(f.retentionDays) * 24 * time.Hour,
		Logger:    log,
	})
	if err != nil {
		return err
	}
	defer st.Close()
	log.Info("serving", "port", f.port, "source", f.source, "data_dir", f.dataDir)
	return st.Run(ctx)
}

func runBackfill(_ context.Context, _ []string, _ func(string) string, _, _ io.Writer) error {
	return fmt.Errorf("backfill: not yet implemented")
}

func runBench(_ context.Context, _ []string, _ func(string) string, _, _ io.Writer) error {
	return fmt.Errorf("bench: not yet implemented")
}
