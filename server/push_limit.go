package server

import (
	"crypto/sha256"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyLimits holds one token bucket per API key. Only keys that passed
// requireKey reach it, so it holds as many buckets as there are keys.
type keyLimits struct {
	limit rate.Limit
	burst int

	mu      sync.Mutex
	buckets map[[sha256.Size]byte]*rate.Limiter
}

// newKeyLimits allows perSecond requests per key with a burst; a negative
// rate allows everything.
func newKeyLimits(perSecond float64, burst int) *keyLimits {
	l := rate.Limit(perSecond)
	if perSecond < 0 {
		l = rate.Inf
	}
	return &keyLimits{limit: l, burst: burst, buckets: map[[sha256.Size]byte]*rate.Limiter{}}
}

// reserve takes a token from the key's bucket, or returns how long to
// wait for one (taking nothing).
func (k *keyLimits) reserve(key string, now time.Time) time.Duration {
	if k.limit == rate.Inf {
		return 0
	}
	id := sha256.Sum256([]byte(key))
	k.mu.Lock()
	lim, ok := k.buckets[id]
	if !ok {
		lim = rate.NewLimiter(k.limit, k.burst)
		k.buckets[id] = lim
	}
	k.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return time.Second
	}
	wait := res.DelayFrom(now)
	if wait > 0 {
		res.CancelAt(now)
	}
	return wait
}

// tooManyRequests answers 429 with Retry-After in whole seconds (at
// least 1).
func tooManyRequests(w http.ResponseWriter, wait time.Duration) {
	secs := max(1, int64(math.Ceil(wait.Seconds())))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeError(w, http.StatusTooManyRequests, "RATE_LIMITED", "Too many requests",
		map[string]any{"retry_after_seconds": secs})
}
