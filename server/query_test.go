package server_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// queryPage is one decoded /api/v2/killmails answer.
type queryPage struct {
	Data struct {
		Killmails []struct {
			KillmailID int64 `json:"killmail_id"`
		} `json:"killmails"`
		NextCursor *string `json:"next_cursor"`
		Count      int     `json:"count"`
	} `json:"data"`
	Timestamp string `json:"timestamp"`
}

func (e *apiEnv) query(t testing.TB, params url.Values) queryPage {
	t.Helper()
	r := e.get("/api/v2/killmails?" + params.Encode())
	require.Equal(t, http.StatusOK, r.status, "%s: %s", params.Encode(), r.body)
	var p queryPage
	require.NoError(t, json.Unmarshal(r.body, &p))
	require.Len(t, p.Data.Killmails, p.Data.Count)
	require.NotEmpty(t, p.Timestamp)
	return p
}

// walk follows next_cursor to the end and returns every id in order.
func (e *apiEnv) walk(t testing.TB, params url.Values) []int64 {
	t.Helper()
	var ids []int64
	for page := 0; ; page++ {
		require.Less(t, page, 500, "the walk does not end")
		p := e.query(t, params)
		for _, k := range p.Data.Killmails {
			ids = append(ids, k.KillmailID)
		}
		if p.Data.NextCursor == nil {
			return ids
		}
		require.Regexp(t, `^[A-Za-z0-9_-]+$`, *p.Data.NextCursor)
		params.Set("cursor", *p.Data.NextCursor)
	}
}

func TestQueryShape(t *testing.T) {
	e := newAPIEnv(t)
	kms := apiFixtures(t)
	e.appendAll(kms...)
	r := e.get("/api/v2/killmails?limit=2")
	require.Equal(t, http.StatusOK, r.status)
	m := withoutTimestamps(t, r.object(t))
	data := m["data"].(map[string]any)
	assert.ElementsMatch(t, []string{"killmails", "next_cursor", "count"}, keys(data))
	assert.Equal(t, json.Number("2"), data["count"])
	assert.IsType(t, "", data["next_cursor"])

	r = e.get("/api/v2/killmails?system_id=31000005")
	data = r.object(t)["data"].(map[string]any)
	assert.Equal(t, []any{}, data["killmails"])
	assert.Nil(t, data["next_cursor"])
	assert.Equal(t, json.Number("0"), data["count"])

	// The default page is 100, so the 88 fixtures are one page.
	p := e.query(t, url.Values{})
	assert.Equal(t, 88, p.Data.Count)
	assert.Nil(t, p.Data.NextCursor)
}

