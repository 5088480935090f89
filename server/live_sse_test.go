package server

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/r3labs/sse/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/cenkalti/backoff.v1"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// TestSSEFilterParser ports upstream's filter_parser_test (API.md §9 item 8).
func TestSSEFilterParser(t *testing.T) {
	ids := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = strconv.Itoa(30000000 + i)
		}
		return strings.Join(parts, ",")
	}
	f1e6, f1e6half := 1000000.0, 1000000.5
	cases := []struct {
		name  string
		query url.Values
		want  sseFilters
		err   string
	}{
		{"empty", url.Values{}, sseFilters{SystemIDs: []int64{}, CharacterIDs: []int64{}}, ""},
		{"trimmed ids", url.Values{"system_ids": {" 30000142 , 30000144 "}},
			sseFilters{SystemIDs: []int64{30000142, 30000144}, CharacterIDs: []int64{}}, ""},
		{"empty items", url.Values{"character_ids": {"95465499,,"}},
			sseFilters{SystemIDs: []int64{}, CharacterIDs: []int64{95465499}}, ""},
		{"integer min", url.Values{"min_value": {"1000000"}}, sseFilters{SystemIDs: []int64{}, CharacterIDs: []int64{}, MinValue: &f1e6}, ""},
		{"float min", url.Values{"min_value": {"1000000.50"}}, sseFilters{SystemIDs: []int64{}, CharacterIDs: []int64{}, MinValue: &f1e6half}, ""},
		{"empty strings unset", url.Values{"system_ids": {""}, "min_value": {""}, "preload_days": {""}},
			sseFilters{SystemIDs: []int64{}, CharacterIDs: []int64{}}, ""},
		{"preload 30", url.Values{"preload_days": {"30"}}, sseFilters{SystemIDs: []int64{}, CharacterIDs: []int64{}, PreloadDays: 30}, ""},
		{"preload 90", url.Values{"preload_days": {"90"}}, sseFilters{SystemIDs: []int64{}, CharacterIDs: []int64{}, PreloadDays: 90}, ""},
		{"preload capped", url.Values{"preload_days": {"120"}}, sseFilters{SystemIDs: []int64{}, CharacterIDs: []int64{}, PreloadDays: 90}, ""},
		{"preload negative", url.Values{"preload_days": {"-1"}}, sseFilters{}, "preload_days must be non-negative"},
		{"preload abc", url.Values{"preload_days": {"abc"}}, sseFilters{}, "Invalid preload_days: 'abc' is not a valid integer"},
		{"101 systems", url.Values{"system_ids": {ids(101)}}, sseFilters{}, "Too many system_ids specified (max 100)"},
		{"101 characters", url.Values{"character_ids": {ids(101)}}, sseFilters{}, "Too many character_ids specified (max 100)"},
		{"100 systems", url.Values{"system_ids": {ids(100)}}, sseFilters{}, ""},
		{"bad system", url.Values{"system_ids": {"abc"}}, sseFilters{}, "Invalid system_ids: 'abc' is not a valid integer"},
		{"bad min", url.Values{"min_value": {"x"}}, sseFilters{}, "Invalid min_value: 'x' is not a valid number"},
		{"negative min", url.Values{"min_value": {"-100"}}, sseFilters{}, "min_value must be non-negative, got -100.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSSEFilters(tc.query)
			if tc.err != "" {
				require.Error(t, err)
				assert.Equal(t, tc.err, err.Error())
				return
			}
			require.NoError(t, err)
			if tc.want.SystemIDs != nil {
				assert.Equal(t, tc.want, got)
			}
		})
	}
}

