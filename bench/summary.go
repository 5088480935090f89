package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// comparison puts this run's figures beside the original service's
// published claims.
func comparison(rep *Report) []Comparison {
	const published = "published by the original WandererKills (Elixir) in its documentation; not re-measured here"
	s := rep.Scenarios
	var out []Comparison
	if x := s.Ingest; x != nil {
		out = append(out, Comparison{
			What: "ingest throughput", Original: "1,000 killmails/min (≈17/s)", OriginalHow: published,
			Ours: fmt.Sprintf("%.0f killmails/s (%.1fM/min, %.0f×), every commit synced to disk",
				x.KillmailsPerSec, x.KillmailsPerSec*60/1e6, x.KillmailsPerSec*60/1000),
			OursHow: fmt.Sprintf("ingest scenario: %d killmails from a JSONL file through the backfill path", x.Killmails),
		})
	}
	if x := s.Match; x != nil {
		out = append(out, Comparison{
			What: "character lookup (which subscribers want this killmail)", Original: "7.64 µs per character lookup",
			OriginalHow: published,
			Ours: fmt.Sprintf("%.0f ns per id looked up; %.0f ns per killmail (%.1f ids each) against %d character and %d system subscriptions",
				x.NsPerLookup, x.NsPerKillmail, x.LookupsPerKillmail, x.CharacterSubs, x.SystemSubs),
			OursHow: "match scenario: the hub's inverted index through Hub.MatchTime",
		})
	}
	if x := s.FanoutSSE; x != nil {
		out = append(out, Comparison{
			What: "SSE connections", Original: "100 (sse.max_connections; the 101st stream gets 503)",
			OriginalHow: "the original's configuration (API.md §5.3)",
			Ours: fmt.Sprintf("%d concurrent streams, delivery p99 %.1f ms at %.0f killmails/s, %.0f deliveries/s (model %s; default cap 1,000, configurable; lifted for this run)",
				x.Clients, x.DeliveryP99ms, x.KillmailsPerSec, x.DeliveriesPerSec, modelName(x.Model)),
			OursHow: "fanout_sse scenario: real SSE clients over loopback",
		})
	}
	if x := s.Restart; x != nil {
		out = append(out, Comparison{
			What: "restart", Original: "state lost: every killmail and subscription is gone",
			OriginalHow: "the original keeps everything in ETS, in memory only (API.md §7.7)",
			Ours: fmt.Sprintf("%d killmails queryable again %.0f ms after open (%.0f ms per million)",
				x.Stored, x.OpenMs, x.OpenMsPerMillion),
			OursHow: "restart scenario: store.Open on the ingest store until every killmail is queryable",
		})
	}
	return out
}

// WriteTable prints the report as a readable table.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "wanderer-kills bench (%s) — %d CPUs, %s, commit %s, %.0f s, load average %.1f → %.1f\n\n",
		r.Mode, r.Machine.CPUs, r.Machine.Go, shortCommit(r.Machine.Commit), r.Seconds, r.Machine.LoadAverage[0], r.Machine.LoadAverage[1])
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tVALUE\tTARGET\tPASS")
	for _, row := range r.rows() {
		for i, f := range row.figures {
			name, pass := "", ""
			if i == 0 {
				name, pass = row.name, passWord(row.v.Pass)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, f[0], f[1], row.v.Target[f[0]], pass)
		}
	}
	if len(r.Comparison) > 0 {
		fmt.Fprintln(tw, "\nCOMPARED WITH\tORIGINAL\tOURS")
		for _, c := range r.Comparison {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", c.What, c.Original, c.Ours)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(tw, "\nnote: %s", n)
	}
	fmt.Fprintln(tw)
	return tw.Flush()
}

