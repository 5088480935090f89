package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// Scenario names, in the order the report lists them.
const (
	ScenarioIngest    = "ingest"
	ScenarioQuery     = "query"
	ScenarioMatch     = "match"
	ScenarioFanoutWS  = "fanout_ws"
	ScenarioFanoutSSE = "fanout_sse"
	ScenarioRestart   = "restart"
)

// ScenarioNames lists every scenario, in report order.
func ScenarioNames() []string {
	return []string{ScenarioIngest, ScenarioQuery, ScenarioMatch, ScenarioFanoutWS, ScenarioFanoutSSE, ScenarioRestart, ScenarioPush}
}

// Options configure a Run. Zero values are the defaults of the mode
// (Quick or full), listed on each field as quick / full.
type Options struct {
	// Quick runs smaller sizes (under a minute on 2 cores) instead of the
	// full run (under ten minutes).
	Quick bool
	// Scenarios selects scenarios by name (see ScenarioNames; "fanout"
	// means both fan-outs); empty means all but push, which runs only
	// when asked for (and needs Binary).
	// query and restart need the store ingest builds, so they run it too.
	Scenarios []string
	// Dir is where the run's data goes (a fresh directory inside it,
	// removed at the end). Empty means the system's temp directory.
	Dir string
	// Seed makes generated data repeatable.
	Seed uint64
	// Killmails is the size of the ingest file: 100,000 / 1,000,000.
	Killmails int
	// Queries is how many queries of each shape: 2,000 / 10,000.
	Queries int
	// MatchSubscribers is the hub's subscribers in the match scenario,
	// each with one system and five characters: 10,000.
	MatchSubscribers int
	// MatchKillmails and MatchFor: the killmails matched per round, and
	// the time to keep matching: 20,000 and 1s / 3s.
	MatchKillmails int
	MatchFor       time.Duration
	// WSClients and SSEClients are the client counts measured, in order
	// (the last is the headline): 500,1000,2000 / 1000,2500,5000,10000
	// and 250,500,1000 / 1000,2500,5000.
	WSClients, SSEClients []int
	// PublishRate and PublishFor: killmails committed per second and for
	// how long at each client count: 20/s for 3s / 10s.
	PublishRate int
	PublishFor  time.Duration
	// FanoutModel is the fan-out's subscription model (FanoutModels):
	// "map" (the default) or "broadcast", where every killmail goes to
	// every client.
	FanoutModel string
	// SystemsPerClient is how many systems each client follows in the map
	// model, 1 to 100: 50.
	SystemsPerClient int
	// ClientCommand starts the client load as a child process (its
	// standard input and output speak to ServeClientLoad). Empty runs the
	// clients in this process, where they share its file limit and count
	// in its memory figures: fine for tests, not for measuring.
	ClientCommand []string
	// Binary is the wanderer-kills executable the push scenario starts
	// (`serve`); empty skips that scenario.
	Binary string
	// PushRate, PushFor and PushClients shape the push scenario:
	// killmails POSTed per second, for how long, and the WebSocket
	// clients following them: 200/s for 3s to 100 clients / 500/s for
	// 10s to 500.
	PushRate    int
	PushFor     time.Duration
	PushClients int
	// Commit is reported as machine.commit; empty reads the build info.
	Commit string
	// Version is the binary's version, reported as machine.version.
	Version string
	// Log receives progress lines. Nil discards them.
	Log io.Writer
}

