package server_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/server"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// The benchmark store: 1M compact synthetic killmails over 90 days,
// built once and kept in a directory reused by later runs (building it
// takes minutes). Set WK_BENCH_DIR to put it elsewhere; delete the
// directory to rebuild it.
const (
	benchKillmails = 1_000_000
	benchSpan      = 90 * 24 * time.Hour
	benchSystems   = 8000
	benchVersion   = "v4" // bump when the generator or the record format changes
)

// benchEnd is the kill time of the newest synthetic killmail; fixed so a
// kept store stays valid.
var benchEnd = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)

var (
	benchOnce  sync.Once
	benchStore *store.Store
	benchErr   error
)

func openBenchStore(b *testing.B) *store.Store {
	b.Helper()
	benchOnce.Do(func() { benchStore, benchErr = buildBenchStore() })
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchStore
}

func buildBenchStore() (*store.Store, error) {
	dir := os.Getenv("WK_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "wanderer-kills-bench-1m-"+benchVersion)
	}
	done := filepath.Join(dir, "COMPLETE")
	if _, err := os.Stat(done); err != nil {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
	}
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Dir: dir, CacheBytes: 256 << 20})
	if err != nil {
		return nil, err
	}
	if st.Count() >= benchKillmails {
		return st, nil
	}
	start := time.Now()
	gen := newBenchGen()
	for n := 0; n < benchKillmails; n += 1000 {
		batch := make([]*store.Killmail, 1000)
		for i := range batch {
			batch[i] = gen.killmail(n + i)
		}
		if _, err := st.Append(ctx, store.Batch{Killmails: batch, Quiet: true}); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(os.Stderr, "built %d synthetic killmails in %s (%s)\n", st.Count(), time.Since(start).Round(time.Second), dir)
	return st, os.WriteFile(done, nil, 0o644)
}

// benchGen makes deterministic compact killmails: Zipf-distributed
// systems, characters, corporations and alliances, 1-5 attackers, no
// items.
type benchGen struct {
	r                                      *rand.Rand
	system, character, corporation, allian *rand.Zipf
	ships                                  []int64
}

func newBenchGen() *benchGen {
	r := rand.New(rand.NewPCG(42, 1))
	src := rand.New(rand.NewPCG(43, 2))
	return &benchGen{
		r:           r,
		system:      rand.NewZipf(src, 1.1, 8, benchSystems-1),
		character:   rand.NewZipf(src, 1.05, 50, 500_000),
		corporation: rand.NewZipf(src, 1.1, 20, 20_000),
		allian:      rand.NewZipf(src, 1.2, 5, 3_000),
		ships:       []int64{587, 588, 603, 11202, 17722, 24692, 24688, 28850, 670, 33468, 29984, 17738, 12021, 2006},
	}
}

// benchSystemID maps a popularity rank to a system id.
func benchSystemID(rank uint64) int64 { return 30000001 + int64(rank) }

func (g *benchGen) party() (char, corp, alli int64) {
	char = 90000000 + int64(g.character.Uint64())
	corp = 98000000 + int64(g.corporation.Uint64())
	if g.r.IntN(4) > 0 {
		alli = 99000000 + int64(g.allian.Uint64())
	}
	return
}

func (g *benchGen) killmail(i int) *store.Killmail {
	at := benchEnd.Add(-benchSpan / benchKillmails * time.Duration(benchKillmails-1-i)) // no overflow
	at = at.Add(-time.Duration(g.r.IntN(600)) * time.Second)
	char, corp, alli := g.party()
	km := &store.Killmail{
		KillmailID: 100_000_000 + int64(i),
		KillTime:   store.Time{Time: at},
		SystemID:   benchSystemID(g.system.Uint64()),
		Victim: store.Victim{CharacterID: char, CorporationID: corp, AllianceID: alli,
			ShipTypeID: g.ships[g.r.IntN(len(g.ships))], DamageTaken: int64(g.r.IntN(50000)),
			Names: store.Names{CharacterName: "Victim", ShipName: "Ship"}},
		ZKB: &store.ZKB{Hash: fmt.Sprintf("%040x", i), TotalValue: math.Round(math.Exp(g.r.NormFloat64()*1.5 + 17)), Points: 1},
	}
	for j := range g.r.IntN(5) + 1 {
		c, co, al := g.party()
		km.Attackers = append(km.Attackers, store.Attacker{CharacterID: c, CorporationID: co, AllianceID: al,
			ShipTypeID: g.ships[g.r.IntN(len(g.ships))], DamageDone: int64(g.r.IntN(5000)), FinalBlow: j == 0})
	}
	return km
}

// benchHTTP runs GET paths round-robin through the full HTTP stack and
// reports p50 and p99 latency in µs.
func benchHTTP(b *testing.B, paths []string) {
	st := openBenchStore(b)
	<-st.Warmed()
	srv, err := server.New(server.Config{}, server.Deps{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	client := ts.Client()
	get := func(p string) int {
		res, err := client.Get(ts.URL + p)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("%s: %d", p, res.StatusCode)
		}
		return int(n)
	}
	for _, p := range paths { // warm the caches and the connection
		get(p)
	}
	lat := make([]time.Duration, 0, 4096)
	var bytes int
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		bytes += get(paths[i%len(paths)])
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(bytes)/float64(len(lat)), "resp-bytes")
}

// BenchmarkSystemKills: /api/v1/kills/system/:id (the default limit of
// 50) over busy, middling and quiet systems, the window being the last
// 24 h of the data set.
func BenchmarkSystemKills(b *testing.B) {
	hours := int(time.Since(benchEnd.Add(-24*time.Hour)).Hours()) + 1
	var paths []string
	for _, rank := range []uint64{0, 1, 2, 5, 10, 30, 100, 300, 1000, 3000} {
		paths = append(paths, fmt.Sprintf("/api/v1/kills/system/%d?since_hours=%d", benchSystemID(rank), hours))
	}
	benchHTTP(b, paths)
}

// BenchmarkQueryThreeFilters: /api/v2/killmails with an alliance, three
// ship types and a 7-day window, 50 a page.
func BenchmarkQueryThreeFilters(b *testing.B) {
	since := benchEnd.Add(-7 * 24 * time.Hour).Format(time.RFC3339)
	var paths []string
	for _, rank := range []uint64{0, 1, 3, 10, 30, 100} {
		paths = append(paths, fmt.Sprintf("/api/v2/killmails?alliance_id=%d&ship_type_id=587,670,11202&since=%s&limit=50",
			99000000+rank, since))
	}
	benchHTTP(b, paths)
}