func passWord(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func shortCommit(c string) string {
	dirty := strings.HasSuffix(c, "-dirty")
	c = strings.TrimSuffix(c, "-dirty")
	if len(c) > 12 {
		c = c[:12]
	}
	if dirty {
		c += "-dirty"
	}
	return c
}

// WriteMarkdown writes a summary of the report; plot is the file name of
// the delivery-latency SVG to embed ("" for none).
func (r *Report) WriteMarkdown(w io.Writer, plot string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# wanderer-kills bench, %s (%s run)\n\n", r.StartedAt.Format("2006-01-02"), r.Mode)
	fmt.Fprintf(&b, "Machine: %d CPUs, %s/%s, %s, commit `%s`; the run took %.0f s; 1-minute load average %.1f at the start, %.1f at the end.\n\n",
		r.Machine.CPUs, r.Machine.OS, r.Machine.Arch, r.Machine.Go, r.Machine.Commit, r.Seconds, r.Machine.LoadAverage[0], r.Machine.LoadAverage[1])
	b.WriteString("| scenario | figure | value | target | pass |\n|---|---|---:|---|---|\n")
	for _, row := range r.rows() {
		for i, f := range row.figures {
			name, pass := "", ""
			if i == 0 {
				name, pass = "**"+row.name+"**", passWord(row.v.Pass)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", name, f[0], f[1], row.v.Target[f[0]], pass)
		}
	}
	if steps := r.fanoutSteps(); len(steps) > 0 {
		b.WriteString("\n## Delivery latency against clients\n\n")
		if plot != "" {
			fmt.Fprintf(&b, "![delivery latency against clients](%s)\n\n", plot)
		}
		b.WriteString("| transport | model | clients | deliveries/s | reach | p50 ms | p90 ms | p99 ms | max ms | delivered | server B/client | connect s |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range steps {
			for _, st := range s.steps {
				fmt.Fprintf(&b, "| %s | %s | %d | %.0f | %.4f | %.1f | %.1f | %.1f | %.1f | %.4f | %.0f | %.1f |\n", s.name, s.model,
					st.Clients, st.DeliveriesPerSec, st.Reach, st.P50ms, st.P90ms, st.P99ms, st.Maxms, st.DeliveredRatio,
					st.BytesPerClient, st.ConnectSeconds)
			}
		}
	}
	if len(r.Comparison) > 0 {
		b.WriteString("\n## Compared with the original service\n\n| | original | how | ours | how |\n|---|---|---|---|---|\n")
		for _, c := range r.Comparison {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.What, c.Original, c.OriginalHow, c.Ours, c.OursHow)
		}
	}
	b.WriteString("\n## How each figure was measured\n\n")
	for _, h := range r.hows() {
		fmt.Fprintf(&b, "- **%s**: %s.\n", h[0], h[1])
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Report) hows() [][2]string {
	s := r.Scenarios
	var out [][2]string
	add := func(name, how string) { out = append(out, [2]string{name, how}) }
	if s.Ingest != nil {
		add("ingest", s.Ingest.How)
	}
	if s.Query != nil {
		add("query", s.Query.How)
	}
	if s.Match != nil {
		add("match", s.Match.How)
	}
	if s.FanoutWS != nil {
		add("fanout_ws", s.FanoutWS.How)
	}
	if s.FanoutSSE != nil {
		add("fanout_sse", s.FanoutSSE.How)
	}
	if s.Restart != nil {
		add("restart", s.Restart.How)
	}
	if s.Push != nil {
		add("push", s.Push.How)
	}
	return out
}

type namedSteps struct {
	name, model string
	steps       []FanoutStep
}

func (r *Report) fanoutSteps() []namedSteps {
	var out []namedSteps
	if x := r.Scenarios.FanoutWS; x != nil {
		out = append(out, namedSteps{"WebSocket", modelName(x.Model), x.Steps})
	}
	if x := r.Scenarios.FanoutSSE; x != nil {
		out = append(out, namedSteps{"SSE", modelName(x.Model), x.Steps})
	}
	return out
}

// modelName is a fan-out's model; reports from before the map model have
// none and were broadcasts.
func modelName(m string) string {
	if m == "" {
		return FanoutModelBroadcast
	}
	return m
}
