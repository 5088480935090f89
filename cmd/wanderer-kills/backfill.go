package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/data"
	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

const backfillSummary = `Import history into the store offline: EVE Ref daily archives, JSONL files and
zKillboard's daily history. It uses the same store and environment as serve and
refuses to run while a serve holds the store (stop it first). Backfilled
killmails are indexed and served like live ones; live subscribers are not sent
them unless --notify is set. Progress is kept in the store: a second run adds
nothing, an interrupted run resumes where it stopped.

--everef and --jsonl take every file that follows them (--everef a.tar.bz2
b.tar.bz2 --jsonl c.jsonl); "-" reads JSONL from standard input.`

// backfillFlags is the configuration of `backfill`.
type backfillFlags struct {
	storeFlags
	everef        fileList
	jsonl         fileList
	zkbHistory    string
	noEnrich      bool
	notify        bool
	zkbBlocks     bool
	batch         int
	workers       int
	zkbRate       int
	enrichTimeout time.Duration
	progressEvery time.Duration
	zkbURL        string
	esiURL        string
	userAgent     string

	days []time.Time // parsed from zkbHistory
}

// fileList is a flag that may be given many times.
type fileList []string

func (l *fileList) String() string     { return strings.Join(*l, " ") }
func (l *fileList) Set(v string) error { *l = append(*l, v); return nil }

func (f *backfillFlags) register(fs *flagSet) {
	f.storeFlags.register(fs)
	fs.Var(&f.everef, "everef", "EVE Ref daily archives (killmails-YYYY-MM-DD.tar.bz2) to import")
	fs.Var(&f.jsonl, "jsonl", "JSONL files of ESI killmails or R2Z2 documents, one per line (- is standard input)")
	fs.str(&f.zkbHistory, "zkb-history", "", "", "UTC days FROM[:TO] (YYYY-MM-DD or YYYYMMDD, TO included) of zKillboard history to import; bodies come from ESI")
	fs.boolean(&f.noEnrich, "no-enrich", "WK_BACKFILL_NO_ENRICH", false, "store killmails without asking ESI for names")
	fs.boolean(&f.notify, "notify", "WK_BACKFILL_NOTIFY", false, "also push the backfilled killmails to live subscribers")
	fs.boolean(&f.zkbBlocks, "zkb-blocks", "WK_BACKFILL_ZKB_BLOCKS", true, "with --zkb-history, ask zKillboard for each killmail's zkb block (one request each, at --zkb-rate)")
	fs.integer(&f.batch, "batch", "WK_BACKFILL_BATCH", 500, "killmails per synced commit")
	fs.integer(&f.workers, "workers", "WK_BACKFILL_WORKERS", 0, "parallel decoders; 0 means one per CPU")
	fs.integer(&f.zkbRate, "zkb-rate", "WK_ZKB_RATE", 1, "zKillboard API requests per second")
	fs.duration(&f.enrichTimeout, "enrich-timeout", "WK_BACKFILL_ENRICH_TIMEOUT", 2*time.Minute, "time allowed to name one batch; names still missing are added later by serve")
	fs.duration(&f.progressEvery, "progress-interval", "WK_BACKFILL_PROGRESS_INTERVAL", 10*time.Second, "how often progress is logged when stderr is not a terminal")
	fs.str(&f.zkbURL, "zkb-url", "WK_ZKB_URL", "https://zkillboard.com/api", "zKillboard API base URL")
	fs.str(&f.esiURL, "esi-url", "WK_ESI_URL", "https://esi.evetech.net/latest", "ESI base URL")
	fs.str(&f.userAgent, "user-agent", "WK_USER_AGENT", defaultUserAgent(), "User-Agent of every outbound request")
}