func (o *Options) defaults() {
	pick := func(quick, full int) int {
		if o.Quick {
			return quick
		}
		return full
	}
	setDefault(&o.Killmails, pick(100_000, 1_000_000))
	setDefault(&o.Queries, pick(2_000, 10_000))
	setDefault(&o.MatchSubscribers, 10_000)
	setDefault(&o.MatchKillmails, 20_000)
	setDefault(&o.MatchFor, time.Duration(pick(1, 3))*time.Second)
	setDefault(&o.PublishRate, 20)
	setDefault(&o.PublishFor, time.Duration(pick(3, 10))*time.Second)
	setDefault(&o.SystemsPerClient, 50)
	if o.FanoutModel == "" {
		o.FanoutModel = FanoutModelMap
	}
	setDefault(&o.PushRate, pick(200, 500))
	setDefault(&o.PushFor, time.Duration(pick(3, 10))*time.Second)
	setDefault(&o.PushClients, pick(100, 500))
	if len(o.WSClients) == 0 {
		o.WSClients = []int{500, 1000, 2000}
		if !o.Quick {
			o.WSClients = []int{1000, 2500, 5000, 10000}
		}
	}
	if len(o.SSEClients) == 0 {
		o.SSEClients = []int{250, 500, 1000}
		if !o.Quick {
			o.SSEClients = []int{1000, 2500, 5000}
		}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

func setDefault[T int | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// selected resolves the scenario names to a set, with what they need.
func selected(names []string, binary bool) (map[string]bool, error) {
	set := map[string]bool{}
	all := ScenarioNames()
	if len(names) == 0 {
		names = slices.DeleteFunc(slices.Clone(all), func(n string) bool { return n == ScenarioPush })
	}
	for _, n := range names {
		for _, n := range strings.Split(n, ",") {
			n = strings.TrimSpace(n)
			switch {
			case n == "":
			case n == "fanout":
				set[ScenarioFanoutWS], set[ScenarioFanoutSSE] = true, true
			case slices.Contains(all, n):
				set[n] = true
			default:
				return nil, fmt.Errorf("bench: unknown scenario %q (have %s, fanout)", n, strings.Join(all, ", "))
			}
		}
	}
	if set[ScenarioQuery] || set[ScenarioRestart] {
		set[ScenarioIngest] = true
	}
	if set[ScenarioPush] && !binary {
		return nil, errors.New("bench: the push scenario needs the wanderer-kills binary (Options.Binary)")
	}
	return set, nil
}

// runner is one Run's state.
type runner struct {
	o         Options
	dir       string
	templates []*store.Killmail
	start     time.Time
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.o.Log, "bench: "+format+"\n", args...)
}

// genConfig is the generator of every scenario but for its seed: kills
// over the 60 days before the run started, in arrival order over the
// ingest's killmails, as a live store holds them.
func (r *runner) genConfig(seed uint64) GenConfig {
	span := 60 * 24 * time.Hour
	return GenConfig{Seed: seed, Start: r.start.Add(-span).Truncate(time.Second), Span: span, Count: r.o.Killmails}
}

// Run runs the selected scenarios and returns the report. Missed targets
// are in the report (Verdict.Pass, Report.Failed), not errors.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	want, err := selected(o.Scenarios, o.Binary != "")
	if err != nil {
		return nil, err
	}
	if err := validSubscription(o.FanoutModel, o.SystemsPerClient); err != nil {
		return nil, err
	}
	tpl, err := Templates()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(o.Dir, "wanderer-kills-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)
	r := &runner{o: o, dir: dir, templates: tpl, start: time.Now()}
	load0 := loadAverage()
	rep := &Report{Mode: "full", StartedAt: r.start.UTC().Truncate(time.Second)}
	if o.Quick {
		rep.Mode = "quick"
	}
	limit := r.fitClients(want)
	rep.Machine = machine(o.Commit, limit, r.loadNote())
	rep.Machine.Version = o.Version
	if rep.Machine.Commit == "unknown" && o.Version != "" && o.Version != "dev" {
		rep.Machine.Commit = o.Version
	}
	if err := r.runAll(ctx, want, rep); err != nil {
		return nil, err
	}
	rep.Seconds = time.Since(r.start).Seconds()
	rep.Machine.LoadAverage = [2]float64{load0, loadAverage()}
	if rep.Machine.LoadAverage[0] > 1 || rep.Machine.LoadAverage[1] > 1 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Other work shared the machine: the 1-minute load average was %.1f at the start and %.1f at the end (%d CPUs).",
			load0, rep.Machine.LoadAverage[1], runtime.NumCPU()))
	}
	rep.Comparison = comparison(rep)
	rep.Notes = append(rep.Notes, r.loadNote(),
		"Latencies are wall-clock times on one machine: the commit time is taken when store.Append returns in the "+
			"server process, the read time when a client has read the whole frame.")
	if o.Quick {
		rep.Notes = append(rep.Notes, "Quick mode: smaller store and client counts than the full run (see bench/README.md).")
	}
	return rep, nil
}

