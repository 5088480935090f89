package index_test

import (
	"bytes"
	"io"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

const millionDocs = 1_000_000

// million is the 1M-doc realistic corpus, its index and its snapshot,
// built once and shared by every benchmark of the run.
var million struct {
	once sync.Once
	docs []index.Doc
	ix   *index.Index
	snap []byte
}

func loadMillion(b *testing.B) {
	b.Helper()
	million.once.Do(func() {
		t0 := time.Now()
		million.docs = genDocs(42, millionDocs, realistic)
		t1 := time.Now()
		million.ix = build(b, million.docs)
		var buf bytes.Buffer
		if _, err := million.ix.WriteTo(&buf); err != nil {
			b.Fatal(err)
		}
		million.snap = buf.Bytes()
		b.Logf("1M corpus: generated in %v, indexed in %v, snapshot %d bytes",
			t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond), len(million.snap))
	})
	b.ResetTimer()
}

// end is the newest kill time of the corpus: queries ask for "the last
// week" as of some moment in the 60 days.
func end() int64 { return start + int64(realistic.days)*86400 }

// measure runs query(i) b.N times and reports p50 and p99 latency in µs
// and the mean hits per query.
func measure(b *testing.B, query func(i int) index.Query) {
	b.Helper()
	lat := make([]time.Duration, 0, b.N)
	hits := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		q := query(i)
		t0 := time.Now()
		p := million.ix.Search(q)
		lat = append(lat, time.Since(t0))
		hits += len(p.Hits)
	}
	b.StopTimer()
	slices.Sort(lat)
	at := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(at(0.50), "p50-us")
	b.ReportMetric(at(0.99), "p99-us")
	b.ReportMetric(float64(hits)/float64(len(lat)), "hits/op")
}

// BenchmarkSearchSystemWindow asks for the newest 50 kills of a popular-ish
// system (zipf ranks 5 to 50, ~0.2-1% of all kills) in a 7-day window
// ending anywhere in the 60 days.
func BenchmarkSearchSystemWindow(b *testing.B) {
	loadMillion(b)
	r := rand.New(rand.NewPCG(1, 1))
	measure(b, func(int) index.Query {
		until := end() - r.Int64N(53*86400)
		return index.Query{
			Systems: []int64{30_000_000 + 5 + r.Int64N(46)},
			Since:   until - 7*86400, Until: until, Limit: 50,
		}
	})
}

// BenchmarkSearchIntersection3 intersects three dimensions, taken from
// real docs of the corpus so that they do co-occur.
func BenchmarkSearchIntersection3(b *testing.B) {
	loadMillion(b)
	r := rand.New(rand.NewPCG(2, 2))
	pick := func() index.Doc { return million.docs[r.IntN(len(million.docs))] }
	b.Run("systems-or+corporation+30d", func(b *testing.B) {
		measure(b, func(int) index.Query {
			d := pick()
			return index.Query{
				Systems:      []int64{d.System, 30_000_000 + r.Int64N(20), 30_000_000 + r.Int64N(20)},
				Corporations: d.Corporations[:1],
				Since:        end() - 30*86400, Limit: 50,
			}
		})
	})
	b.Run("character+alliance+ship", func(b *testing.B) {
		measure(b, func(int) index.Query {
			d := pick()
			for len(d.Alliances) == 0 {
				d = pick()
			}
			return index.Query{
				Characters: d.Characters[:1], Alliances: d.Alliances[:1], ShipTypes: []int64{d.ShipType}, Limit: 50,
			}
		})
	})
}

// BenchmarkSearchWide covers the queries whose candidate sets are largest,
// and the long id lists of a live filter's catch-up (a map's systems or
// tracked characters over the last day).
func BenchmarkSearchWide(b *testing.B) {
	loadMillion(b)
	r := rand.New(rand.NewPCG(3, 3))
	systems := make([]int64, 300)
	for i := range systems {
		systems[i] = 30_000_000 + r.Int64N(int64(realistic.systems))
	}
	characters := make([]int64, 500)
	for i := range characters {
		d := million.docs[r.IntN(millionDocs)]
		characters[i] = d.Characters[r.IntN(len(d.Characters))]
	}
	for _, bc := range []struct {
		name string
		q    index.Query
	}{
		{"newest-of-all", index.Query{}},
		{"top-alliance-all-time", index.Query{Alliances: []int64{99_000_000}}},
		{"top-system-over-1bn", index.Query{Systems: []int64{30_000_000}, MinValue: 1e9}},
		{"top-corporation-60d-limit-1000", index.Query{Corporations: []int64{98_000_000}, Since: start, Limit: 1000}},
		{"300-systems-1d", index.Query{Systems: systems, Since: end() - 86400}},
		{"500-characters-1d", index.Query{Characters: characters, Since: end() - 86400}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			measure(b, func(int) index.Query { return bc.q })
		})
	}
}

