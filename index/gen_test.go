package index_test

import (
	"bufio"
	"cmp"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

// corpus describes a synthetic killmail population: pool sizes and the
// skew of the zipf draws (larger = more concentrated on a few ids).
type corpus struct {
	systems, characters, corporations, alliances, ships int
	skew                                                float64
	days                                                int
	// maxAttackers caps a log-normal attacker count with median 5.
	maxAttackers int
	// backfilled is the share of days, the oldest, imported by a backfill
	// after live ingest had covered the others: their docs come last in the
	// log, one day after the other.
	backfilled float64
	// late is the share of docs that arrive up to 3 days after the kill.
	late float64
	// scattered is the share of docs whose time is anywhere in the range,
	// unrelated to their offset.
	scattered float64
	// tick rounds times down to a multiple of it, to make ties.
	tick int64
}

// realistic is the population the 1M benchmarks use: ~8000 systems with
// zipf popularity, 1-500 attackers (median 5), 500k characters, 50k
// corporations, 3k alliances, 60 days, the oldest 15 of them backfilled.
var realistic = corpus{
	systems: 8000, characters: 500_000, corporations: 50_000, alliances: 3000, ships: 400,
	skew: 1.1, days: 60, maxAttackers: 500, backfilled: 0.25, late: 0.02, tick: 1,
}

// small is a dense, disordered population for property tests: queries
// often match, times tie, and offsets say little about times.
var small = corpus{
	systems: 40, characters: 600, corporations: 60, alliances: 12, ships: 15,
	skew: 1.05, days: 9, maxAttackers: 30, backfilled: 0.3, late: 0.1, scattered: 0.2, tick: 600,
}

// start is the first kill time of every generated corpus.
var start = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC).Unix()

// genDocs makes n docs at offsets 1..n. Characters belong to one
// corporation and corporations to one alliance (or none), so the three
// dimensions are correlated as in the game.
func genDocs(seed uint64, n int, c corpus) []index.Doc {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	zipf := func(size int, v float64) func() int64 {
		z := rand.NewZipf(r, c.skew, v, uint64(size-1))
		return func() int64 { return int64(z.Uint64()) }
	}
	system, character, ship := zipf(c.systems, 20), zipf(c.characters, 100), zipf(c.ships, 5)
	corpOf := make([]int64, c.characters)
	corp := zipf(c.corporations, 50)
	for i := range corpOf {
		corpOf[i] = 98_000_000 + corp()
	}
	allianceOf := make(map[int64]int64, c.corporations)
	alliance := zipf(c.alliances, 20)
	for i := range c.corporations {
		if r.IntN(10) >= 3 {
			allianceOf[98_000_000+int64(i)] = 99_000_000 + alliance()
		}
	}
	// Days in log order: live ingest from the first day not backfilled,
	// then the backfill, newest day first.
	old := int(float64(c.days) * c.backfilled)
	var order []int64
	for d := old; d < c.days; d++ {
		order = append(order, int64(d))
	}
	for d := old - 1; d >= 0; d-- {
		order = append(order, int64(d))
	}
	perDay := (n + c.days - 1) / c.days
	docs := make([]index.Doc, n)
	for i := range docs {
		day, nth := order[i/perDay], int64(i%perDay)
		t := start + day*86400 + nth*86400/int64(perDay)
		switch f := r.Float64(); {
		case f < c.scattered:
			t = start + r.Int64N(int64(c.days)*86400)
		case f < c.scattered+c.late:
			t -= r.Int64N(3 * 86400)
		}
		t -= t % c.tick
		attackers := int(math.Round(math.Exp(math.Log(5) + 1.2*r.NormFloat64())))
		d := index.Doc{
			Offset:     uint64(i + 1),
			KillmailID: 130_000_000 + int64(i),
			Time:       t,
			System:     30_000_000 + system(),
			ShipType:   580 + ship(),
			Value:      math.Round(math.Exp(math.Log(3e7) + 1.5*r.NormFloat64())),
		}
		for range 1 + min(max(attackers, 1), c.maxAttackers) {
			ch := character()
			d.Characters = append(d.Characters, 2_000_000_000+ch)
			d.Corporations = append(d.Corporations, corpOf[ch])
			if a, ok := allianceOf[corpOf[ch]]; ok {
				d.Alliances = append(d.Alliances, a)
			}
		}
		d.Characters = distinct(d.Characters)
		d.Corporations = distinct(d.Corporations)
		d.Alliances = distinct(d.Alliances)
		docs[i] = d
	}
	return docs
}

