package bench

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPopularSystems(t *testing.T) {
	const clients, per = 2000, 50
	follows := map[int64]int{}
	for i := range clients {
		got := PopularSystems(uint64(i), per)
		require.Len(t, got, per)
		sorted := slices.Clone(got)
		slices.Sort(sorted)
		require.Len(t, slices.Compact(sorted), per, "drawn without replacement")
		for _, s := range got {
			follows[s]++
		}
	}
	assert.Equal(t, PopularSystems(7, per), PopularSystems(7, per), "repeatable")
	assert.NotEqual(t, PopularSystems(7, per), PopularSystems(8, per))

	// The kills' busiest system is followed by many clients, a middling
	// one by few: the same skew as the Generator's.
	busiest, middling := follows[SystemID(0)], follows[SystemID(3000)]
	assert.Greater(t, busiest, clients/4, "busiest system followed by %d", busiest)
	assert.Less(t, middling, busiest/10, "rank 3000 followed by %d", middling)
}

func TestAudienceExpect(t *testing.T) {
	a := newAudience(subscription{Model: FanoutModelBroadcast})
	a.join([]int{0, 1, 2})
	a.join([]int{5})
	assert.Equal(t, 4, a.clients)
	assert.EqualValues(t, 4*7, a.expect(map[int64]int{hotSystem: 7}), "every kill to every client")
	assert.EqualValues(t, 1, a.expect(map[int64]int{SystemID(105): 1}), "client 5's own system")
	assert.Zero(t, a.expect(map[int64]int{SystemID(7000): 3}))
}

// TestFanoutDeliveryAccounting runs small fan-outs in-process over both
// transports and models and checks the deliveries owed against a count
// made from scratch: the generated kills' systems and each client's list.
func TestFanoutDeliveryAccounting(t *testing.T) {
	tpl, err := Templates()
	require.NoError(t, err)
	for _, tc := range []struct{ transport, model, describe string }{
		{transportWS, FanoutModelMap, "map, 50 systems per client, popularity-weighted"},
		{transportSSE, FanoutModelMap, "map, 50 systems per client, popularity-weighted"},
		{transportWS, FanoutModelBroadcast, "broadcast"},
		{transportSSE, FanoutModelBroadcast, "broadcast"},
	} {
		t.Run(tc.transport+"/"+tc.model, func(t *testing.T) {
			o := Options{Quick: true, Seed: 11, PublishRate: 100, PublishFor: 400 * time.Millisecond, FanoutModel: tc.model}
			o.defaults()
			r := &runner{o: o, dir: t.TempDir(), templates: tpl, start: time.Now()}
			res, err := r.runFanout(context.Background(), tc.transport, []int{4, 9})
			require.NoError(t, err)
			assert.Equal(t, tc.describe, res.Model)
			require.Len(t, res.Steps, 2)

			// The kills each step published, regenerated in order.
			gen := NewGenerator(tpl, GenConfig{Seed: o.Seed + 3, FirstID: 500_000_000})
			sub := r.subscription()
			for _, step := range res.Steps {
				var want uint64
				for range step.Published {
					sys := gen.Next().SystemID
					if hot := sub.publishSystem(); hot != 0 {
						sys = hot
					}
					for i := range step.Clients {
						if slices.Contains(sub.systems(i), sys) {
							want++
						}
					}
				}
				assert.Equal(t, want, step.Expected, "%d clients", step.Clients)
				assert.Positive(t, step.Expected)
				if tc.model == FanoutModelBroadcast {
					assert.Equal(t, uint64(step.Published*step.Clients), step.Expected, "every kill to every client")
				} else {
					assert.Less(t, step.Expected, uint64(step.Published*step.Clients), "not a broadcast")
				}
				assert.Equal(t, step.Expected, step.Deliveries, "every owed delivery arrived, no other")
				assert.Equal(t, 1.0, step.DeliveredRatio)
				assert.InDelta(t, float64(step.Expected)/float64(step.Published*step.Clients), step.Reach, 1e-9)
				assert.InDelta(t, float64(step.Deliveries)*float64(o.PublishRate)/float64(step.Published), step.DeliveriesPerSec, 1e-9)
			}
		})
	}
}