func (f *backfillFlags) validate(now time.Time) error {
	if err := f.storeFlags.validate(); err != nil {
		return err
	}
	if len(f.everef) == 0 && len(f.jsonl) == 0 && f.zkbHistory == "" {
		return errors.New("nothing to import: give --everef, --jsonl or --zkb-history")
	}
	if f.batch < 1 || f.workers < 0 || f.zkbRate < 1 || f.enrichTimeout <= 0 || f.progressEvery <= 0 {
		return errors.New("--batch and --zkb-rate must be >= 1, --workers >= 0, --enrich-timeout and --progress-interval > 0")
	}
	if f.zkbHistory == "" {
		return nil
	}
	days, err := parseDays(f.zkbHistory, now)
	f.days = days
	return err
}

// maxDays bounds one --zkb-history range (about three years).
const maxDays = 1100

// parseDays reads FROM[:TO] into the UTC days from FROM to TO included.
func parseDays(s string, now time.Time) ([]time.Time, error) {
	from, to, ok := strings.Cut(s, ":")
	if !ok {
		to = from
	}
	first, err := parseDay(from)
	if err != nil {
		return nil, err
	}
	last, err := parseDay(to)
	if err != nil {
		return nil, err
	}
	today := now.UTC().Truncate(24 * time.Hour)
	switch {
	case last.Before(first):
		return nil, fmt.Errorf("--zkb-history %s: TO is before FROM", s)
	case last.After(today):
		return nil, fmt.Errorf("--zkb-history %s: %s is in the future", s, last.Format(time.DateOnly))
	case last.Sub(first) > maxDays*24*time.Hour:
		return nil, fmt.Errorf("--zkb-history %s: more than %d days; split the range", s, maxDays)
	}
	var days []time.Time
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	return days, nil
}

func parseDay(s string) (time.Time, error) {
	for _, layout := range []string{time.DateOnly, "20060102"} {
		if d, err := time.Parse(layout, s); err == nil {
			return d, nil
		}
	}
	return time.Time{}, fmt.Errorf("--zkb-history: %q is not a day (YYYY-MM-DD or YYYYMMDD)", s)
}

// listFlags take every argument that follows them, up to the next flag.
var listFlags = map[string]bool{"everef": true, "jsonl": true}

// expandLists turns "--everef a b --jsonl c" into "--everef a --everef b
// --jsonl c" for the flag package, which takes one value per flag.
func expandLists(args []string) ([]string, error) {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...), nil
		}
		if !strings.HasPrefix(a, "-") || !listFlags[strings.TrimLeft(a, "-")] {
			out = append(out, a)
			continue
		}
		n := 0
		for ; i+1 < len(args) && (args[i+1] == "-" || !strings.HasPrefix(args[i+1], "-")); i++ {
			out = append(out, a, args[i+1])
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("%s needs at least one file", a)
		}
	}
	return out, nil
}

func runBackfill(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	fset := newFlagSet("backfill", backfillSummary, env, stderr)
	var f backfillFlags
	f.register(fset)
	args, err := expandLists(args)
	if err != nil {
		return err
	}
	if err := fset.parse(args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (files follow --everef or --jsonl)", fset.Arg(0))
	}
	if err := f.validate(time.Now()); err != nil {
		return err
	}
	return f.withStore(ctx, stderr, func(st *store.Store, log *slog.Logger) error {
		if f.retentionDays > 0 {
			log.Warn("serve deletes killmails older than the retention period, backfilled ones too", "retention_days", f.retentionDays)
		}
		return f.run(ctx, st, os.Stdin, stdout, stderr, log)
	})
}

