package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

const (
	sysA = int64(30000142)
	sysB = int64(30000144)
	sysC = int64(30002187)
)

// seedRecent stores five kills: three in sysA at -1h, -2h and -30h, one in
// sysB at -1h, one in sysA at -50h. It returns the template fixture.
func seedRecent(t *testing.T, e *apiEnv) {
	t.Helper()
	base := apiFixtures(t)[10]
	now := time.Now()
	e.appendAll(
		recentKill(base, 901, sysA, now.Add(-2*time.Hour)),
		recentKill(base, 902, sysA, now.Add(-1*time.Hour)),
		recentKill(base, 903, sysA, now.Add(-30*time.Hour)),
		recentKill(base, 904, sysB, now.Add(-1*time.Hour)),
		recentKill(base, 905, sysA, now.Add(-50*time.Hour)),
	)
}

func TestSystemKills(t *testing.T) {
	e := newAPIEnv(t)
	seedRecent(t, e)
	cases := []struct {
		name, path string
		want       []int64
	}{
		{"default 24h", "/api/v1/kills/system/30000142", []int64{902, 901}},
		{"since_hours 48", "/api/v1/kills/system/30000142?since_hours=48", []int64{902, 901, 903}},
		{"no upper bound on since_hours", "/api/v1/kills/system/30000142?since_hours=99999999999", []int64{902, 901, 903, 905}},
		{"limit", "/api/v1/kills/system/30000142?since_hours=100&limit=2", []int64{902, 901}},
		{"leading zeros and plus", "/api/v1/kills/system/+00030000142?limit=1000", []int64{902, 901}},
		{"other system", "/api/v1/kills/system/30000144", []int64{904}},
		{"unknown system", "/api/v1/kills/system/31000005", []int64{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.get(tc.path)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			assert.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
			m := withoutTimestamps(t, r.object(t))
			require.Equal(t, []string{"data"}, keys(m))
			data := withoutTimestamps(t, m["data"].(map[string]any))
			assert.Equal(t, false, data["cached"])
			assert.Equal(t, tc.want, killIDs(t, data["kills"]))
		})
	}
	t.Run("kills are the stored canonical JSON", func(t *testing.T) {
		var body struct {
			Data struct{ Kills []json.RawMessage } `json:"data"`
		}
		require.NoError(t, json.Unmarshal(e.get("/api/v1/kills/system/30000144").body, &body))
		stored, err := e.st.Get(context.Background(), 904)
		require.NoError(t, err)
		require.Len(t, body.Data.Kills, 1)
		assert.JSONEq(t, string(stored.JSON), string(body.Data.Kills[0]))
		assert.Contains(t, string(body.Data.Kills[0]), `"attacker_count"`)
	})
}

// TestSystemKillsValidation: any bad input is the original's
// INVALID_SYSTEM_ID body (API.md §2.5, §11 item 10).
func TestSystemKillsValidation(t *testing.T) {
	e := newAPIEnv(t)
	want := map[string]any{"error": "Invalid system ID format", "code": "INVALID_SYSTEM_ID", "details": nil}
	for _, path := range []string{
		"abc", "0", "-1", "-30000142", "123abc", "12.5", "1e5", "0x10", "caf%C3%A9", "%F0%9F%9A%80", "1%EF%BC%92%EF%BC%93",
		"99999999999999999999", "9223372036854775808", "%20123", "123%20",
		"30000142?since_hours=0", "30000142?since_hours=-1", "30000142?since_hours=abc", "30000142?since_hours=",
		"30000142?since_hours=1.5", "30000142?since_hours=99999999999999999999",
		"30000142?limit=0", "30000142?limit=1001", "30000142?limit=-5", "30000142?limit=", "30000142?limit=%00",
	} {
		t.Run(path, func(t *testing.T) {
			r := e.get("/api/v1/kills/system/" + path)
			require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
			assert.Equal(t, want, withoutTimestamps(t, r.object(t)))
		})
	}
}

