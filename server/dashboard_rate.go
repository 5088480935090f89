package server

import (
	"context"
	"sync"
	"time"
)

// rateSlots is the length of both rings of ingestRing: 60 one-second
// buckets (the rate per minute) and 60 one-minute buckets (the last hour).
const rateSlots = 60

// countRing is a ring of counters, one per time bucket (a second or a
// minute number); a slot is reused when its bucket is rateSlots old.
type countRing struct {
	buckets [rateSlots]int64 // the bucket number each slot holds
	counts  [rateSlots]int64
}

func (r *countRing) add(bucket, n int64) {
	i := bucket % rateSlots
	if r.buckets[i] != bucket {
		r.buckets[i], r.counts[i] = bucket, 0
	}
	r.counts[i] += n
}

// at returns the count of a bucket, 0 when the ring no longer holds it.
func (r *countRing) at(bucket int64) int64 {
	i := bucket % rateSlots
	if r.buckets[i] != bucket {
		return 0
	}
	return r.counts[i]
}

// ingestRing counts the killmails appended to the store per second and
// per minute: the dashboard's ingest rate and its last-hour sparkline.
// A sampler (run) feeds it from the store head; before the sampler starts
// it knows nothing, and says so (figures report ok false). The zero
// value is ready. Safe for concurrent use.
type ingestRing struct {
	mu      sync.Mutex
	started time.Time // zero until run begins
	secs    countRing // by Unix second
	mins    countRing // by Unix minute
}

// ingestFigures is what the ring knows at one instant.
type ingestFigures struct {
	// PerMinute counts killmails appended in the last 60 seconds (fewer
	// seconds when the sampler started less than a minute ago).
	PerMinute int64 `json:"per_minute"`
	// LastHour sums Series.
	LastHour int64 `json:"last_hour"`
	// Series counts killmails appended per minute over the last hour,
	// oldest first; the last element is the current, partial minute.
	// Minutes before sampling began are null: unknown, not zero.
	Series []*int64 `json:"per_minute_series"`
	// SeriesEnd is the start of the last minute of Series.
	SeriesEnd string `json:"series_end"`
	// SamplingSince is when the sampler started counting.
	SamplingSince string `json:"sampling_since"`
}

// start marks the beginning of sampling.
func (g *ingestRing) start(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started.IsZero() {
		g.started = now
	}
}

// add counts n killmails appended at now.
func (g *ingestRing) add(now time.Time, n int64) {
	if n <= 0 {
		return
	}
	sec := now.Unix()
	g.mu.Lock()
	defer g.mu.Unlock()
	g.secs.add(sec, n)
	g.mins.add(sec/60, n)
}

// figures returns the counts as of now; ok is false before sampling
// began.
func (g *ingestRing) figures(now time.Time) (f ingestFigures, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started.IsZero() {
		return ingestFigures{}, false
	}
	sec := now.Unix()
	for b := sec - rateSlots + 1; b <= sec; b++ {
		f.PerMinute += g.secs.at(b)
	}
	first, minute := g.started.Unix()/60, sec/60
	f.Series = make([]*int64, rateSlots)
	for i := range f.Series {
		m := minute - rateSlots + 1 + int64(i)
		if m < first {
			continue
		}
		n := g.mins.at(m)
		f.Series[i] = &n
		f.LastHour += n
	}
	f.SeriesEnd = time.Unix(minute*60, 0).UTC().Format(time.RFC3339)
	f.SamplingSince = g.started.UTC().Format(time.RFC3339)
	return f, true
}

// run samples head every period until ctx ends, counting its growth: the
// offsets the store handed out, one per killmail appended (an update
// keeps its offset, so it is not counted again).
func (g *ingestRing) run(ctx context.Context, head func() uint64, period time.Duration) {
	g.start(time.Now())
	last := head()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			h := head()
			if h > last {
				g.add(now, int64(h-last))
			}
			last = max(last, h)
		}
	}
}
