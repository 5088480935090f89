package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/index"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// TestParseInt ports the upstream api_validators_test.exs (API.md §9
// item 15): base-10 ASCII digits with an optional sign, nothing else.
func TestParseInt(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"000123", 123}, {"-123", -123}, {"+5", 5}, {"9223372036854775807", 9223372036854775807}, {"0", 0}} {
		n, err := parseInt(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, n, tc.in)
	}
	for _, bad := range []string{"123abc", "", "café", "🚀", "1２３", "１", " 1", "1 ", "1_000", "0x10", "1e3", "1.0", "+", "-",
		"٣", "9223372036854775808", "-9223372036854775809"} {
		_, err := parseInt(bad)
		assert.Error(t, err, "%q", bad)
	}
	_, err := parseInt("9223372036854775808")
	assert.ErrorIs(t, err, errOverflow)
	for _, bad := range []string{"0", "-1", "000"} {
		_, err := parsePositive(bad)
		assert.ErrorIs(t, err, errNotPos, bad)
	}
}

func TestParseIDList(t *testing.T) {
	ids, err := parseIDList(" 30000142 , 30000144 ")
	require.NoError(t, err)
	assert.Equal(t, []int64{30000142, 30000144}, ids)
	ids, err = parseIDList(strings.TrimSuffix(strings.Repeat("7,", 1000), ","))
	require.NoError(t, err)
	assert.Len(t, ids, 1000)
	for _, bad := range []string{"1,", ",1", "1,,2", "a", "1;2", strings.Repeat("7,", 1000) + "7"} {
		_, err := parseIDList(bad)
		assert.Error(t, err, "%.30q", bad)
	}
}

func TestAcceptable(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   bool
	}{
		{"", true}, {"*/*", true}, {"application/json", true}, {"application/*", true},
		{"application/json; charset=utf-8", true}, {"text/html, */*;q=0.1", true},
		{"text/html", false}, {"application/json;q=0", false}, {"x", false}, {",,,", false},
		{"application/xml, text/csv", false},
	} {
		assert.Equal(t, tc.want, acceptable(tc.header, acceptsJSON), "%q", tc.header)
	}
	assert.Equal(t, mediaJSON, preferred("application/json", mediaJSON, mediaText))
	assert.Equal(t, mediaText, preferred("text/plain, application/json;q=0.5", mediaJSON, mediaText))
	assert.Equal(t, "", preferred("*/*", mediaJSON, mediaText))
	assert.Equal(t, "", preferred("", mediaJSON, mediaText))
}

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []struct{ t, id int64 }{{1, 1}, {1732320000, 128700001}, {1 << 40, 1<<62 + 3}} {
		in := cursorOf(c.t, c.id)
		out, err := decodeCursor(encodeCursor(in))
		require.NoError(t, err)
		assert.Equal(t, in, out)
	}
}

// FuzzParseQuery: any query string either fails with a field-naming
// error or gives a query within the bounds.
func FuzzParseQuery(f *testing.F) {
	for _, seed := range []string{"", "system_id=30000142,30000144&min_value=1000000", "since=2025-11-22T19:30:59Z&until=2025-11-23T00:00:00Z",
		"character_id=2119000001&limit=1000", "cursor=AQID", "system_id=1%EF%BC%92", "limit=-1", "%zz", "a=b&c=d"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseQuery(raw)
		if err != nil {
			var pe *paramError
			require.ErrorAs(t, err, &pe)
			require.NotEmpty(t, pe.field)
			return
		}
		require.True(t, q.Limit >= 1 && q.Limit <= maxQueryLimit, "limit %d", q.Limit)
		for _, l := range [][]int64{q.Systems, q.Characters, q.Corporations, q.Alliances, q.ShipTypes} {
			require.LessOrEqual(t, len(l), maxListIDs)
			for _, id := range l {
				require.Positive(t, id)
			}
		}
		require.GreaterOrEqual(t, q.MinValue, 0.0)
	})
}

// FuzzBulkBody: any body to POST /api/v1/kills/systems is answered 200,
// 400 or 413 with JSON; nothing panics.
func FuzzBulkBody(f *testing.F) {
	for _, seed := range []string{`{"system_ids":[30000142]}`, `{"system_ids":[30000142],"since_hours":"48","limit":2}`,
		`{"system_ids":[]}`, `{"system_ids":[1.5,"x",null]}`, `[1]`, "\x00\xff", `{"system_ids":[1]}}`, ``} {
		f.Add([]byte(seed))
	}
	st, err := store.Open(context.Background(), store.Config{Dir: f.TempDir()})
	require.NoError(f, err)
	f.Cleanup(func() { _ = st.Close() })
	s, err := New(Config{}, Deps{Store: st})
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/v1/kills/systems", strings.NewReader(string(body)))
		s.Handler().ServeHTTP(rec, req)
		require.Contains(t, []int{200, 400, 413}, rec.Code, "%s", rec.Body)
		require.Equal(t, "application/json; charset=utf-8", rec.Header().Get("Content-Type"))
	})
}

func cursorOf(t, id int64) index.Cursor { return index.Cursor{Time: t, KillmailID: id} }