// BenchmarkAdd indexes docs one by one into a growing index.
func BenchmarkAdd(b *testing.B) {
	loadMillion(b)
	ix := index.New()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d := million.docs[i%millionDocs]
		d.Offset = uint64(i + 1)
		if err := ix.Add(d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAddUnderGC adds docs to an index of 1M docs. In "gc" another
// goroutine meanwhile allocates garbage as the store does around an append
// (3 KB objects holding pointers, ~100 MB/s, the last 4096 kept live) and
// the collector runs ten times a second, as it would over a heap that
// small next to the allocation rate: the difference with "quiet" is what
// the collections, scanning the index among the rest, cost Add.
func BenchmarkAddUnderGC(b *testing.B) {
	loadMillion(b)
	for _, gc := range []bool{false, true} {
		name := "quiet"
		if gc {
			name = "gc"
		}
		b.Run(name, func(b *testing.B) {
			ix, err := index.ReadIndex(bytes.NewReader(million.snap))
			if err != nil {
				b.Fatal(err)
			}
			runtime.GC()
			stop, done := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				if gc {
					makeGarbage(stop)
				}
			}()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				d := million.docs[i%millionDocs]
				d.Offset = millionDocs + uint64(i) + 1
				if err := ix.Add(d); err != nil {
					b.Fatal(err)
				}
			}
			close(stop)
			<-done
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.NumGC-before.NumGC), "GCs")
		})
	}
}

// junk is garbage shaped like a decoded killmail: pointers and bytes.
type junk struct {
	refs [64]*junk
	_    [2560]byte
}

// makeGarbage allocates ~100 MB/s of junk, keeping the newest 4096, and
// collects ten times a second until stop is closed.
func makeGarbage(stop <-chan struct{}) {
	var ring [4096]*junk
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for n := 0; ; {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		for range 32 {
			j := &junk{}
			j.refs[0] = ring[(n+1)%len(ring)]
			ring[n%len(ring)] = j
			n++
		}
		if n%(32*100) == 0 {
			runtime.GC()
		}
	}
}

// BenchmarkRebuild1M models opening a store by replaying every persisted
// Doc (already decoded) into a new index, and reports the index's heap.
func BenchmarkRebuild1M(b *testing.B) {
	loadMillion(b)
	var heap uint64
	for b.Loop() {
		b.StopTimer()
		before := heapInUse()
		b.StartTimer()
		ix := build(b, million.docs)
		b.StopTimer()
		heap = heapInUse() - before
		runtime.KeepAlive(ix)
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/millionDocs, "heap-B/doc")
}

// BenchmarkReadIndex1M models opening a store from a saved snapshot.
func BenchmarkReadIndex1M(b *testing.B) {
	loadMillion(b)
	var heap uint64
	for b.Loop() {
		b.StopTimer()
		before := heapInUse()
		b.StartTimer()
		ix, err := index.ReadIndex(bytes.NewReader(million.snap))
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		heap = heapInUse() - before
		runtime.KeepAlive(ix)
		b.StartTimer()
	}
	b.ReportMetric(float64(heap)/millionDocs, "heap-B/doc")
	b.ReportMetric(float64(len(million.snap))/millionDocs, "snapshot-B/doc")
}

// BenchmarkWriteTo1M saves the 1M-doc index.
func BenchmarkWriteTo1M(b *testing.B) {
	loadMillion(b)
	for b.Loop() {
		if _, err := million.ix.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(million.snap))/(1<<20), "snapshot-MiB")
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkFootprint1M logs where the memory of the 1M index goes.
func BenchmarkFootprint1M(b *testing.B) {
	loadMillion(b)
	for b.Loop() {
	}
	f := million.ix.Footprint()
	keys := slices.Sorted(maps.Keys(f))
	var total uint64
	for _, k := range keys {
		b.Logf("%-24s %12d  (%.1f per doc)", k, f[k], float64(f[k])/millionDocs)
		if !strings.HasSuffix(k, " keys") {
			total += f[k]
		}
	}
	b.ReportMetric(float64(total)/millionDocs, "B/doc")
}
