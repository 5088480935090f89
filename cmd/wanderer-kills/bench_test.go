package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readReport(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b, &doc))
	return doc
}

// TestBenchStoreScenarios runs the store scenarios in-process at a tiny
// size and checks the files --out writes.
func TestBenchStoreScenarios(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "results", "r.json")
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"bench", "--scenario", "query", "restart", "--killmails", "300",
		"--dir", dir, "--out", out}, func(string) string { return "" }, &stdout, &stderr)
	require.NoError(t, err, stderr.String())
	assert.Contains(t, stdout.String(), "SCENARIO")
	assert.Contains(t, stdout.String(), "open_ms_per_million")

	doc := readReport(t, out)
	sc := doc["scenarios"].(map[string]any)
	assert.ElementsMatch(t, []string{"ingest", "query", "restart"}, keys(sc))
	assert.EqualValues(t, 300, sc["ingest"].(map[string]any)["killmails"])
	md, err := os.ReadFile(filepath.Join(dir, "results", "r.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "open_ms_per_million")
	assert.NotContains(t, string(md), "(r.svg)", "no plot without a fan-out")
	_, err = os.Stat(filepath.Join(dir, "results", "r.svg"))
	require.NoError(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "the run's data directory is removed")

	t.Run("render rewrites the summary", func(t *testing.T) {
		md := filepath.Join(dir, "results", "r.md")
		require.NoError(t, os.Remove(md))
		require.NoError(t, run(context.Background(), []string{"bench", "--render", out}, func(string) string { return "" }, &stdout, &stderr))
		b, err := os.ReadFile(md)
		require.NoError(t, err)
		assert.Contains(t, string(b), "open_ms_per_million")
	})
}

func TestBenchBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "nope"},
		{"--ws-clients", "10,x"},
		{"--publish-rate", "0"},
		{"--fanout-model", "everyone"},
		{"--systems-per-client", "101"},
	} {
		t.Run(args[0], func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"bench"}, args...), func(string) string { return "" }, &out, &out)
			require.Error(t, err)
		})
	}
}

// TestBenchFanoutChildProcess runs the fan-out scenarios with the real
// binary, whose client load runs in a child process (itself with
// --client-load).
func TestBenchFanoutChildProcess(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "r.json")
	cmd := exec.Command(bin, "bench", "--quick", "--scenario", "fanout", "--ws-clients", "3,5", "--sse-clients", "2",
		"--publish-rate", "50", "--publish-for", "200ms", "--dir", dir, "--out", out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))
	doc := readReport(t, out)
	assert.Contains(t, doc["machine"].(map[string]any)["load"], "child process")
	sc := doc["scenarios"].(map[string]any)
	ws := sc["fanout_ws"].(map[string]any)
	sse := sc["fanout_sse"].(map[string]any)
	assert.EqualValues(t, 5, ws["clients"])
	assert.EqualValues(t, 2, sse["clients"])
	assert.EqualValues(t, 1, ws["delivered_ratio"])
	assert.EqualValues(t, 1, sse["delivered_ratio"])
	assert.Equal(t, "map, 50 systems per client, popularity-weighted", ws["model"])
	assert.Len(t, ws["steps"], 2)
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
