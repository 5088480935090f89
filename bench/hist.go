package bench

import (
	"encoding/json"
	"math"
	"time"
)

// Latency buckets are 1% wide from 1 µs up: a quantile read from them is
// within 1% of the exact one, and a histogram is a few KB however many
// samples it holds, so client processes can send theirs to the parent.
const (
	histBase    = float64(time.Microsecond)
	histGrowth  = 1.01
	histBuckets = 2000 // 1 µs × 1.01^2000 ≈ 440 s
)

// Histogram counts durations in log buckets. The zero value is empty and
// ready. Not safe for concurrent use.
type Histogram struct {
	counts []uint64
	n      uint64
	max    time.Duration
}

func bucketOf(d time.Duration) int {
	if float64(d) < histBase {
		return 0
	}
	i := 1 + int(math.Log(float64(d)/histBase)/math.Log(histGrowth))
	return min(i, histBuckets-1)
}

// bucketValue is the middle of bucket i.
func bucketValue(i int) time.Duration {
	if i == 0 {
		return time.Duration(histBase / 2)
	}
	return time.Duration(histBase * math.Pow(histGrowth, float64(i-1)+0.5))
}

// Add counts one duration (negative ones as zero).
func (h *Histogram) Add(d time.Duration) {
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	d = max(d, 0)
	h.counts[bucketOf(d)]++
	h.n++
	h.max = max(h.max, d)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// Count is how many durations were added.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest duration added.
func (h *Histogram) Max() time.Duration { return h.max }

// Quantile returns the q-quantile (0 ≤ q ≤ 1), within 1%; 0 when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return h.max
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(bucketValue(i), h.max)
		}
	}
	return h.max
}

// histWire is a Histogram on the wire: the non-empty buckets as
// [index, count] pairs.
type histWire struct {
	Buckets [][2]uint64 `json:"buckets"`
	Max     int64       `json:"max_ns"`
}

// MarshalJSON encodes the non-empty buckets.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	w := histWire{Buckets: [][2]uint64{}, Max: int64(h.max)}
	for i, c := range h.counts {
		if c > 0 {
			w.Buckets = append(w.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var w histWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*h = Histogram{}
	for _, bc := range w.Buckets {
		if bc[0] >= histBuckets {
			continue
		}
		if h.counts == nil {
			h.counts = make([]uint64, histBuckets)
		}
		h.counts[bc[0]] += bc[1]
		h.n += bc[1]
	}
	h.max = time.Duration(w.Max)
	return nil
}