func TestBulkSystemKills(t *testing.T) {
	e := newAPIEnv(t)
	seedRecent(t, e)
	post := func(body string) apiResp {
		return e.do(http.MethodPost, "/api/v1/kills/systems", []byte(body), "Content-Type", "application/json")
	}
	cases := []struct {
		name, body string
		want       map[string][]int64
	}{
		{"defaults", `{"system_ids":[30000142,30000144,30002187]}`,
			map[string][]int64{"30000142": {902, 901}, "30000144": {904}, "30002187": {}}},
		{"strings for since_hours and limit", `{"system_ids":[30000142],"since_hours":"48","limit":"2"}`,
			map[string][]int64{"30000142": {902, 901}}},
		{"integers and duplicates", `{"system_ids":[30000142,30000142],"since_hours":1000,"limit":3}`,
			map[string][]int64{"30000142": {902, 901, 903}}},
		{"nulls mean defaults", `{"system_ids":[30000144],"since_hours":null,"limit":null}`,
			map[string][]int64{"30000144": {904}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := post(tc.body)
			require.Equal(t, http.StatusOK, r.status, "%s", r.body)
			m := withoutTimestamps(t, r.object(t))
			data := withoutTimestamps(t, m["data"].(map[string]any))
			got := map[string][]int64{}
			for k, v := range data["systems_kills"].(map[string]any) {
				got[k] = killIDs(t, v)
			}
			assert.Equal(t, tc.want, got)
		})
	}
	t.Run("1000 systems", func(t *testing.T) {
		r := post(`{"system_ids":[` + idList(1000, 30000000) + `]}`)
		require.Equal(t, http.StatusOK, r.status, "%.300s", r.body)
		data := r.object(t)["data"].(map[string]any)
		assert.Len(t, data["systems_kills"], 1000)
	})
}

func TestBulkSystemKillsValidation(t *testing.T) {
	e := newAPIEnv(t)
	ids := func(reason string) map[string]any {
		return map[string]any{"error": "Invalid system IDs", "code": "INVALID_SYSTEM_IDS",
			"details": map[string]any{"field": "system_ids", "reason": reason}}
	}
	params := func(field, reason string) map[string]any {
		return map[string]any{"error": "Invalid parameters", "code": "INVALID_PARAMETERS",
			"details": map[string]any{"field": field, "reason": reason}}
	}
	cases := []struct {
		name, body string
		want       map[string]any
	}{
		{"empty body", ``, ids("system_ids is required")},
		{"missing", `{"since_hours":24}`, ids("system_ids is required")},
		{"null", `{"system_ids":null}`, ids("system_ids is required")},
		{"empty list", `{"system_ids":[]}`, ids("system_ids must not be empty")},
		{"not a list", `{"system_ids":"30000142"}`, ids("system_ids must be an array of positive integers")},
		{"a string element", `{"system_ids":[30000142,"30000144"]}`, ids("system_ids[1] is not a valid integer")},
		{"a float element", `{"system_ids":[1.5]}`, ids("system_ids[0] is not a valid integer")},
		{"a zero", `{"system_ids":[0]}`, ids("system_ids[0] must be a positive integer")},
		{"a negative", `{"system_ids":[-1]}`, ids("system_ids[0] must be a positive integer")},
		{"an overflow", `{"system_ids":[99999999999999999999]}`, ids("system_ids[0] is out of range")},
		{"1001 systems", `{"system_ids":[` + idList(1001, 1) + `]}`, ids("system_ids has 1001 elements, at most 1000 allowed")},
		{"10000 systems", `{"system_ids":[` + idList(10000, 1) + `]}`, ids("system_ids has 10000 elements, at most 1000 allowed")},
		{"since_hours zero", `{"system_ids":[1],"since_hours":0}`, params("since_hours", "must be a positive integer")},
		{"since_hours word", `{"system_ids":[1],"since_hours":"abc"}`, params("since_hours", "is not a valid integer")},
		{"since_hours unicode digits", `{"system_ids":[1],"since_hours":"１２"}`, params("since_hours", "is not a valid integer")},
		{"since_hours float", `{"system_ids":[1],"since_hours":2.5}`, params("since_hours", "is not a valid integer")},
		{"since_hours bool", `{"system_ids":[1],"since_hours":true}`, params("since_hours", "is not a valid integer")},
		{"limit too big", `{"system_ids":[1],"limit":1001}`, params("limit", "must be at most 1000")},
		{"limit negative", `{"system_ids":[1],"limit":"-5"}`, params("limit", "must be a positive integer")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/api/v1/kills/systems", []byte(tc.body))
			require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
			assert.Equal(t, tc.want, withoutTimestamps(t, r.object(t)))
		})
	}
	for _, body := range []string{`{"system_ids":[1]`, `{"system_ids":[1]}}`, "\x00\xff\xfe garbage", `[30000142]`, `{'a':1}`} {
		t.Run(fmt.Sprintf("malformed %q", body), func(t *testing.T) {
			r := e.do(http.MethodPost, "/api/v1/kills/systems", []byte(body), "Content-Type", "application/json")
			require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
			m := withoutTimestamps(t, r.object(t))
			assert.Equal(t, "Bad Request", m["error"])
			assert.Equal(t, "400", m["status"])
			assert.Equal(t, "INVALID_JSON", m["code"])
			assert.Equal(t, "body", m["details"].(map[string]any)["field"])
		})
	}
}

