package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"
)

// Report is what a run measured: the JSON written by `wanderer-kills
// bench --out`. Scenarios that did not run are absent.
type Report struct {
	Machine Machine `json:"machine"`
	// Mode is "quick" or "full".
	Mode      string    `json:"mode"`
	StartedAt time.Time `json:"started_at"`
	Seconds   float64   `json:"seconds"`
	Scenarios Scenarios `json:"scenarios"`
	// Comparison puts figures of this run beside the original service's
	// published claims.
	Comparison []Comparison `json:"comparison"`
	Notes      []string     `json:"notes"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs   int    `json:"cpus"`
	Go     string `json:"go"`
	Commit string `json:"commit"`
	// Version is the binary's version (git describe), when known.
	Version string `json:"version,omitempty"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
	// FileLimit is RLIMIT_NOFILE after the harness raised it.
	FileLimit uint64 `json:"file_limit"`
	// Load says where the client load ran.
	Load string `json:"load"`
	// LoadAverage is /proc/loadavg's 1-minute figure at the start and the
	// end of the run: other work on the machine skews every figure.
	LoadAverage [2]float64 `json:"load_average"`
}

// loadAverage reads the 1-minute load average; 0 where there is none.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var one float64
	if _, err := fmt.Sscan(string(b), &one); err != nil {
		return 0
	}
	return one
}

// Scenarios holds one result per scenario that ran.
type Scenarios struct {
	Ingest    *IngestResult  `json:"ingest,omitempty"`
	Query     *QueryResult   `json:"query,omitempty"`
	Match     *MatchResult   `json:"match,omitempty"`
	FanoutWS  *FanoutResult  `json:"fanout_ws,omitempty"`
	FanoutSSE *FanoutResult  `json:"fanout_sse,omitempty"`
	Restart   *RestartResult `json:"restart,omitempty"`
	Push      *PushResult    `json:"push,omitempty"`
}

// Verdict is a scenario's targets (figure → condition, like "<= 100")
// and whether all of them hold.
type Verdict struct {
	Target map[string]string `json:"target"`
	Pass   bool              `json:"pass"`
}

// check is one target condition on a figure.
type check struct {
	figure string
	atMost bool // else at least
	limit  float64
	value  float64
}

func verdict(checks ...check) Verdict {
	v := Verdict{Target: make(map[string]string, len(checks)), Pass: true}
	for _, c := range checks {
		op, ok := ">=", c.value >= c.limit
		if c.atMost {
			op, ok = "<=", c.value <= c.limit
		}
		v.Target[c.figure] = fmt.Sprintf("%s %g", op, c.limit)
		v.Pass = v.Pass && ok
	}
	return v
}

// The targets of bench/README.md.
const (
	TargetIngestPerSec      = 20_000
	TargetSystemWindowP99us = 2_000
	TargetMatchNs           = 1_000
	TargetFanoutP99ms       = 100
	TargetBytesPerClient    = 20 << 10
	TargetDeliveredRatio    = 0.999
	TargetOpenMsPerMillion  = 3_000
)

// IngestResult is the ingest scenario: a JSONL file of killmails through
// the backfill path (parallel decode, validation, synced group commits,
// index) into an empty store.
type IngestResult struct {
	Killmails       int     `json:"killmails"`
	KillmailsPerSec float64 `json:"killmails_per_sec"`
	// CPUusPerKM is the process' CPU time per stored killmail: the
	// throughput two idle cores could reach is 2e6 / CPUusPerKM.
	CPUusPerKM  float64 `json:"cpu_us_per_killmail"`
	CommitP50ms float64 `json:"commit_p50_ms"`
	CommitP99ms float64 `json:"commit_p99_ms"`
	Commits     int     `json:"commits"`
	BatchSize   int     `json:"batch_size"`
	FileBytes   int64   `json:"file_bytes"`
	StoreBytes  int64   `json:"store_bytes"`
	Rejected    int     `json:"rejected"`
	Seconds     float64 `json:"seconds"`
	How         string  `json:"how"`
	Verdict
}

// QueryResult is the query scenario, over the store ingest built.
type QueryResult struct {
	Stored            uint64  `json:"stored"`
	Queries           int     `json:"queries"`
	SystemWindowP50us float64 `json:"system_window_p50_us"`
	SystemWindowP99us float64 `json:"system_window_p99_us"`
	SystemWindowHits  float64 `json:"system_window_results_per_query"`
	IntersectionP50us float64 `json:"intersection_p50_us"`
	IntersectionP99us float64 `json:"intersection_p99_us"`
	IntersectionHits  float64 `json:"intersection_results_per_query"`
	How               string  `json:"how"`
	Verdict
}

