package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/bench"
)

const benchSummary = `Measure the service on this machine and print a table: durable ingest from a
file, queries over the store it built, subscription matching, live fan-out to
real WebSocket and SSE clients over loopback, and reopening the store. The
clients run in a child process (this binary with --client-load) on the same
CPUs as the server. --quick finishes in under a minute on 2 cores, the full run
in under ten. --out FILE.json also writes FILE.md (a summary) and FILE.svg
(delivery latency against clients). Missed targets are reported, not errors,
unless --strict.

Scenarios: ingest, query, match, fanout_ws, fanout_sse, restart, and push (this
binary's serve in its own process, driven through POST /api/v1/killmails);
fanout means both fan-outs. --scenario may be repeated, take a comma list, or be
followed by names.`

// benchFlags is the configuration of `bench`.
type benchFlags struct {
	quick      bool
	strict     bool
	out        string
	scenarios  nameList
	dir        string
	killmails  int
	seed       int
	wsClients  string
	sseClients string
	rate       int
	publishFor time.Duration
	model      string
	perClient  int
	cpuProfile string
	render     string
	clientLoad bool

	ws, sse []int // parsed from wsClients and sseClients
}

// nameList is a flag that may be given many times.
type nameList []string

func (l *nameList) String() string     { return strings.Join(*l, ",") }
func (l *nameList) Set(v string) error { *l = append(*l, v); return nil }

func (f *benchFlags) register(fs *flagSet) {
	fs.boolean(&f.quick, "quick", "WK_BENCH_QUICK", false, "smaller sizes: under a minute on 2 cores")
	fs.boolean(&f.strict, "strict", "WK_BENCH_STRICT", false, "exit non-zero when a target is missed")
	fs.str(&f.out, "out", "WK_BENCH_OUT", "", "write the JSON report here (and the .md summary and .svg plot beside it)")
	fs.Var(&f.scenarios, "scenario", "scenario to run (repeatable, or a comma list); default all but push")
	fs.str(&f.dir, "dir", "WK_BENCH_DIR", "", "where the run's temporary data goes; empty means the system temp directory")
	fs.integer(&f.killmails, "killmails", "WK_BENCH_KILLMAILS", 0, "killmails to ingest; 0 means 100,000 (quick) or 1,000,000")
	fs.integer(&f.seed, "seed", "WK_BENCH_SEED", 1, "seed of the generated killmails")
	fs.str(&f.wsClients, "ws-clients", "WK_BENCH_WS_CLIENTS", "", "WebSocket client counts to measure, comma-separated; empty means 500,1000,2000 (quick) or 1000,2500,5000,10000")
	fs.str(&f.sseClients, "sse-clients", "WK_BENCH_SSE_CLIENTS", "", "SSE client counts to measure; empty means 250,500,1000 (quick) or 1000,2500,5000")
	fs.integer(&f.rate, "publish-rate", "WK_BENCH_PUBLISH_RATE", 20, "killmails committed per second in the fan-out scenarios")
	fs.duration(&f.publishFor, "publish-for", "WK_BENCH_PUBLISH_FOR", 0, "how long to publish at each client count; 0 means 3s (quick) or 10s")
	fs.str(&f.model, "fanout-model", "WK_BENCH_FANOUT_MODEL", bench.FanoutModelMap,
		"fan-out subscriptions: map (each client follows --systems-per-client systems drawn by popularity) or broadcast (every killmail to every client)")
	fs.integer(&f.perClient, "systems-per-client", "WK_BENCH_SYSTEMS_PER_CLIENT", 50, "systems each client follows in the map model, 1 to 100")
	fs.str(&f.cpuProfile, "cpuprofile", "", "", "write a CPU profile of the run (server side) to this file")
	fs.str(&f.render, "render", "", "", "run nothing: write the .md summary and .svg plot of this existing JSON report beside it")
	fs.boolean(&f.clientLoad, "client-load", "", false, "internal: serve as the client load of a parent bench on stdin/stdout")
}

func runBench(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) error {
	var f benchFlags
	fs := newFlagSet("bench", benchSummary, env, stderr)
	f.register(fs)
	// Scenario names may follow --scenario as separate words, between
	// flags: parse again after each run of names.
	for rest := args; ; {
		if err := fs.parse(rest); err != nil {
			return err
		}
		rest = fs.Args()
		for len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
			f.scenarios, rest = append(f.scenarios, rest[0]), rest[1:]
		}
		if len(rest) == 0 {
			break
		}
	}
	if f.clientLoad {
		return bench.ServeClientLoad(ctx, os.Stdin, stdout)
	}
	if f.render != "" {
		return renderReport(f.render)
	}
	if err := f.validate(); err != nil {
		return err
	}
	if f.cpuProfile != "" {
		stop, err := bench.StartCPUProfile(f.cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find own executable for the client load: %w", err)
	}
	rep, err := bench.Run(ctx, bench.Options{
		Quick:            f.quick,
		Scenarios:        f.scenarios,
		Dir:              f.dir,
		Seed:             uint64(f.seed),
		Killmails:        f.killmails,
		WSClients:        f.ws,
		SSEClients:       f.sse,
		PublishRate:      f.rate,
		PublishFor:       f.publishFor,
		FanoutModel:      f.model,
		SystemsPerClient: f.perClient,
		ClientCommand:    []string{exe, "bench", "--client-load"},
		Binary:           exe,
		Version:          version,
		Commit:           gitCommit(ctx),
		Log:              stderr,
	})
	if err != nil {
		return err
	}
	if err := rep.WriteTable(stdout); err != nil {
		return err
	}
	if f.out != "" {
		if err := writeBenchFiles(rep, f.out, true); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "report written to", f.out)
	}
	if failed := rep.Failed(); f.strict && len(failed) > 0 {
		return fmt.Errorf("bench: targets missed in %s", strings.Join(failed, ", "))
	}
	return nil
}

func (f *benchFlags) validate() error {
	if f.killmails < 0 || f.seed < 0 || f.rate <= 0 || f.publishFor < 0 {
		return errors.New("bench: --killmails, --seed and --publish-for must not be negative, --publish-rate must be positive")
	}
	var err error
	if f.ws, err = counts("--ws-clients", f.wsClients); err != nil {
		return err
	}
	f.sse, err = counts("--sse-clients", f.sseClients)
	return err
}

// counts parses a comma-separated list of positive client counts.
func counts(flag, list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bench: %s: %q is not a positive count", flag, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// gitCommit describes the checkout the bench runs in (the report's
// machine.commit), or "" when git cannot tell; the build info and the
// version are the fallbacks.
func gitCommit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty", "--abbrev=12").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// renderReport rewrites the summary and plot of a JSON report.
func renderReport(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return fmt.Errorf("bench: %s: %w", path, err)
	}
	return writeBenchFiles(&rep, path, false)
}

// writeBenchFiles writes the JSON report to out (unless only the others
// are wanted), and the Markdown summary and SVG plot beside it (same
// name, .md and .svg).
func writeBenchFiles(rep *bench.Report, out string, withJSON bool) error {
	base := strings.TrimSuffix(out, filepath.Ext(out))
	if dir := filepath.Dir(out); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("bench: %w", err)
		}
	}
	svg := base + ".svg"
	files := []struct {
		path  string
		write func(io.Writer) error
	}{
		{out, rep.WriteJSON},
		{base + ".md", func(w io.Writer) error { return rep.WriteMarkdown(w, filepath.Base(svg)) }},
		{svg, rep.WriteSVG},
	}
	if !withJSON {
		files = files[1:]
	}
	for _, w := range files {
		if err := writeFile(w.path, w.write); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if err := write(f); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}