func TestCachedKills(t *testing.T) {
	e := newAPIEnv(t)
	seedRecent(t, e)
	r := e.get("/api/v1/kills/cached/30000142")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	data := withoutTimestamps(t, withoutTimestamps(t, r.object(t))["data"].(map[string]any))
	assert.Equal(t, true, data["cached"])
	assert.Equal(t, []int64{902, 901, 903, 905}, killIDs(t, data["kills"]))

	r = e.get("/api/v1/kills/cached/31000005")
	require.Equal(t, http.StatusOK, r.status)
	assert.Empty(t, killIDs(t, r.object(t)["data"].(map[string]any)["kills"]))

	for _, bad := range []string{"abc", "0", "-3", "1%EF%BC%92", "99999999999999999999"} {
		r := e.get("/api/v1/kills/cached/" + bad)
		require.Equal(t, http.StatusBadRequest, r.status, bad)
		assert.Equal(t, map[string]any{"error": "Invalid system ID format", "code": "INVALID_SYSTEM_ID", "details": nil},
			withoutTimestamps(t, r.object(t)))
	}
}

func TestCachedKillsCap(t *testing.T) {
	e := newAPIEnv(t)
	base := apiFixtures(t)[0]
	now := time.Now()
	var kms []*store.Killmail
	for i := range 1005 {
		km := recentKill(base, int64(10000+i), sysC, now.Add(-time.Duration(i)*time.Minute))
		km.Attackers = km.Attackers[:1]
		km.Victim.Items = nil
		kms = append(kms, km)
	}
	e.appendAll(kms...)
	r := e.get("/api/v1/kills/cached/30002187")
	require.Equal(t, http.StatusOK, r.status)
	ids := killIDs(t, r.object(t)["data"].(map[string]any)["kills"])
	require.Len(t, ids, 1000)
	assert.Equal(t, int64(10000), ids[0], "newest first")
	assert.Equal(t, int64(10999), ids[999])
}

