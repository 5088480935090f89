package bench

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/data"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

const genSamples = 20_000

func generated(t *testing.T, cfg GenConfig, n int) ([]*store.Killmail, []*store.Killmail) {
	t.Helper()
	tpl, err := Templates()
	require.NoError(t, err)
	require.Len(t, tpl, 88)
	g := NewGenerator(tpl, cfg)
	out := make([]*store.Killmail, n)
	for i := range out {
		out[i] = g.Next()
	}
	return tpl, out
}

// quantiles of xs at qs (nearest rank).
func quantiles(xs []float64, qs ...float64) []float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	out := make([]float64, len(qs))
	for i, q := range qs {
		out[i] = s[int(q*float64(len(s)-1)+0.5)]
	}
	return out
}

func measure(kms []*store.Killmail, f func(*store.Killmail) float64) []float64 {
	out := make([]float64, len(kms))
	for i, km := range kms {
		out[i] = f(km)
	}
	return out
}

// TestGeneratorShapesMatchFixtures compares the distributions of the
// generated killmails with the 88 real ones they are drawn from.
func TestGeneratorShapesMatchFixtures(t *testing.T) {
	tpl, kms := generated(t, GenConfig{Seed: 1}, genSamples)
	qs := []float64{0.10, 0.25, 0.50, 0.75, 0.90}
	// The body's size: the victim (items included) and the attackers,
	// without the zkb block and hash the fixtures lack.
	size := func(km *store.Killmail) float64 {
		b, err := json.Marshal([]any{km.Victim, km.Attackers})
		require.NoError(t, err)
		return float64(len(b))
	}
	for _, tc := range []struct {
		name string
		f    func(*store.Killmail) float64
		// tol is the allowed relative gap; slack the absolute one.
		tol, slack float64
	}{
		{"attackers", func(km *store.Killmail) float64 { return float64(len(km.Attackers)) }, 0, 0},
		{"items", func(km *store.Killmail) float64 { return float64(len(km.Victim.Items)) }, 0, 0},
		{"body_bytes", size, 0.05, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each generated quantile must lie between the fixtures'
			// quantiles 4 points either side (88 fixtures are coarse),
			// give or take tol (relative) and slack (absolute).
			fix := measure(tpl, tc.f)
			got := quantiles(measure(kms, tc.f), qs...)
			for i, q := range qs {
				lo := quantiles(fix, max(q-0.04, 0))[0]
				hi := quantiles(fix, min(q+0.04, 1))[0]
				assert.True(t, got[i] >= lo*(1-tc.tol)-tc.slack && got[i] <= hi*(1+tc.tol)+tc.slack,
					"q%.2f: generated %v, fixtures between %v and %v", q, got[i], lo, hi)
			}
		})
	}
	t.Run("fleet fights reach several hundred attackers", func(t *testing.T) {
		big := 0
		for _, km := range kms {
			n := len(km.Attackers)
			assert.LessOrEqual(t, n, 500)
			if n >= 150 {
				big++
				finals := 0
				for _, a := range km.Attackers {
					if a.FinalBlow {
						finals++
					}
				}
				assert.LessOrEqual(t, finals, 1, "one final blow")
			}
		}
		share := float64(big) / float64(len(kms))
		assert.InDelta(t, 0.005, share, 0.002, "%d of %d are fleet fights", big, len(kms))
	})
	t.Run("no fleet fights when disabled", func(t *testing.T) {
		_, kms := generated(t, GenConfig{Seed: 1, FleetFights: -1}, 2000)
		for _, km := range kms {
			assert.LessOrEqual(t, len(km.Attackers), 116)
		}
	})
}

// TestGeneratorIDsInRealRanges checks every id against the SDE and the
// real id ranges, and that every killmail passes validation.
func TestGeneratorIDsInRealRanges(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := GenConfig{Seed: 2, Start: start, Span: 24 * time.Hour, FirstID: 7_000_000}
	_, kms := generated(t, cfg, 5000)
	cat, err := data.Load()
	require.NoError(t, err)
	party := func(char, corp, alliance int64) {
		if char != 0 {
			assert.True(t, char >= 2112000000 && char < 2112000000+500_000, "character %d", char)
			assert.True(t, corp >= 98000000 && corp < 98000000+50_000, "corporation %d", corp)
		}
		if alliance != 0 {
			assert.True(t, alliance >= 99000000 && alliance < 99000000+3_000, "alliance %d", alliance)
		}
	}
	for i, km := range kms {
		require.NoError(t, km.Validate(start.Add(48*time.Hour)))
		assert.Equal(t, int64(7_000_000+i), km.KillmailID)
		assert.Len(t, km.Hash, 40)
		_, ok := cat.System(km.SystemID)
		assert.True(t, ok, "system %d is not in the SDE", km.SystemID)
		assert.False(t, km.KillTime.Before(start) || !km.KillTime.Before(start.Add(24*time.Hour)), "kill time %v", km.KillTime)
		party(km.Victim.CharacterID, km.Victim.CorporationID, km.Victim.AllianceID)
		for _, a := range km.Attackers {
			party(a.CharacterID, a.CorporationID, a.AllianceID)
		}
	}
	t.Run("every SystemID rank is a real system", func(t *testing.T) {
		seen := map[int64]bool{}
		for rank := range uint64(KnownSystems) {
			id := SystemID(rank)
			_, ok := cat.System(id)
			require.True(t, ok, "rank %d → %d", rank, id)
			seen[id] = true
		}
		assert.Len(t, seen, KnownSystems)
	})
}