// MatchResult is the match scenario: the hub's inverted index of live
// subscribers against generated killmails.
type MatchResult struct {
	Subscribers   int `json:"subscribers"`
	SystemSubs    int `json:"system_subs"`
	CharacterSubs int `json:"character_subs"`
	Killmails     int `json:"killmails"`
	// NsPerKillmail is the time to find every subscriber of one killmail.
	NsPerKillmail float64 `json:"ns_per_killmail"`
	// CPUNsPerKillmail is the same in CPU time: what other work on the
	// machine does not inflate.
	CPUNsPerKillmail float64 `json:"cpu_ns_per_killmail"`
	// NsPerLookup divides it by the ids looked up (the system and every
	// victim and attacker character).
	NsPerLookup        float64 `json:"ns_per_lookup"`
	LookupsPerKillmail float64 `json:"lookups_per_killmail"`
	MatchesPerKillmail float64 `json:"matches_per_killmail"`
	How                string  `json:"how"`
	Verdict
}

// FanoutResult is a fan-out scenario at its largest step; Steps has every
// client count measured (the plot's points).
type FanoutResult struct {
	Clients         int     `json:"clients"`
	KillmailsPerSec float64 `json:"killmails_per_sec"`
	DeliveryP50ms   float64 `json:"delivery_p50_ms"`
	DeliveryP99ms   float64 `json:"delivery_p99_ms"`
	DeliveryMaxms   float64 `json:"delivery_max_ms"`
	DeliveredRatio  float64 `json:"delivered_ratio"`
	// Model is the subscription model ("map, 50 systems per client,
	// popularity-weighted" or "broadcast"); SystemsPerClient is the map
	// model's systems per client.
	Model            string `json:"model"`
	SystemsPerClient int    `json:"systems_per_client,omitempty"`
	// DeliveriesPerSec is the killmail frames clients received a second;
	// ClientReach is the mean fraction of the clients a killmail went to.
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	ClientReach      float64 `json:"mean_client_reach"`
	// BytesPerClient is the server's heap and stack growth per idle,
	// subscribed connection.
	BytesPerClient float64      `json:"bytes_per_client"`
	Steps          []FanoutStep `json:"steps"`
	How            string       `json:"how"`
	Verdict
}

// FanoutStep is one client count of a fan-out scenario.
type FanoutStep struct {
	Clients   int `json:"clients"`
	Published int `json:"published"`
	// Expected is the deliveries owed: for each published killmail, the
	// clients following its system. Reach is Expected per killmail and
	// client.
	Expected       uint64  `json:"expected"`
	Reach          float64 `json:"mean_client_reach"`
	Deliveries     uint64  `json:"deliveries"`
	DeliveredRatio float64 `json:"delivered_ratio"`
	// DeliveriesPerSec is Deliveries a second at the publish rate.
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
	P50ms            float64 `json:"delivery_p50_ms"`
	P90ms            float64 `json:"delivery_p90_ms"`
	P99ms            float64 `json:"delivery_p99_ms"`
	Maxms            float64 `json:"delivery_max_ms"`
	BytesPerClient   float64 `json:"bytes_per_client"`
	ConnectSeconds   float64 `json:"connect_seconds"`
	// ServerCPUus and ClientCPUus are the CPU time (user and system) of
	// the server process and of the client load from the first publish to
	// the last delivery, per delivery, in µs.
	ServerCPUus float64 `json:"server_cpu_us_per_delivery,omitempty"`
	ClientCPUus float64 `json:"client_cpu_us_per_delivery,omitempty"`
}

// RestartResult is the restart scenario: reopening the ingest store until
// it serves (migrations checked, index rebuilt).
type RestartResult struct {
	Stored           uint64  `json:"stored"`
	OpenMs           float64 `json:"open_ms"`
	OpenMsPerMillion float64 `json:"open_ms_per_million"`
	How              string  `json:"how"`
	Verdict
}

// Comparison is one of the original service's published figures beside
// ours, each with how it was obtained.
type Comparison struct {
	What        string `json:"what"`
	Original    string `json:"original"`
	OriginalHow string `json:"original_how"`
	Ours        string `json:"ours"`
	OursHow     string `json:"ours_how"`
}