func TestKillCount(t *testing.T) {
	e := newAPIEnv(t)
	seedRecent(t, e)
	for _, tc := range []struct {
		path string
		want int64
	}{{"30000142", 4}, {"30000144", 1}, {"31000005", 0}, {"030000142", 4}} {
		r := e.get("/api/v1/kills/count/" + tc.path)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		data := withoutTimestamps(t, withoutTimestamps(t, r.object(t))["data"].(map[string]any))
		sys, _ := strconv.ParseInt(strings.TrimLeft(tc.path, "0"), 10, 64)
		assert.Equal(t, map[string]any{"system_id": json.Number(strconv.FormatInt(sys, 10)),
			"count": json.Number(strconv.FormatInt(tc.want, 10))}, data)
	}
	for _, bad := range []string{"x", "0", "1.0", "%F0%9F%9A%80"} {
		r := e.get("/api/v1/kills/count/" + bad)
		require.Equal(t, http.StatusBadRequest, r.status)
		assert.Equal(t, "INVALID_SYSTEM_ID", r.object(t)["code"])
	}
}

func TestKillmailFromStore(t *testing.T) {
	e := newAPIEnv(t)
	kms := apiFixtures(t)
	e.appendAll(kms[:5]...)
	stored, err := e.st.Get(context.Background(), kms[3].KillmailID)
	require.NoError(t, err)

	r := e.get("/api/v1/killmail/" + strconv.FormatInt(kms[3].KillmailID, 10))
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	var body struct {
		Data      json.RawMessage `json:"data"`
		Timestamp string          `json:"timestamp"`
	}
	require.NoError(t, json.Unmarshal(r.body, &body))
	assert.JSONEq(t, string(stored.JSON), string(body.Data))

	t.Run("not found without a fetcher", func(t *testing.T) {
		r := e.get("/api/v1/killmail/123")
		require.Equal(t, http.StatusNotFound, r.status)
		assert.Equal(t, map[string]any{"error": "Killmail not found", "code": "NOT_FOUND", "details": nil},
			withoutTimestamps(t, r.object(t)))
	})
	for _, bad := range []string{"abc", "0", "-5", "123abc", "caf%C3%A9", "%F0%9F%9A%80", "1%EF%BC%92%EF%BC%93", "99999999999999999999"} {
		t.Run("invalid "+bad, func(t *testing.T) {
			r := e.get("/api/v1/killmail/" + bad)
			require.Equal(t, http.StatusBadRequest, r.status)
			assert.Equal(t, map[string]any{"error": "Invalid killmail ID format", "code": "INVALID_KILLMAIL_ID", "details": nil},
				withoutTimestamps(t, r.object(t)))
		})
	}
}

func TestNotFoundShapes(t *testing.T) {
	e := newAPIEnv(t)
	envelope := map[string]any{"error": "Not Found", "code": "NOT_FOUND", "details": nil}
	plain := map[string]any{"error": "Not Found", "status": "404"}
	cases := []struct {
		method, path string
		want         map[string]any
	}{
		{http.MethodGet, "/api/v1/nope", envelope},
		{http.MethodPost, "/api/v1/kills/system/30000142", envelope},
		{http.MethodDelete, "/api/v1/killmail/1", envelope},
		{http.MethodPut, "/api/v1/", envelope},
		{http.MethodGet, "/api/v1/systems/30000142/killmails", envelope},
		{http.MethodGet, "/api/v2/nope", envelope},
		{http.MethodGet, "/dashboard/nope", plain}, // /dashboard is the status page (issue 9)
		{http.MethodGet, "/ping/", plain},
		{http.MethodPost, "/ping", plain},
		{http.MethodGet, "/api/v1", plain},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := e.do(tc.method, tc.path, nil)
			require.Equal(t, http.StatusNotFound, r.status)
			assert.Equal(t, "application/json; charset=utf-8", r.header.Get("Content-Type"))
			m := r.object(t)
			if _, ok := tc.want["code"]; ok {
				m = withoutTimestamps(t, m)
			}
			assert.Equal(t, tc.want, m)
		})
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// idList is n comma-separated ids from first.
func idList(n int, first int64) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(first+int64(i), 10))
	}
	return b.String()
}