// TestGeneratorPopularitySkewed checks that a few systems and pilots see
// much of the action, as on the real server, without one dominating.
func TestGeneratorPopularitySkewed(t *testing.T) {
	_, kms := generated(t, GenConfig{Seed: 3}, genSamples)
	perSystem := map[int64]int{}
	perChar := map[int64]int{}
	participants := 0
	for _, km := range kms {
		perSystem[km.SystemID]++
		for _, c := range km.Characters() {
			perChar[c]++
			participants++
		}
	}
	counts := func(m map[int64]int) []int {
		var out []int
		for _, n := range m {
			out = append(out, n)
		}
		slices.Sort(out)
		slices.Reverse(out)
		return out
	}
	sys := counts(perSystem)
	top := float64(sys[0]) / genSamples
	assert.True(t, top > 0.005 && top < 0.05, "busiest system has %.1f%% of kills", top*100)
	top1pc := 0
	for _, n := range sys[:KnownSystems/100] {
		top1pc += n
	}
	share := float64(top1pc) / genSamples
	assert.True(t, share > 0.10 && share < 0.60, "the busiest 1%% of systems have %.0f%% of kills", share*100)
	assert.Greater(t, len(sys), 2000, "distinct systems")
	assert.Less(t, float64(sys[len(sys)-1]), float64(sys[0])/10, "quiet systems are much quieter")
	assert.Equal(t, SystemID(0), busiest(perSystem), "rank 0 is the busiest system")

	chars := counts(perChar)
	topChar := float64(chars[0]) / float64(participants)
	t.Logf("busiest system %.1f%% of kills, busiest 1%% of systems %.0f%%, %d systems; busiest pilot %.2f%% of participants, %d pilots",
		top*100, share*100, len(sys), topChar*100, len(chars))
	assert.True(t, topChar > 0.0005 && topChar < 0.01, "busiest pilot is %.2f%% of participants", topChar*100)
	assert.Greater(t, len(chars), 50_000, "distinct pilots")
}

func busiest(m map[int64]int) int64 {
	var id int64
	best := -1
	for k, n := range m {
		if n > best {
			id, best = k, n
		}
	}
	return id
}

func TestGeneratorRepeatable(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	_, a := generated(t, GenConfig{Seed: 9, Start: start}, 200)
	_, b := generated(t, GenConfig{Seed: 9, Start: start}, 200)
	_, c := generated(t, GenConfig{Seed: 10, Start: start}, 200)
	assert.Equal(t, a, b)
	assert.NotEqual(t, a, c)
}

// TestGeneratorArrivalOrder checks that with Count set kill times follow
// the sequence, each a little before its slot, as a live feed brings them.
func TestGeneratorArrivalOrder(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 20_000
	span := 10 * 24 * time.Hour
	_, kms := generated(t, GenConfig{Seed: 4, Start: start, Span: span, Count: n, FirstID: 1_000}, n)
	lates := make([]time.Duration, 0, n)
	hourLate := 0
	for i, km := range kms {
		require.False(t, km.KillTime.Before(start), "killmail %d before the window", i)
		require.True(t, km.KillTime.Before(start.Add(span)), "killmail %d after the window", i)
		slot := start.Add(time.Duration(float64(span) * float64(i) / n))
		late := slot.Sub(km.KillTime.Time)
		require.GreaterOrEqual(t, late, -time.Second, "killmail %d after its slot", i)
		lates = append(lates, late)
		if late > time.Hour {
			hourLate++
		}
	}
	slices.Sort(lates)
	median := lates[n/2]
	assert.True(t, median > 3*time.Minute && median < 12*time.Minute, "median delay %v", median)
	share := float64(hourLate) / n
	assert.InDelta(t, 0.02, share, 0.01, "share over an hour late")
}
