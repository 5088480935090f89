package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tinyOptions runs every scenario at sizes that take a few seconds, with
// the client load in-process.
func tinyOptions(t *testing.T) Options {
	return Options{
		Quick:            true,
		Dir:              t.TempDir(),
		Seed:             5,
		Killmails:        600,
		Queries:          50,
		MatchSubscribers: 300,
		MatchKillmails:   300,
		MatchFor:         10 * time.Millisecond,
		WSClients:        []int{3, 6},
		SSEClients:       []int{2, 4},
		PublishRate:      50,
		PublishFor:       200 * time.Millisecond,
		Commit:           "test",
	}
}

// The keys the report shape names, per scenario.
var reportKeys = map[string][]string{
	"ingest":     {"killmails", "killmails_per_sec", "commit_p99_ms"},
	"query":      {"stored", "system_window_p99_us", "intersection_p99_us"},
	"match":      {"system_subs", "character_subs", "ns_per_killmail"},
	"fanout_ws":  {"clients", "killmails_per_sec", "delivery_p50_ms", "delivery_p99_ms", "bytes_per_client", "model", "deliveries_per_sec", "mean_client_reach"},
	"fanout_sse": {"clients", "killmails_per_sec", "delivery_p50_ms", "delivery_p99_ms", "model", "deliveries_per_sec", "mean_client_reach"},
	"restart":    {"stored", "open_ms", "open_ms_per_million"},
}

func TestRunTiny(t *testing.T) {
	var log bytes.Buffer
	o := tinyOptions(t)
	o.Log = &log
	rep, err := Run(context.Background(), o)
	require.NoError(t, err, log.String())

	var js bytes.Buffer
	require.NoError(t, rep.WriteJSON(&js))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(js.Bytes(), &doc), "the report is valid JSON")

	machine := doc["machine"].(map[string]any)
	for _, k := range []string{"cpus", "go", "commit"} {
		assert.Contains(t, machine, k)
	}
	assert.Equal(t, "test", machine["commit"])
	scenarios := doc["scenarios"].(map[string]any)
	require.Len(t, scenarios, len(reportKeys))
	for name, keys := range reportKeys {
		t.Run(name, func(t *testing.T) {
			sc, ok := scenarios[name].(map[string]any)
			require.True(t, ok, "scenario %s present", name)
			for _, k := range append(keys, "target", "pass", "how") {
				assert.Contains(t, sc, k)
			}
			target := sc["target"].(map[string]any)
			assert.NotEmpty(t, target)
			for fig := range target {
				assert.Contains(t, sc, fig, "the target names a figure of the scenario")
			}
			assert.IsType(t, true, sc["pass"])
		})
	}

	s := rep.Scenarios
	assert.Equal(t, 600, s.Ingest.Killmails)
	assert.EqualValues(t, 600, s.Query.Stored)
	assert.EqualValues(t, 600, s.Restart.Stored)
	assert.Equal(t, 300, s.Match.SystemSubs)
	assert.Equal(t, 1500, s.Match.CharacterSubs)
	assert.Positive(t, s.Match.NsPerKillmail)
	for _, fo := range []*FanoutResult{s.FanoutWS, s.FanoutSSE} {
		require.Len(t, fo.Steps, 2)
		assert.Equal(t, fo.Steps[1].Clients, fo.Clients)
		assert.Equal(t, 1.0, fo.DeliveredRatio, "every killmail reached every client following its system")
		assert.Equal(t, "map, 50 systems per client, popularity-weighted", fo.Model, "the default model")
		assert.Positive(t, fo.DeliveryP99ms)
		assert.GreaterOrEqual(t, fo.DeliveryP99ms, fo.DeliveryP50ms)
	}
	assert.Equal(t, 6, s.FanoutWS.Clients)
	assert.Equal(t, 4, s.FanoutSSE.Clients)
	assert.Len(t, rep.Comparison, 4)
	assert.NotEmpty(t, rep.Notes)
	assert.Contains(t, strings.Join(rep.Notes, " "), "shares this machine")

	t.Run("table", func(t *testing.T) {
		var b bytes.Buffer
		require.NoError(t, rep.WriteTable(&b))
		for name := range reportKeys {
			assert.Contains(t, b.String(), name)
		}
		assert.Contains(t, b.String(), "1,000 killmails/min")
	})
	t.Run("markdown and svg", func(t *testing.T) {
		var md, svg bytes.Buffer
		require.NoError(t, rep.WriteMarkdown(&md, "plot.svg"))
		assert.Contains(t, md.String(), "![delivery latency against clients](plot.svg)")
		assert.Contains(t, md.String(), "7.64 µs")
		require.NoError(t, rep.WriteSVG(&svg))
		assertXML(t, svg.Bytes())
		assert.Contains(t, svg.String(), "WebSocket p99")
		assert.Contains(t, svg.String(), "SSE p50")
	})
}

func assertXML(t *testing.T, b []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			return
		}
		require.NoError(t, err, "the SVG is well-formed XML")
	}
}

func TestSelected(t *testing.T) {
	for _, tc := range []struct {
		names []string
		want  []string
		err   bool
	}{
		{nil, []string{"ingest", "query", "match", "fanout_ws", "fanout_sse", "restart"}, false},
		{[]string{"match"}, []string{"match"}, false},
		{[]string{"query"}, []string{"ingest", "query"}, false},
		{[]string{"restart,match"}, []string{"ingest", "match", "restart"}, false},
		{[]string{"fanout"}, []string{"fanout_sse", "fanout_ws"}, false},
		{[]string{"match", "nope"}, nil, true},
		{[]string{"push"}, nil, true},
	} {
		t.Run(strings.Join(tc.names, "+"), func(t *testing.T) {
			got, err := selected(tc.names, false)
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			var names []string
			for n := range got {
				names = append(names, n)
			}
			assert.ElementsMatch(t, tc.want, names)
		})
	}
}

func TestSVGLogScale(t *testing.T) {
	rep := &Report{Mode: "full", Scenarios: Scenarios{FanoutWS: &FanoutResult{Steps: []FanoutStep{
		{Clients: 1000, P50ms: 5, P99ms: 20}, {Clients: 10000, P50ms: 3000, P99ms: 12000},
	}}}}
	var svg bytes.Buffer
	require.NoError(t, rep.WriteSVG(&svg))
	assertXML(t, svg.Bytes())
	assert.Contains(t, svg.String(), "log scale")
	assert.Contains(t, svg.String(), ">10000<")

	rep.Scenarios.FanoutWS.Steps[1].P50ms, rep.Scenarios.FanoutWS.Steps[1].P99ms = 40, 80
	svg.Reset()
	require.NoError(t, rep.WriteSVG(&svg))
	assert.NotContains(t, svg.String(), "log scale")
}

func TestRunEmptySVG(t *testing.T) {
	rep := &Report{Mode: "quick"}
	var svg bytes.Buffer
	require.NoError(t, rep.WriteSVG(&svg))
	assertXML(t, svg.Bytes())
	assert.Contains(t, svg.String(), "no fan-out scenario ran")
}