func TestQueryValidation(t *testing.T) {
	e := newAPIEnv(t)
	type want struct{ field, msg string }
	cases := []struct {
		query string
		want  want
	}{
		{"system_id=abc", want{"system_id", `Invalid system_id: "abc" is not a valid integer`}},
		{"system_id=1,,2", want{"system_id", `Invalid system_id: "" is not a valid integer`}},
		{"system_id=0", want{"system_id", `Invalid system_id: "0" must be a positive integer`}},
		{"system_id=-5", want{"system_id", `Invalid system_id: "-5" must be a positive integer`}},
		{"system_id=123abc", want{"system_id", `Invalid system_id: "123abc" is not a valid integer`}},
		{"system_id=caf%C3%A9", want{"system_id", `Invalid system_id: "café" is not a valid integer`}},
		{"system_id=%F0%9F%9A%80", want{"system_id", `Invalid system_id: "🚀" is not a valid integer`}},
		{"system_id=1%EF%BC%92%EF%BC%93", want{"system_id", `Invalid system_id: "1２３" is not a valid integer`}},
		{"character_id=99999999999999999999", want{"character_id", `Invalid character_id: "99999999999999999999" is out of range`}},
		{"corporation_id=1.5", want{"corporation_id", `Invalid corporation_id: "1.5" is not a valid integer`}},
		{"alliance_id=0x10", want{"alliance_id", `Invalid alliance_id: "0x10" is not a valid integer`}},
		{"ship_type_id=" + idList(1001, 1), want{"ship_type_id", "Invalid ship_type_id: more than 1000 ids (got 1001)"}},
		{"system_id=" + idList(10000, 1), want{"system_id", "Invalid system_id: more than 1000 ids (got 10000)"}},
		{"since=yesterday", want{"since", `Invalid since: "yesterday" is not an RFC 3339 time`}},
		{"since=2025-01-01", want{"since", `Invalid since: "2025-01-01" is not an RFC 3339 time`}},
		{"until=2025-01-01T00:00:00", want{"until", `Invalid until: "2025-01-01T00:00:00" is not an RFC 3339 time`}},
		{"since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z", want{"until", "Invalid until: must be after since"}},
		{"min_value=-100", want{"min_value", "Invalid min_value: must be non-negative, got -100"}},
		{"min_value=abc", want{"min_value", `Invalid min_value: "abc" is not a valid number`}},
		{"min_value=NaN", want{"min_value", `Invalid min_value: "NaN" is not a valid number`}},
		{"min_value=1e999", want{"min_value", `Invalid min_value: "1e999" is not a valid number`}},
		{"limit=0", want{"limit", "Invalid limit: must be between 1 and 1000, got 0"}},
		{"limit=-1", want{"limit", "Invalid limit: must be between 1 and 1000, got -1"}},
		{"limit=1001", want{"limit", "Invalid limit: must be between 1 and 1000, got 1001"}},
		{"limit=ten", want{"limit", `Invalid limit: "ten" is not a valid integer`}},
		{"system_ids=1", want{"system_ids", "Invalid system_ids: unknown parameter"}},
		{"%zz", want{"query", "Invalid query: malformed query string"}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%.60s", tc.query), func(t *testing.T) {
			r := e.get("/api/v2/killmails?" + tc.query)
			require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
			assert.Equal(t, map[string]any{"error": tc.want.msg, "code": "INVALID_PARAMETER",
				"details": map[string]any{"field": tc.want.field}}, withoutTimestamps(t, r.object(t)))
		})
	}
	for _, c := range []string{"x", "AAAA", "%00", "not-base64!", strings.Repeat("A", 200), "AQID", "AgICAg"} {
		t.Run("cursor "+c, func(t *testing.T) {
			r := e.get("/api/v2/killmails?cursor=" + c)
			require.Equal(t, http.StatusBadRequest, r.status, "%s", r.body)
			assert.Equal(t, map[string]any{"error": "Invalid cursor: is not a cursor this server issued",
				"code": "INVALID_CURSOR", "details": map[string]any{"field": "cursor"}}, withoutTimestamps(t, r.object(t)))
		})
	}
	t.Run("empty values mean unset", func(t *testing.T) {
		r := e.get("/api/v2/killmails?system_id=&since=&limit=&cursor=")
		assert.Equal(t, http.StatusOK, r.status, "%s", r.body)
	})
}

// TestQueryMatchesBruteForce is the property: for random filter
// combinations, walking every page of /api/v2/killmails over the real
// fixtures gives exactly a plain filter and sort of the same killmails,
// with no duplicate and no gap.
func TestQueryMatchesBruteForce(t *testing.T) {
	e := newAPIEnv(t)
	kms := apiFixtures(t)
	r := rand.New(rand.NewPCG(3, 5))
	for _, km := range kms {
		if r.IntN(3) > 0 {
			km.ZKB = &store.ZKB{Hash: "h", TotalValue: float64(r.IntN(500)) * 1e6}
		}
	}
	r.Shuffle(len(kms), func(i, j int) { kms[i], kms[j] = kms[j], kms[i] })
	e.appendAll(kms...)
	var pools [5][]int64
	var times []time.Time
	for _, km := range kms {
		pools[0] = append(pools[0], km.SystemID)
		pools[1] = append(pools[1], km.Characters()...)
		pools[2] = append(pools[2], km.Corporations()...)
		pools[3] = append(pools[3], km.Alliances()...)
		pools[4] = append(pools[4], km.Victim.ShipTypeID)
		times = append(times, km.KillTime.Time)
	}
	names := [5]string{"system_id", "character_id", "corporation_id", "alliance_id", "ship_type_id"}
	for i := range 300 {
		f := bruteFilter{limit: r.IntN(15) + 1}
		params := url.Values{"limit": {strconv.Itoa(f.limit)}}
		for d, name := range names {
			if r.IntN(3) == 0 {
				f.ids[d] = pickIDs(r, pools[d], 4)
				params.Set(name, joinIDs(f.ids[d]))
			}
		}
		if r.IntN(2) == 0 {
			f.since = times[r.IntN(len(times))].Add(time.Duration(r.IntN(3)-1) * time.Second)
			params.Set("since", f.since.Format(time.RFC3339))
		}
		if r.IntN(3) == 0 {
			f.until = times[r.IntN(len(times))].Add(time.Duration(r.IntN(3)) * time.Second)
			if !f.since.IsZero() && !f.until.After(f.since) {
				f.until = time.Time{}
			} else {
				params.Set("until", f.until.Format(time.RFC3339))
			}
		}
		if r.IntN(3) == 0 {
			f.minValue = float64(r.IntN(500)) * 1e6
			params.Set("min_value", strconv.FormatFloat(f.minValue, 'f', -1, 64))
		}
		want := f.apply(kms)
		got := e.walk(t, params)
		require.Equal(t, want, got, "query %d: %s", i, params.Encode())
	}
}