func distinct(ids []int64) []int64 {
	if len(ids) == 0 {
		return nil
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// fixtureDocs reads the real ESI killmails of testdata as Docs.
func fixtureDocs(t testing.TB) []index.Doc {
	t.Helper()
	f, err := os.Open("../testdata/fixtures/killmails.jsonl")
	require.NoError(t, err)
	defer f.Close()
	type party struct {
		CharacterID   int64 `json:"character_id"`
		CorporationID int64 `json:"corporation_id"`
		AllianceID    int64 `json:"alliance_id"`
		ShipTypeID    int64 `json:"ship_type_id"`
	}
	var docs []index.Doc
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var km struct {
			ID        int64     `json:"killmail_id"`
			Time      time.Time `json:"killmail_time"`
			System    int64     `json:"solar_system_id"`
			Victim    party     `json:"victim"`
			Attackers []party   `json:"attackers"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &km))
		d := index.Doc{
			Offset: uint64(len(docs) + 1), KillmailID: km.ID, Time: km.Time.Unix(),
			System: km.System, ShipType: km.Victim.ShipTypeID, Value: float64(km.ID%1000) * 1e6,
		}
		for _, p := range append(km.Attackers, km.Victim) {
			d.Characters = appendNonZero(d.Characters, p.CharacterID)
			d.Corporations = appendNonZero(d.Corporations, p.CorporationID)
			d.Alliances = appendNonZero(d.Alliances, p.AllianceID)
		}
		d.Characters = distinct(d.Characters)
		d.Corporations = distinct(d.Corporations)
		d.Alliances = distinct(d.Alliances)
		docs = append(docs, d)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, docs)
	return docs
}

func appendNonZero(ids []int64, id int64) []int64 {
	if id == 0 {
		return ids
	}
	return append(ids, id)
}

// bruteForce answers q over docs by filtering and sorting everything,
// ignoring Limit and After.
func bruteForce(docs map[uint64]index.Doc, q index.Query) []index.Hit {
	var hits []index.Hit
	for _, d := range docs {
		if matches(d, q) {
			hits = append(hits, index.Hit{Offset: d.Offset, Time: d.Time, KillmailID: d.KillmailID})
		}
	}
	slices.SortFunc(hits, func(a, b index.Hit) int {
		return cmp.Or(cmp.Compare(b.Time, a.Time), cmp.Compare(b.KillmailID, a.KillmailID))
	})
	return hits
}

func matches(d index.Doc, q index.Query) bool {
	anyOf := func(want, have []int64) bool {
		if len(want) == 0 {
			return true
		}
		for _, w := range want {
			if slices.Contains(have, w) {
				return true
			}
		}
		return false
	}
	return anyOf(q.Systems, []int64{d.System}) && anyOf(q.ShipTypes, []int64{d.ShipType}) &&
		anyOf(q.Characters, d.Characters) && anyOf(q.Corporations, d.Corporations) &&
		anyOf(q.Alliances, d.Alliances) &&
		(q.Since == 0 || d.Time >= q.Since) && (q.Until == 0 || d.Time < q.Until) &&
		(q.MinValue <= 0 || d.Value >= q.MinValue)
}

// walk runs q page by page until Next is nil and returns every hit.
func walk(t testing.TB, ix *index.Index, q index.Query) []index.Hit {
	t.Helper()
	var all []index.Hit
	for range 100_000 {
		p := ix.Search(q)
		limit := q.Limit
		if limit <= 0 {
			limit = index.DefaultLimit
		}
		require.LessOrEqual(t, len(p.Hits), limit)
		all = append(all, p.Hits...)
		if p.Next == nil {
			return all
		}
		require.Len(t, p.Hits, limit, "a page before the last must be full")
		last := p.Hits[len(p.Hits)-1]
		require.Equal(t, index.Cursor{Time: last.Time, KillmailID: last.KillmailID}, *p.Next)
		q.After = p.Next
	}
	t.Fatal("paging did not end")
	return nil
}
