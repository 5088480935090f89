package store_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/index"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// pick returns up to n random distinct elements of pool, sometimes with an
// id that matches nothing.
func pick(r *rand.Rand, pool []int64, n int) []int64 {
	if len(pool) == 0 || n == 0 {
		return nil
	}
	var out []int64
	for range r.IntN(n) + 1 {
		out = append(out, pool[r.IntN(len(pool))])
	}
	if r.IntN(5) == 0 {
		out = append(out, 987654321)
	}
	return out
}

func anyIn(ids []int64, set []int64) bool {
	for _, id := range ids {
		if slices.Contains(set, id) {
			return true
		}
	}
	return false
}

func bruteForce(kms []*store.Killmail, q index.Query) []int64 {
	var hits []*store.Killmail
	for _, km := range kms {
		t := km.KillTime.Unix()
		switch {
		case len(q.Systems) > 0 && !slices.Contains(q.Systems, km.SystemID):
		case len(q.Characters) > 0 && !anyIn(km.Characters(), q.Characters):
		case len(q.Corporations) > 0 && !anyIn(km.Corporations(), q.Corporations):
		case len(q.Alliances) > 0 && !anyIn(km.Alliances(), q.Alliances):
		case len(q.ShipTypes) > 0 && !slices.Contains(q.ShipTypes, km.Victim.ShipTypeID):
		case q.Since != 0 && t < q.Since:
		case q.Until != 0 && t >= q.Until:
		case q.MinValue > 0 && km.TotalValue() < q.MinValue:
		default:
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
	ids := make([]int64, len(hits))
	for i, km := range hits {
		ids[i] = km.KillmailID
	}
	return ids
}

// TestSearchMatchesBruteForce runs random queries over the real fixtures
// and walks every page: the store's answer must equal a plain filter and
// sort of the same data, with no duplicate and no gap.
func TestSearchMatchesBruteForce(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	kms := fixtures(t)
	r := rand.New(rand.NewPCG(7, 11))
	// Give some kills a value so min_value has something to cut.
	for _, km := range kms {
		if r.IntN(2) == 0 {
			km.ZKB = &store.ZKB{Hash: "h", TotalValue: float64(r.IntN(1000)) * 1e6}
		}
	}
	r.Shuffle(len(kms), func(i, j int) { kms[i], kms[j] = kms[j], kms[i] }) // offsets not in time order
	_, err := s.Append(ctx, store.Batch{Killmails: kms})
	require.NoError(t, err)

	var systems, chars, corps, alliances, ships, times []int64
	for _, km := range kms {
		systems = append(systems, km.SystemID)
		chars = append(chars, km.Characters()...)
		corps = append(corps, km.Corporations()...)
		alliances = append(alliances, km.Alliances()...)
		ships = append(ships, km.Victim.ShipTypeID)
		times = append(times, km.KillTime.Unix())
	}
	for i := range 500 {
		q := index.Query{Limit: r.IntN(12) + 1}
		if r.IntN(2) == 0 {
			q.Systems = pick(r, systems, 4)
		}
		if r.IntN(3) == 0 {
			q.Characters = pick(r, chars, 6)
		}
		if r.IntN(4) == 0 {
			q.Corporations = pick(r, corps, 3)
		}
		if r.IntN(4) == 0 {
			q.Alliances = pick(r, alliances, 3)
		}
		if r.IntN(4) == 0 {
			q.ShipTypes = pick(r, ships, 3)
		}
		if r.IntN(2) == 0 {
			q.Since = times[r.IntN(len(times))]
		}
		if r.IntN(3) == 0 {
			q.Until = times[r.IntN(len(times))] + int64(r.IntN(3))
		}
		if r.IntN(4) == 0 {
			q.MinValue = float64(r.IntN(1000)) * 1e6
		}
		want := bruteForce(kms, q)
		var got []int64
		for page := 0; ; page++ {
			require.Less(t, page, 200, "query %d does not terminate", i)
			es, next, err := s.Search(ctx, q)
			require.NoError(t, err)
			require.LessOrEqual(t, len(es), q.Limit)
			for _, e := range es {
				km, err := e.Killmail()
				require.NoError(t, err)
				got = append(got, km.KillmailID)
			}
			if next == nil {
				break
			}
			q.After = next
		}
		if len(want) == 0 {
			want = nil
		}
		require.Equal(t, want, got, "query %d: %+v", i, q)
	}
}