// TestSSEFilterErrors ports kill_stream_controller_test (API.md §9 item
// 4): the exact 400 bodies.
func TestSSEFilterErrors(t *testing.T) {
	e := newLiveEnv(t, "", "")
	cases := []struct{ query, body string }{
		{"system_ids=invalid", `{"error":{"domain":"validation","type":"invalid_format","message":"Invalid system_ids: 'invalid' is not a valid integer","details":null,"retryable":false}}`},
		{"min_value=-100", `{"error":{"domain":"validation","type":"invalid_format","message":"min_value must be non-negative, got -100.0","details":null,"retryable":false}}`},
	}
	for _, path := range []string{"/api/v1/kills/stream", "/api/v1/kills/stream/enhanced"} {
		for _, tc := range cases {
			t.Run(path+"?"+tc.query, func(t *testing.T) {
				res, err := http.Get(e.httpURL(path + "?" + tc.query))
				require.NoError(t, err)
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				assert.Equal(t, http.StatusBadRequest, res.StatusCode)
				assert.Equal(t, tc.body, string(b))
			})
		}
	}
}

// sseEvent is one parsed event of a raw stream.
type sseEvent struct {
	id, event, data, retry string
	comment                bool
}

// sseReader reads events off a response body.
type sseReader struct {
	t    testing.TB
	res  *http.Response
	rd   *bufio.Reader
	evs  chan sseEvent
	errc chan error
}

func openSSE(t testing.TB, u string, hdr ...string) *sseReader {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { res.Body.Close() })
	require.Equal(t, http.StatusOK, res.StatusCode)
	r := &sseReader{t: t, res: res, rd: bufio.NewReaderSize(res.Body, 1<<16), evs: make(chan sseEvent, 1024), errc: make(chan error, 1)}
	go r.run()
	return r
}

func (r *sseReader) run() {
	var ev sseEvent
	for {
		line, err := r.rd.ReadString('\n')
		if err != nil {
			r.errc <- err
			close(r.evs)
			return
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			r.evs <- ev
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			ev.comment = true
			ev.data = strings.TrimSpace(line[1:])
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				ev.id = v
			case "event":
				ev.event = v
			case "data":
				ev.data = v
			case "retry":
				ev.retry = v
			}
		}
	}
}

func (r *sseReader) next() sseEvent {
	r.t.Helper()
	select {
	case ev, ok := <-r.evs:
		if !ok {
			r.t.Fatalf("stream ended: %v", <-r.errc)
		}
		return ev
	case <-time.After(10 * time.Second):
		r.t.Fatal("timed out waiting for an SSE event")
	}
	return sseEvent{}
}

// until returns the next event that matches, skipping others.
func (r *sseReader) until(match func(sseEvent) bool) sseEvent {
	r.t.Helper()
	for {
		if ev := r.next(); match(ev) {
			return ev
		}
	}
}

