package ingest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixtureLines are the real ESI killmails of the shared fixtures.
func fixtureLines(tb testing.TB) [][]byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", "fixtures", "killmails.jsonl"))
	require.NoError(tb, err)
	var lines [][]byte
	for _, l := range bytes.Split(raw, []byte("\n")) {
		if len(bytes.TrimSpace(l)) > 0 {
			lines = append(lines, l)
		}
	}
	require.NotEmpty(tb, lines)
	return lines
}

// checkScan fails when scanRecord accepts raw but decodes it otherwise
// than encoding/json, and reports whether it accepted it.
func checkScan(tb testing.TB, raw []byte) bool {
	tb.Helper()
	var fast recordWire
	if !scanRecord(raw, &fast) {
		return false
	}
	var slow recordWire
	require.NoError(tb, json.Unmarshal(raw, &slow), "scanned, but encoding/json refuses it: %s", raw)
	require.Equal(tb, slow, fast, "scanned otherwise than encoding/json: %s", raw)
	return true
}

func TestScanRecordMatchesEncodingJSON(t *testing.T) {
	lines := fixtureLines(t)
	for _, line := range lines {
		require.True(t, checkScan(t, line), "a real ESI killmail takes the fast path: %.80s", line)
		var pretty bytes.Buffer
		require.NoError(t, json.Indent(&pretty, line, "", "\t"))
		require.True(t, checkScan(t, pretty.Bytes()), "white space is fine")
	}
	withHash := `{"killmail_id":7,"killmail_time":"2024-05-01T10:00:00.5+02:00","solar_system_id":30000142,` +
		`"killmail_hash":"abc123","victim":{"ship_type_id":670,"damage_taken":0,"position":{"x":1e3,"y":-0.0,"z":123456789.123456789},` +
		`"items":[{"item_type_id":1,"flag":5,"singleton":0,"quantity_dropped":3,"items":[{"item_type_id":2,"flag":0,"singleton":1,"quantity_destroyed":1}]}]},` +
		`"attackers":[{"faction_id":500001,"damage_done":0,"final_blow":true,"security_status":5},{"damage_done":1,"final_blow":false,"security_status":-9.87654321012345678}]}`
	assert.True(t, checkScan(t, []byte(withHash)))
	assert.True(t, checkScan(t, []byte(`{"killmail_id":5,"victim":{},"attackers":[],"moon_id":0,"war_id":-3}`)))
	assert.True(t, checkScan(t, []byte(`{"killmail_id":5,"zkb":{"hash":"ab"}}`)), "a {killmail_id, zkb} entry")
	assert.True(t, checkScan(t, []byte(`{"killmail_id":5,"zkb":{"locationID":40009077,"hash":"ab","fittedValue":1.5e7,`+
		`"droppedValue":0,"destroyedValue":123.45,"totalValue":1234567.89,"points":12,"npc":false,"solo":true,"awox":false,`+
		`"labels":["cat:6","solo","pvp"],"href":"https://esi.evetech.net/killmails/5/ab/"}}`)), "zKillboard's full block")
	assert.True(t, checkScan(t, []byte(`{"killmail_id":5,"zkb":{"labels":[]}}`)), "empty labels")

	// Everything outside the plain form goes to encoding/json.
	for name, raw := range map[string]string{
		"null":             `{"killmail_id":5,"victim":null,"attackers":[]}`,
		"escape":           `{"killmail_id":5,"killmail_hash":"ab\u0063"}`,
		"non-ASCII":        `{"killmail_id":5,"killmail_hash":"é"}`,
		"unknown key":      `{"killmail_id":5,"extra":1}`,
		"other case":       `{"Killmail_ID":5}`,
		"duplicate key":    `{"killmail_id":5,"killmail_id":6}`,
		"float for int":    `{"killmail_id":5.0}`,
		"exponent int":     `{"killmail_id":5e2}`,
		"huge int":         `{"killmail_id":1234567890123456789}`,
		"leading zero":     `{"killmail_id":05}`,
		"trailing data":    `{"killmail_id":5} {}`,
		"zkb null":         `{"killmail_id":5,"zkb":null}`,
		"zkb unknown key":  `{"killmail_id":5,"zkb":{"hash":"ab","extra":1}}`,
		"zkb escaped":      `{"killmail_id":5,"zkb":{"labels":["a\\b"]}}`,
		"r2z2 shape":       `{"killmail_id":5,"hash":"ab","esi":{}}`,
		"bad time":         `{"killmail_time":"yesterday"}`,
		"truncated":        `{"killmail_id":5,"attackers":[`,
		"bare number":      `5`,
		"float overflow":   `{"attackers":[{"security_status":1e999}]}`,
		"missing fraction": `{"attackers":[{"security_status":1.}]}`,
		"deep items":       `{"victim":{"items":[` + deepItems(maxScanDepth+1) + `]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			assert.False(t, checkScan(t, []byte(raw)))
		})
	}
	assert.True(t, checkScan(t, []byte(`{"victim":{"items":[`+deepItems(maxScanDepth)+`]}}`)))
}

// deepItems nests n items, each in the one before.
func deepItems(n int) string {
	if n == 1 {
		return `{"item_type_id":1}`
	}
	return `{"item_type_id":1,"items":[` + deepItems(n-1) + `]}`
}

func FuzzScanRecord(f *testing.F) {
	for _, line := range fixtureLines(f)[:5] {
		f.Add(line)
	}
	f.Add([]byte(`{"killmail_id":5,"victim":{"position":{"x":-1.5e-3,"y":0,"z":1}},"attackers":[{"security_status":-0.1}]}`))
	f.Add([]byte(`{"attackers":[{"final_blow":true,"security_status":12345678901234567890}]}`))
	f.Add([]byte(`{"killmail_id":5,"zkb":{"hash":"ab","totalValue":1.5e9,"labels":["solo"],"npc":true,"href":"x"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkScan(t, raw)
	})
}