// TestQueryCursorStable: pages walked while new killmails arrive (newer
// and older than the walk's position) have no duplicate and no gap among
// the killmails that were there when the walk began.
func TestQueryCursorStable(t *testing.T) {
	e := newAPIEnv(t)
	kms := apiFixtures(t)
	e.appendAll(kms[:60]...)
	before := e.walk(t, url.Values{"limit": {"1000"}})
	require.Len(t, before, 60)

	params := url.Values{"limit": {"7"}}
	var got []int64
	for page := 0; ; page++ {
		p := e.query(t, params)
		for _, k := range p.Data.Killmails {
			got = append(got, k.KillmailID)
		}
		if page < 4 {
			e.appendAll(kms[60+page*7 : 60+page*7+7]...) // arrivals of every age
		}
		if p.Data.NextCursor == nil {
			break
		}
		params.Set("cursor", *p.Data.NextCursor)
	}
	seen := map[int64]bool{}
	for _, id := range got {
		require.False(t, seen[id], "duplicate %d", id)
		seen[id] = true
	}
	for _, id := range before {
		require.True(t, seen[id], "gap: %d missing", id)
	}
	// The walk is in order: every id appears where the final order puts it.
	final := e.walk(t, url.Values{"limit": {"1000"}})
	var order []int64
	for _, id := range final {
		if seen[id] {
			order = append(order, id)
		}
	}
	assert.Equal(t, order, got)
}

// bruteFilter is the reference semantics of /api/v2/killmails.
type bruteFilter struct {
	ids          [5][]int64 // system, character, corporation, alliance, ship type
	since, until time.Time
	minValue     float64
	limit        int
}

func (f bruteFilter) match(km *store.Killmail) bool {
	dims := [5][]int64{{km.SystemID}, km.Characters(), km.Corporations(), km.Alliances(), {km.Victim.ShipTypeID}}
	for d, want := range f.ids {
		if len(want) > 0 && !slices.ContainsFunc(dims[d], func(id int64) bool { return slices.Contains(want, id) }) {
			return false
		}
	}
	t := km.KillTime.Time
	switch {
	case !f.since.IsZero() && t.Before(f.since):
		return false
	case !f.until.IsZero() && !t.Before(f.until):
		return false
	case f.minValue > 0 && km.TotalValue() < f.minValue:
		return false
	}
	return true
}

func (f bruteFilter) apply(kms []*store.Killmail) []int64 {
	var hits []*store.Killmail
	for _, km := range kms {
		if f.match(km) {
			hits = append(hits, km)
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		a, b := hits[i], hits[j]
		if !a.KillTime.Equal(b.KillTime.Time) {
			return a.KillTime.After(b.KillTime.Time)
		}
		return a.KillmailID > b.KillmailID
	})
	var ids []int64
	for _, km := range hits {
		ids = append(ids, km.KillmailID)
	}
	return ids
}

func pickIDs(r *rand.Rand, pool []int64, n int) []int64 {
	var out []int64
	for range r.IntN(n) + 1 {
		out = append(out, pool[r.IntN(len(pool))])
	}
	if r.IntN(5) == 0 {
		out = append(out, 987654321)
	}
	return out
}

func joinIDs(ids []int64) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatInt(id, 10)
	}
	return strings.Join(s, ",")
}