func killIDOf(t testing.TB, data string) int64 {
	t.Helper()
	var km struct {
		ID int64 `json:"killmail_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(data), &km), data)
	return km.ID
}

// TestSSEStandardStream: retry first, one data event per matching kill
// with its id, character_ids and min_value really applied (API.md §11
// item 6), and ": ping" after idle time.
func TestSSEStandardStream(t *testing.T) {
	e := newLiveEnv(t, "", "", func(c *Config) { c.Live.SSEKeepAlive = 200 * time.Millisecond })
	kms := liveFixtures(t)
	victim := kms[3].Victim.CharacterID
	r := openSSE(t, e.httpURL("/api/v1/kills/stream?system_ids=30000142&character_ids="+strconv.FormatInt(victim, 10)+"&min_value=5000000"))
	assert.Equal(t, "text/event-stream; charset=utf-8", r.res.Header.Get("Content-Type"))
	assert.Equal(t, "no-cache", r.res.Header.Get("Cache-Control"))
	first := r.next()
	assert.Equal(t, sseEvent{retry: "2000"}, first)
	require.Eventually(t, func() bool { return e.srv.hub.Stats().Subscriptions == 1 }, 5*time.Second, time.Millisecond)

	now := time.Now()
	low := killIn(kms[0], 940001, 30000142, now) // system, value too low
	low.ZKB.TotalValue = 1e6
	offs := e.add(
		low,
		killIn(kms[1], 940002, 30000142, now), // system, value 2e6 too low
		killIn(kms[5], 940003, 30000142, now), // system, 6e6
		killIn(kms[3], 940004, 30002187, now), // character, 4e6 too low
		killIn(kms[8], 940005, 30002187, now), // neither
	)
	hi := killIn(kms[3], 940006, 30002187, now) // character, high
	hi.ZKB.TotalValue = 9e9
	offs = append(offs, e.add(hi)...)
	var got []int64
	for len(got) < 2 {
		ev := r.until(func(ev sseEvent) bool { return !ev.comment })
		assert.Empty(t, ev.event, "unnamed data events")
		got = append(got, killIDOf(t, ev.data))
		want := resumeID(e.st.Epoch(), offs[2])
		if len(got) == 2 {
			want = resumeID(e.st.Epoch(), offs[5])
		}
		assert.Equal(t, want, ev.id)
	}
	assert.Equal(t, []int64{940003, 940006}, got)
	ping := r.next()
	assert.Equal(t, sseEvent{comment: true, data: "ping"}, ping)
}

// TestSSEEnhancedStream ports the event formats of upstream's
// event_formatter_test (API.md §9 item 10) on a real stream: connected,
// batch, transition, killmail, heartbeat, and the 503 past capacity.
func TestSSEEnhancedStream(t *testing.T) {
	e := newLiveEnv(t, "", "", func(c *Config) {
		c.Live.SSEHeartbeat = 300 * time.Millisecond
		c.Live.SSEBatchInterval = time.Millisecond
		c.Live.MaxSSEConnections = 1
	})
	kms := liveFixtures(t)
	now := time.Now()
	var seed []*store.Killmail
	for i := range 60 {
		seed = append(seed, killIn(kms[i%len(kms)], int64(950000+i), 30000142, now.Add(-time.Duration(60-i)*time.Minute)))
	}
	e.add(seed...)
	e.settle()

	r := openSSE(t, e.httpURL("/api/v1/kills/stream/enhanced?system_ids=30000142&preload_days=1"))
	assert.Equal(t, "text/event-stream", r.res.Header.Get("Content-Type"))
	assert.Equal(t, "no", r.res.Header.Get("X-Accel-Buffering"))
	connected := r.next()
	assert.Equal(t, "connected", connected.event)
	assert.JSONEq(t, `{"system_ids":[30000142],"character_ids":[],"min_value":null,"preload_days":1}`,
		string(mustKey(t, connected.data, "filters")))
	assert.Equal(t, `"connected"`, string(mustKey(t, connected.data, "status")))

	var batchIDs []int64
	for n := 1; n <= 2; n++ {
		ev := r.next()
		require.Equal(t, "batch", ev.event)
		var b struct {
			Kills        []json.RawMessage `json:"kills"`
			Count        int               `json:"count"`
			BatchNumber  int               `json:"batch_number"`
			TotalBatches int               `json:"total_batches"`
		}
		require.NoError(t, json.Unmarshal([]byte(ev.data), &b))
		assert.Equal(t, n, b.BatchNumber)
		assert.Equal(t, 2, b.TotalBatches)
		assert.Equal(t, len(b.Kills), b.Count)
		for _, k := range b.Kills {
			batchIDs = append(batchIDs, killIDOf(t, string(k)))
		}
	}
	require.Len(t, batchIDs, 60)
	assert.Equal(t, int64(950000), batchIDs[0], "oldest first")
	tr := r.next()
	assert.Equal(t, "transition", tr.event)
	assert.Equal(t, `"historical_complete"`, string(mustKey(t, tr.data, "status")))
	assert.Equal(t, `60`, string(mustKey(t, tr.data, "total_historical")))

	// The single slot is taken.
	res, err := http.Get(e.httpURL("/api/v1/kills/stream/enhanced"))
	require.NoError(t, err)
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	assert.JSONEq(t, `{"error":{"type":"connection_limit_reached","message":"Too many active SSE connections"}}`, string(b))

	live := killIn(kms[0], 950100, 30000142, now)
	off := e.add(live)[0]
	ev := r.until(func(ev sseEvent) bool { return ev.event == "killmail" })
	assert.Equal(t, resumeID(e.st.Epoch(), off), ev.id)
	var decoded store.Killmail
	require.NoError(t, json.Unmarshal([]byte(ev.data), &decoded))
	want, err := json.Marshal(live)
	require.NoError(t, err)
	assert.JSONEq(t, string(want), ev.data, "the killmail unchanged")
	hb := r.until(func(ev sseEvent) bool { return ev.event == "heartbeat" })
	assert.Equal(t, `"realtime"`, string(mustKey(t, hb.data, "mode")))
	assert.NotEmpty(t, mustKey(t, hb.data, "timestamp"))
}

func mustKey(t testing.TB, data, key string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(data), &m), data)
	v, ok := m[key]
	require.True(t, ok, "%s lacks %q", data, key)
	return v
}

// TestSSEResumeErrors: a Last-Event-ID of another epoch, beyond the head
// or unparseable gets an explicit error event, then live killmails.
func TestSSEResumeErrors(t *testing.T) {
	e := newLiveEnv(t, "", "")
	kms := liveFixtures(t)
	e.add(killIn(kms[0], 960001, 30000142, time.Now()))
	e.settle()
	cases := []struct{ id, typ string }{
		{"0123456789abcdef-1", "epoch_mismatch"},
		{"99999", "offset_ahead"},
		{"not-an-id", "invalid_last_event_id"},
	}
	for _, tc := range cases {
		t.Run(tc.typ, func(t *testing.T) {
			r := openSSE(t, e.httpURL("/api/v1/kills/stream/enhanced"), "Last-Event-ID", tc.id)
			assert.Equal(t, "connected", r.next().event)
			ev := r.next()
			assert.Equal(t, "error", ev.event)
			assert.Equal(t, strconv.Quote(tc.typ), string(mustKey(t, ev.data, "type")))
		})
	}
	t.Run("bare offset", func(t *testing.T) {
		r := openSSE(t, e.httpURL("/api/v1/kills/stream"), "Last-Event-ID", "0")
		assert.Equal(t, "2000", r.next().retry)
		assert.Equal(t, int64(960001), killIDOf(t, r.next().data))
	})
}

// TestSSEResumeAcrossRestart: the r3labs SSE client follows the stream,
// the server stops (store closed) and a new one opens the same directory
// on the same address; the client reconnects with Last-Event-ID and ends
// up with every killmail exactly once, in order.
func TestSSEResumeAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	e := newLiveEnv(t, dir, "")
	addr := e.addr
	kms := liveFixtures(t)
	now := time.Now()
	mk := func(i int) *store.Killmail { return killIn(kms[i%len(kms)], int64(970000+i), 30000142, now) }

	client := sse.NewClient("http://"+addr+"/api/v1/kills/stream?system_ids=30000142", sse.ClientMaxBufferSize(1<<22))
	client.ReconnectStrategy = backoff.NewConstantBackOff(50 * time.Millisecond)
	var mu sync.Mutex
	var got []int64
	seen := map[int64]int{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// The r3labs client ends a subscription on a clean end of stream;
		// subscribing again reuses its LastEventID.
		for ctx.Err() == nil {
			_ = client.SubscribeRawWithContext(ctx, func(ev *sse.Event) {
				if len(ev.Data) == 0 || len(ev.Event) > 0 {
					return
				}
				var km struct {
					ID int64 `json:"killmail_id"`
				}
				if json.Unmarshal(ev.Data, &km) != nil {
					return
				}
				mu.Lock()
				got = append(got, km.ID)
				seen[km.ID]++
				mu.Unlock()
			})
			time.Sleep(20 * time.Millisecond)
		}
	}()
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(got)
	}
	require.Eventually(t, func() bool { return e.srv.hub.Stats().Subscriptions == 1 }, 10*time.Second, 5*time.Millisecond)
	e.add(mk(0))
	require.Eventually(t, func() bool { return count() == 1 }, 10*time.Second, 5*time.Millisecond)
	for i := 1; i < 20; i++ {
		e.add(mk(i))
	}
	require.Eventually(t, func() bool { return count() >= 5 }, 10*time.Second, time.Millisecond)
	e.stop()

	// Written while no server runs: must come from the store on resume.
	st, err := store.Open(context.Background(), store.Config{Dir: dir})
	require.NoError(t, err)
	for i := 20; i < 30; i++ {
		_, err := st.Append(context.Background(), store.Batch{Killmails: []*store.Killmail{mk(i)}})
		require.NoError(t, err)
	}
	require.NoError(t, st.Close())

	e2 := newLiveEnv(t, dir, addr)
	require.Eventually(t, func() bool { return e2.srv.hub.Stats().SSEConnections == 1 }, 10*time.Second, 5*time.Millisecond)
	for i := 30; i < 40; i++ {
		e2.add(mk(i))
	}
	require.Eventually(t, func() bool { return count() >= 40 }, 15*time.Second, 5*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	cancel()
	e2.stop()
	<-done
	mu.Lock()
	defer mu.Unlock()
	want := make([]int64, 40)
	for i := range want {
		want[i] = int64(970000 + i)
	}
	assert.Equal(t, want, got, "every killmail once, in order")
}

// TestFilterMatch ports upstream's filter_handler_test and filter_test
// (API.md §9 items 9 and 11): system OR character, AND min_value, empty
// lists as no criterion; the compiled form agrees.
func TestFilterMatch(t *testing.T) {
	kill := &store.Killmail{
		KillmailID: 1, SystemID: 30000142,
		Victim:    store.Victim{CharacterID: 100},
		Attackers: []store.Attacker{{CharacterID: 200}, {CharacterID: 300}},
		ZKB:       &store.ZKB{TotalValue: 1.5e8},
	}
	noVictim := &store.Killmail{KillmailID: 2, SystemID: 30000142, Attackers: []store.Attacker{{CharacterID: 200}}}
	noZKB := &store.Killmail{KillmailID: 3, SystemID: 30000142, Victim: store.Victim{CharacterID: 100}}
	cases := []struct {
		name string
		f    Filter
		km   *store.Killmail
		want bool
	}{
		{"no filters", Filter{}, kill, true},
		{"victim", Filter{Characters: []int64{100}}, kill, true},
		{"attacker", Filter{Characters: []int64{300}}, kill, true},
		{"other character", Filter{Characters: []int64{999}}, kill, false},
		{"system", Filter{Systems: []int64{30000142}}, kill, true},
		{"other system", Filter{Systems: []int64{30000143}}, kill, false},
		{"min below value", Filter{MinValue: 1e8}, kill, true},
		{"min above value", Filter{MinValue: 2e8}, kill, false},
		{"character and high min", Filter{Characters: []int64{100}, MinValue: 2e8}, kill, false},
		{"system matches, character not", Filter{Characters: []int64{999}, Systems: []int64{30000142}}, kill, true},
		{"character matches, system not", Filter{Characters: []int64{100}, Systems: []int64{999}}, kill, true},
		{"no victim, attacker matches", Filter{Characters: []int64{200}}, noVictim, true},
		{"no zkb with min", Filter{MinValue: 1}, noZKB, false},
		{"no zkb without min", Filter{Characters: []int64{100}}, noZKB, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.f.Match(tc.km))
			assert.Equal(t, tc.want, compileFilter(tc.f, true).match(tc.km), "compiled")
		})
	}
	t.Run("websocket empty filter matches nothing", func(t *testing.T) {
		assert.False(t, compileFilter(Filter{}, false).match(kill))
	})
}
