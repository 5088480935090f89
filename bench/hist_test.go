package bench

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHistogramQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	exact := make([]time.Duration, 0, 50_000)
	for range 50_000 {
		d := time.Duration(r.ExpFloat64() * float64(20*time.Millisecond))
		h.Add(d)
		exact = append(exact, d)
	}
	slices.Sort(exact)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := exact[int(q*float64(len(exact)))-1]
		assert.InEpsilon(t, float64(want), float64(h.Quantile(q)), 0.015, "q%v", q)
	}
	assert.Equal(t, exact[len(exact)-1], h.Max())
	assert.Equal(t, exact[len(exact)-1], h.Quantile(1))
	assert.EqualValues(t, 50_000, h.Count())

	t.Run("json round trip and merge", func(t *testing.T) {
		b, err := json.Marshal(&h)
		require.NoError(t, err)
		var back Histogram
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, h.Count(), back.Count())
		assert.Equal(t, h.Quantile(0.99), back.Quantile(0.99))
		back.Merge(&h)
		assert.Equal(t, 2*h.Count(), back.Count())
		assert.Equal(t, h.Quantile(0.5), back.Quantile(0.5))
	})
	t.Run("edges", func(t *testing.T) {
		var e Histogram
		assert.Zero(t, e.Quantile(0.5))
		e.Add(-time.Second)
		e.Add(100 * time.Hour)
		assert.EqualValues(t, 2, e.Count())
		assert.Equal(t, 100*time.Hour, e.Max())
		assert.Less(t, e.Quantile(0.5), time.Microsecond)
	})
}