// Failed lists the scenarios whose targets do not all hold.
func (r *Report) Failed() []string {
	var out []string
	for _, s := range r.rows() {
		if !s.v.Pass {
			out = append(out, s.name)
		}
	}
	return out
}

// scenarioRow is a scenario's name, verdict and headline figures, in
// report order, for the table and the summary.
type scenarioRow struct {
	name    string
	v       Verdict
	figures [][2]string
}

func (r *Report) rows() []scenarioRow {
	s := r.Scenarios
	var out []scenarioRow
	f := func(format string, v any) string { return fmt.Sprintf(format, v) }
	if x := s.Ingest; x != nil {
		out = append(out, scenarioRow{"ingest", x.Verdict, [][2]string{
			{"killmails", f("%d", x.Killmails)}, {"killmails_per_sec", f("%.0f", x.KillmailsPerSec)},
			{"cpu_us_per_killmail", f("%.0f", x.CPUusPerKM)}, {"commit_p99_ms", f("%.1f", x.CommitP99ms)}}})
	}
	if x := s.Query; x != nil {
		out = append(out, scenarioRow{"query", x.Verdict, [][2]string{
			{"stored", f("%d", x.Stored)}, {"system_window_p99_us", f("%.0f", x.SystemWindowP99us)},
			{"intersection_p99_us", f("%.0f", x.IntersectionP99us)}}})
	}
	if x := s.Match; x != nil {
		out = append(out, scenarioRow{"match", x.Verdict, [][2]string{
			{"system_subs", f("%d", x.SystemSubs)}, {"character_subs", f("%d", x.CharacterSubs)},
			{"ns_per_killmail", f("%.0f", x.NsPerKillmail)}, {"cpu_ns_per_killmail", f("%.0f", x.CPUNsPerKillmail)}}})
	}
	for _, fo := range []struct {
		name string
		x    *FanoutResult
	}{{"fanout_ws", s.FanoutWS}, {"fanout_sse", s.FanoutSSE}} {
		if x := fo.x; x != nil {
			out = append(out, scenarioRow{fo.name, x.Verdict, [][2]string{
				{"model", x.Model}, {"clients", f("%d", x.Clients)}, {"killmails_per_sec", f("%.0f", x.KillmailsPerSec)},
				{"deliveries_per_sec", f("%.0f", x.DeliveriesPerSec)}, {"mean_client_reach", f("%.4f", x.ClientReach)},
				{"delivery_p50_ms", f("%.1f", x.DeliveryP50ms)}, {"delivery_p99_ms", f("%.1f", x.DeliveryP99ms)},
				{"delivered_ratio", f("%.4f", x.DeliveredRatio)}, {"bytes_per_client", f("%.0f", x.BytesPerClient)}}})
		}
	}
	if x := s.Restart; x != nil {
		out = append(out, scenarioRow{"restart", x.Verdict, [][2]string{
			{"stored", f("%d", x.Stored)}, {"open_ms", f("%.0f", x.OpenMs)},
			{"open_ms_per_million", f("%.0f", x.OpenMsPerMillion)}}})
	}
	if x := s.Push; x != nil {
		out = append(out, scenarioRow{"push", x.Verdict, [][2]string{
			{"clients", f("%d", x.Clients)}, {"killmails_per_sec", f("%.0f", x.KillmailsPerSec)},
			{"commit_p99_ms", f("%.1f", x.CommitP99ms)}, {"delivery_p50_ms", f("%.1f", x.DeliveryP50ms)},
			{"delivery_p99_ms", f("%.1f", x.DeliveryP99ms)}, {"delivered_ratio", f("%.4f", x.DeliveredRatio)}}})
	}
	return out
}

// WriteJSON writes the report, indented.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("bench: encode report: %w", err)
	}
	return nil
}

// machine describes this process' machine; commit "" is read from the
// build info.
func machine(commit string, fileLimit uint64, load string) Machine {
	if commit == "" {
		commit = buildCommit()
	}
	return Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Commit: commit,
		OS: runtime.GOOS, Arch: runtime.GOARCH, FileLimit: fileLimit, Load: load}
}

func buildCommit() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// RaiseFileLimit lifts RLIMIT_NOFILE towards want (as far as the hard
// limit allows; root may raise that too) and returns the limit in force.
func RaiseFileLimit(want uint64) uint64 {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	if rl.Cur < want {
		nl := syscall.Rlimit{Cur: want, Max: max(want, rl.Max)}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl) != nil {
			nl = syscall.Rlimit{Cur: rl.Max, Max: rl.Max}
			_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl)
		}
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return rl.Cur
}
