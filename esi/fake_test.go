package esi_test

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
)

const fixtures = "../testdata/fixtures/"

// fixture is one line of killmails.jsonl with its hash from the index.
type fixture struct {
	id   int64
	hash string // empty when the source gave none
	body []byte
}

func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	hashes := map[int64]string{}
	f, err := os.Open(fixtures + "killmails-index.csv")
	require.NoError(t, err)
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	for _, r := range rows[1:] {
		id, err := strconv.ParseInt(r[0], 10, 64)
		require.NoError(t, err)
		hashes[id] = r[1]
	}
	jf, err := os.Open(fixtures + "killmails.jsonl")
	require.NoError(t, err)
	defer jf.Close()
	var out []fixture
	sc := bufio.NewScanner(jf)
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var head struct {
			ID int64 `json:"killmail_id"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &head))
		out = append(out, fixture{id: head.ID, hash: hashes[head.ID], body: bytes.Clone(sc.Bytes())})
	}
	require.NoError(t, sc.Err())
	require.Len(t, out, 88)
	return out
}

// fault is what the fake does to one request instead of answering it.
type fault int

const (
	faultNone      fault = iota
	fault502             // 502 with a JSON error body
	fault503             // 503, as for a route that is down
	faultHTML            // 200 with an HTML page
	faultTruncated       // 200 with half the JSON
	faultSlow            // answers after the client's timeout
	fault420             // error limited: Remain 0, Reset 1
	fault429             // rate limited: Retry-After 1
	faultLowBudget       // a normal answer whose Remain is under the floor, Reset 1
)

// fakeESI plays ESI from the real fixtures: killmails by id and hash,
// names synthesized per category ("Character 123"), tickers, types and
// systems in the shape of CCP's examples. It injects faults and checks
// that the client respects holds and batch limits.
type fakeESI struct {
	t       testing.TB
	srv     *httptest.Server
	kms     map[string][]byte // "id/hash" → body
	cats    map[int64]string  // id → /universe/names/ category
	unknown map[int64]bool    // ids ESI answers 404 for
	shapes  map[string]map[string]any
	errBody map[string]json.RawMessage
	slow    time.Duration

	mu         sync.Mutex
	n          int
	byRoute    map[string]int
	idsAsked   map[int64]int
	script     []fault
	every      []everyFault
	heldUntil  time.Time
	violations []string
	agents     map[string]int
	accepts    map[string]int
	down       map[string]bool // routes answering 503
}

type everyFault struct {
	f fault
	n int
}

func newFakeESI(t testing.TB, kms []fixture) *fakeESI {
	t.Helper()
	f := &fakeESI{
		t: t, kms: map[string][]byte{}, cats: map[int64]string{}, unknown: map[int64]bool{},
		shapes: map[string]map[string]any{}, byRoute: map[string]int{}, idsAsked: map[int64]int{},
		agents: map[string]int{}, accepts: map[string]int{}, down: map[string]bool{}, slow: time.Second,
	}
	for _, k := range kms {
		if k.hash != "" {
			f.kms[fmt.Sprintf("%d/%s", k.id, k.hash)] = k.body
		}
		f.learn(k.body)
	}
	for name, file := range map[string]string{"corporation": "corporation.json", "alliance": "alliance.json",
		"type": "universe-type-587.json", "system": "universe-system.json"} {
		b, err := os.ReadFile(fixtures + "esi/" + file)
		require.NoError(t, err)
		m := map[string]any{}
		require.NoError(t, json.Unmarshal(b, &m))
		f.shapes[name] = m
	}
	b, err := os.ReadFile(fixtures + "esi/killmail-error-bodies.json")
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &f.errBody))
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

// learn records the category of every id of a killmail body.
func (f *fakeESI) learn(body []byte) {
	var km struct {
		System   int64            `json:"solar_system_id"`
		Victim   map[string]any   `json:"victim"`
		Attacker []map[string]any `json:"attackers"`
	}
	require.NoError(f.t, json.Unmarshal(body, &km))
	f.cats[km.System] = "solar_system"
	for _, p := range append(km.Attacker, km.Victim) {
		for key, cat := range map[string]string{"character_id": "character", "corporation_id": "corporation",
			"alliance_id": "alliance", "faction_id": "faction", "ship_type_id": "inventory_type", "weapon_type_id": "inventory_type"} {
			if v, ok := p[key].(float64); ok {
				f.cats[int64(v)] = cat
			}
		}
	}
}

// name is the name the fake gives id ("Character 123").
func (f *fakeESI) name(id int64) string {
	cat := f.cats[id]
	if cat == "" || f.unknown[id] {
		return ""
	}
	return fmt.Sprintf("%s %d", strings.ToUpper(cat[:1])+cat[1:], id)
}

func ticker(id int64) string { return "T" + strconv.FormatInt(id%100000, 36) }

func (f *fakeESI) client(t testing.TB, cfg esi.Config) *esi.Client {
	t.Helper()
	cfg.BaseURL = f.srv.URL
	if cfg.RatePerSecond == 0 {
		cfg.RatePerSecond, cfg.Burst = 1e6, 1000
	}
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Millisecond
	}
	return esi.New(f.srv.Client(), cfg, slog.New(slog.DiscardHandler))
}

// requests returns how many requests the fake has seen, in all or on one
// route ("names", "corporation", …).
func (f *fakeESI) requests(route ...string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(route) == 0 {
		return f.n
	}
	return f.byRoute[route[0]]
}

func (f *fakeESI) inject(faults ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = append(f.script, faults...)
}

func (f *fakeESI) injectEvery(fl fault, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.every = append(f.every, everyFault{fl, n})
}

func (f *fakeESI) setDown(route string, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[route] = down
}

func (f *fakeESI) clearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script, f.every = nil, nil
}

func (f *fakeESI) checkNoViolations(t testing.TB) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Empty(t, f.violations)
}

func route(path string) string {
	switch {
	case strings.HasPrefix(path, "/killmails/"):
		return "killmail"
	case path == "/universe/names/":
		return "names"
	case strings.HasPrefix(path, "/corporations/"):
		return "corporation"
	case strings.HasPrefix(path, "/alliances/"):
		return "alliance"
	case strings.HasPrefix(path, "/universe/types/"):
		return "type"
	case strings.HasPrefix(path, "/universe/systems/"):
		return "system"
	}
	return "other"
}

// admit counts the request, checks holds and picks its fault.
func (f *fakeESI) admit(r *http.Request) fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.byRoute[route(r.URL.Path)]++
	f.agents[r.Header.Get("User-Agent")]++
	f.accepts[r.Header.Get("Accept")]++
	if now := time.Now(); now.Before(f.heldUntil) {
		f.violations = append(f.violations, fmt.Sprintf("%s %s arrived %v before the hold ended",
			r.Method, r.URL.Path, f.heldUntil.Sub(now)))
	}
	fl := faultNone
	if f.down[route(r.URL.Path)] {
		return fault503
	}
	if len(f.script) > 0 {
		fl, f.script = f.script[0], f.script[1:]
	} else {
		for _, e := range f.every {
			if f.n%e.n == 0 {
				fl = e.f
				break
			}
		}
	}
	if fl == fault420 || fl == fault429 || fl == faultLowBudget {
		// The client learns of the hold after this instant, so nothing
		// it sends may arrive within the next second.
		f.heldUntil = time.Now().Add(time.Second)
	}
	return fl
}

func (f *fakeESI) serve(w http.ResponseWriter, r *http.Request) {
	fl := f.admit(r)
	h := w.Header()
	h.Set("X-Esi-Error-Limit-Remain", "100")
	h.Set("X-Esi-Error-Limit-Reset", "60")
	switch fl {
	case fault502:
		f.writeError(w, http.StatusBadGateway, `{"error":"Bad gateway"}`)
		return
	case fault503:
		f.writeError(w, http.StatusServiceUnavailable, string(f.errBody["503"]))
		return
	case faultHTML:
		h.Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>")
		return
	case faultSlow:
		select {
		case <-r.Context().Done():
		case <-time.After(f.slow):
		}
		return
	case fault420:
		h.Set("X-Esi-Error-Limit-Remain", "0")
		h.Set("X-Esi-Error-Limit-Reset", "1")
		f.writeError(w, 420, string(f.errBody["420"]))
		return
	case fault429:
		h.Del("X-Esi-Error-Limit-Remain")
		h.Del("X-Esi-Error-Limit-Reset")
		h.Set("Retry-After", "1")
		f.writeError(w, http.StatusTooManyRequests, `{"error":"Too many requests"}`)
		return
	case faultLowBudget:
		h.Set("X-Esi-Error-Limit-Remain", "3")
		h.Set("X-Esi-Error-Limit-Reset", "1")
	}
	status, body := f.answer(r)
	if fl == faultTruncated && status == http.StatusOK {
		body = body[:len(body)/2]
	}
	if status != http.StatusOK {
		f.writeError(w, status, string(body))
		return
	}
	h.Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(body)
}

func (f *fakeESI) writeError(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// answer is the healthy ESI's answer.
func (f *fakeESI) answer(r *http.Request) (int, []byte) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	id, _ := strconv.ParseInt(parts[len(parts)-1], 10, 64)
	notFound := []byte(`{"error":"Not found"}`)
	switch rt := route(r.URL.Path); {
	case rt == "killmail" && r.Method == http.MethodGet && len(parts) == 3:
		if b, ok := f.kms[parts[1]+"/"+parts[2]]; ok {
			return http.StatusOK, b
		}
		return http.StatusUnprocessableEntity, f.errBody["422"]
	case rt == "names" && r.Method == http.MethodPost:
		return f.names(r)
	case rt == "corporation" || rt == "alliance":
		if f.cats[id] != rt || f.unknown[id] {
			return http.StatusNotFound, notFound
		}
		return http.StatusOK, f.shape(rt, map[string]any{"name": f.name(id), "ticker": ticker(id)})
	case rt == "type":
		if f.cats[id] != "inventory_type" || f.unknown[id] {
			return http.StatusNotFound, notFound
		}
		return http.StatusOK, f.shape(rt, map[string]any{"type_id": id, "name": f.name(id)})
	case rt == "system":
		if f.cats[id] != "solar_system" {
			return http.StatusNotFound, notFound
		}
		return http.StatusOK, f.shape(rt, map[string]any{"system_id": id, "name": f.name(id)})
	}
	return http.StatusNotFound, notFound
}

// shape is CCP's example of the route with some keys replaced.
func (f *fakeESI) shape(name string, set map[string]any) []byte {
	m := map[string]any{}
	for k, v := range f.shapes[name] {
		m[k] = v
	}
	for k, v := range set {
		m[k] = v
	}
	b, err := json.Marshal(m)
	require.NoError(f.t, err)
	return b
}

// names plays POST /universe/names/: 1–1000 ids, 404 for the whole batch
// if one id is unknown.
func (f *fakeESI) names(r *http.Request) (int, []byte) {
	var ids []int64
	if err := json.NewDecoder(r.Body).Decode(&ids); err != nil || len(ids) == 0 || len(ids) > 1000 {
		f.mu.Lock()
		f.violations = append(f.violations, fmt.Sprintf("names batch of %d ids (err %v)", len(ids), err))
		f.mu.Unlock()
		return http.StatusBadRequest, []byte(`{"error":"Bad request"}`)
	}
	type entry struct {
		Category string `json:"category"`
		ID       int64  `json:"id"`
		Name     string `json:"name"`
	}
	out := make([]entry, 0, len(ids))
	f.mu.Lock()
	for _, id := range ids {
		f.idsAsked[id]++
	}
	f.mu.Unlock()
	for _, id := range ids {
		if f.name(id) == "" {
			return http.StatusNotFound, []byte(`{"error":"Ensure all IDs are valid before resolving."}`)
		}
		out = append(out, entry{Category: f.cats[id], ID: id, Name: f.name(id)})
	}
	b, err := json.Marshal(out)
	require.NoError(f.t, err)
	return http.StatusOK, b
}

// maxAsked returns how often the most asked id was posted to names.
func (f *fakeESI) maxAsked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Max(append(mapValues(f.idsAsked), 0))
}

func mapValues(m map[int64]int) []int {
	out := make([]int, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