// run wires the backfill over an open store and imports every source. A
// nil log discards the logs.
func (f *backfillFlags) run(ctx context.Context, st *store.Store, stdin io.Reader, stdout, stderr io.Writer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := &http.Client{}
	esiCfg := esi.Config{BaseURL: f.esiURL, UserAgent: f.userAgent, NameStore: st}
	if err := esiCfg.Validate(); err != nil {
		return err
	}
	client := esi.New(hc, esiCfg, log)
	esiCtx, stopESI := context.WithCancel(context.WithoutCancel(ctx))
	esiDone := make(chan error, 1)
	go func() { esiDone <- client.Run(esiCtx) }()
	defer func() {
		stopESI() // writes the names it learned
		<-esiDone
	}()
	var names ingest.Enricher = noNames{}
	if !f.noEnrich {
		catalog, err := data.Load()
		if err != nil {
			return err
		}
		names = esi.NewEnricher(client, catalog)
	}
	pipe := ingest.NewPipeline(st, client, names, ingest.PipelineConfig{Quiet: !f.notify, EnrichTimeout: f.enrichTimeout}, log)
	zkbCfg := ingest.ZKBConfig{URL: f.zkbURL, UserAgent: f.userAgent, RatePerSecond: float64(f.zkbRate)}
	if err := zkbCfg.Validate(); err != nil {
		return err
	}
	zkb := ingest.NewZKB(zkbCfg, hc, log)
	bf := ingest.NewBackfill(pipe, st, zkb, ingest.BackfillConfig{Batch: f.batch, Workers: f.workers, ZKBBlocks: f.zkbBlocks}, log)
	imp := &importer{f: f, bf: bf, stdin: stdin, log: log}
	return imp.all(ctx, stdout, stderr)
}

// noNames is the enricher of --no-enrich.
type noNames struct{}

func (noNames) EnrichMany(context.Context, []*store.Killmail) error { return nil }

// sourceResult is what one file or day gave.
type sourceResult struct {
	name  string
	tally ingest.Tally
	err   error
}

// importer runs the sources one after another and keeps their results.
type importer struct {
	f     *backfillFlags
	bf    *ingest.Backfill
	stdin io.Reader
	log   *slog.Logger
	prog  *progress

	results []sourceResult
}

func (m *importer) all(ctx context.Context, stdout, stderr io.Writer) error {
	m.prog = newProgress(m.f.everef, m.f.jsonl, len(m.f.days))
	start := time.Now()
	stopMeter := startMeter(ctx, stderr, m.f.progressEvery, m.bf.Totals, m.prog.fraction, m.log)
	for _, p := range m.f.everef {
		m.file(ctx, p, m.bf.EVERef)
	}
	for _, p := range m.f.jsonl {
		m.file(ctx, p, m.bf.JSONL)
	}
	for _, d := range m.f.days {
		if ctx.Err() != nil {
			break
		}
		t, err := m.bf.ZKBDay(ctx, d)
		m.add(d.Format(time.DateOnly)+" (zKillboard)", t, err)
		m.prog.dayDone()
	}
	stopMeter()
	total := m.bf.Totals()
	writeSummary(stdout, m.results, total, time.Since(start))
	return m.verdict(ctx, total)
}

// importFunc is Backfill.EVERef or Backfill.JSONL.
type importFunc func(ctx context.Context, name string, size int64, r io.Reader) (ingest.Tally, error)

// file imports one file; "-" is standard input, imported without
// progress.
func (m *importer) file(ctx context.Context, path string, fn importFunc) {
	if ctx.Err() != nil {
		return
	}
	if path == "-" {
		t, err := fn(ctx, "", 0, m.stdin)
		m.add("standard input", t, err)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		m.add(path, ingest.Tally{}, err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		m.add(path, ingest.Tally{}, err)
		return
	}
	t, err := fn(ctx, filepath.Base(path), fi.Size(), m.prog.reader(f))
	m.prog.fileDone(fi.Size())
	m.add(filepath.Base(path), t, err)
}

func (m *importer) add(name string, t ingest.Tally, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		m.log.Error("source failed", "source", name, "err", err)
	}
	m.results = append(m.results, sourceResult{name: name, tally: t, err: err})
}

// verdict fails the run when it was interrupted, or when nothing could be
// read at all; bad records and some failed sources are only reported.
func (m *importer) verdict(ctx context.Context, total ingest.Tally) error {
	if ctx.Err() != nil {
		return fmt.Errorf("backfill interrupted; its progress is saved: run the same command again to resume")
	}
	failed := 0
	for _, r := range m.results {
		if r.err != nil {
			failed++
		}
	}
	if failed > 0 && total.Read == 0 && total.Skipped == 0 {
		return fmt.Errorf("backfill: nothing could be read (%d of %d sources failed)", failed, len(m.results))
	}
	return nil
}