func (r *runner) runAll(ctx context.Context, want map[string]bool, rep *Report) error {
	sc := &rep.Scenarios
	var err error
	// match needs no data: it runs first, in a process that has not yet
	// built and dropped a store of gigabytes (whose freed heap and page
	// faults would be measured with it).
	if want[ScenarioMatch] {
		if sc.Match, err = r.runMatch(ctx); err != nil {
			return err
		}
	}
	if want[ScenarioIngest] {
		res, st, err := r.runIngest(ctx)
		if err != nil {
			return err
		}
		sc.Ingest = res
		if want[ScenarioQuery] {
			if sc.Query, err = r.runQuery(ctx, st); err != nil {
				return errors.Join(err, st.Close())
			}
		}
		if want[ScenarioRestart] {
			if sc.Restart, err = r.runRestart(ctx, st, r.storeDir()); err != nil {
				return err
			}
		} else if err := st.Close(); err != nil {
			return err
		}
	}
	if want[ScenarioFanoutWS] {
		if sc.FanoutWS, err = r.fanout(ctx, transportWS, r.o.WSClients); err != nil {
			return err
		}
	}
	if want[ScenarioFanoutSSE] {
		if sc.FanoutSSE, err = r.fanout(ctx, transportSSE, r.o.SSEClients); err != nil {
			return err
		}
	}
	if want[ScenarioPush] {
		if sc.Push, err = r.runPush(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (r *runner) fanout(ctx context.Context, transport string, steps []int) (*FanoutResult, error) {
	res, err := r.runFanout(ctx, transport, steps)
	if err != nil {
		return nil, err
	}
	checks := []check{
		{figure: "delivery_p99_ms", atMost: true, limit: TargetFanoutP99ms, value: res.DeliveryP99ms},
		{figure: "delivered_ratio", limit: TargetDeliveredRatio, value: res.DeliveredRatio},
	}
	name := "WebSocket (Phoenix V2, /socket/websocket, joined to killmails:lobby)"
	if transport == transportWS {
		checks = append(checks, check{figure: "bytes_per_client", atMost: true, limit: TargetBytesPerClient, value: res.BytesPerClient})
	} else {
		name = "SSE (/api/v1/kills/stream?system_ids=…)"
	}
	follow := "each following one system, where every killmail is published, and one other: every killmail goes to every client"
	if r.o.FanoutModel == FanoutModelMap {
		follow = fmt.Sprintf("each following %d distinct systems drawn by the popularity the generated kills have "+
			"(busy systems have many followers): a killmail goes to the clients following its system", r.o.SystemsPerClient)
	}
	res.How = fmt.Sprintf("model %s: the real server in-process on 127.0.0.1 with its own store; %s clients over loopback "+
		"(%s), %s; %d generated killmails/s committed one per synced store.Append for %s at each client count; "+
		"delivered_ratio = killmail frames read / (for each killmail, the clients following its system); latency "+
		"from Append's return to the client having read the frame; bytes_per_client = server heap + stacks after GC "+
		"per idle subscribed client", res.Model, name, r.loadWhere(), follow, r.o.PublishRate, r.o.PublishFor)
	res.Verdict = verdict(checks...)
	return res, nil
}

func (r *runner) storeDir() string { return r.dir + string(os.PathSeparator) + "store" }

// fitClients raises the file limit for the largest client count and
// lowers the client counts that still do not fit, saying so.
func (r *runner) fitClients(want map[string]bool) uint64 {
	biggest := 0
	for _, n := range append(append([]int{}, r.o.WSClients...), r.o.SSEClients...) {
		biggest = max(biggest, n)
	}
	perClient := uint64(1) // the server's socket; the client's is in the child
	if len(r.o.ClientCommand) == 0 {
		perClient = 2
	}
	limit := RaiseFileLimit(perClient*uint64(biggest) + 1024)
	if !want[ScenarioFanoutWS] && !want[ScenarioFanoutSSE] {
		return limit
	}
	fit := max(1, int((limit-min(limit, 512))/perClient))
	capSteps := func(steps []int) []int {
		var out []int
		for _, n := range steps {
			if n > fit {
				r.logf("file limit %d: %d clients lowered to %d", limit, n, fit)
				n = fit
			}
			if len(out) == 0 || n > out[len(out)-1] {
				out = append(out, n)
			}
		}
		return out
	}
	r.o.WSClients, r.o.SSEClients = capSteps(r.o.WSClients), capSteps(r.o.SSEClients)
	return limit
}

func (r *runner) loadWhere() string {
	if len(r.o.ClientCommand) > 0 {
		return "a child process"
	}
	return "in the server's process"
}

func (r *runner) loadNote() string {
	return fmt.Sprintf("The client load shares this machine's %d CPUs with the server (clients run in %s); "+
		"the fan-out latencies include the clients' own CPU use.", runtime.NumCPU(), r.loadWhere())
}

// runtimeWorkers is the backfill's decoder count (its default).
func runtimeWorkers() int { return runtime.GOMAXPROCS(0) }
