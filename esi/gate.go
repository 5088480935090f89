package esi

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Hold lengths used when ESI does not say how long to wait.
const (
	defaultErrorLimitHold = 60 * time.Second
	defaultRetryAfter     = 5 * time.Second
	maxHold               = 5 * time.Minute
)

// gate holds every new request while ESI asked us to stop: the error
// budget is at or below the floor, a 420 (error limited) or a 429 (rate
// limited) came back. Safe for concurrent use.
type gate struct {
	floor int
	now   func() time.Time

	mu      sync.Mutex
	until   time.Time
	remain  int // last X-ESI-Error-Limit-Remain; -1 unknown
	resetAt time.Time
}

func newGate(floor int, now func() time.Time) *gate {
	return &gate{floor: floor, now: now, remain: -1}
}

// wait blocks until no hold is in force or ctx ends.
func (g *gate) wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		d := g.until.Sub(g.now())
		g.mu.Unlock()
		if d <= 0 {
			return ctx.Err()
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// observe reads the error-limit headers and the status of an answer and
// extends the hold when ESI asks for it. It returns how long ESI asked to
// wait (zero when it did not).
func (g *gate) observe(h http.Header, status int) time.Duration {
	now := g.now()
	remain, hasRemain := headerInt(h, "X-Esi-Error-Limit-Remain")
	reset, hasReset := headerSeconds(h, "X-Esi-Error-Limit-Reset")
	g.mu.Lock()
	defer g.mu.Unlock()
	if hasRemain {
		g.remain = remain
	}
	if hasReset {
		g.resetAt = now.Add(reset)
	}
	var wait time.Duration
	switch {
	case status == 420:
		wait = defaultErrorLimitHold
		if hasReset {
			wait = reset
		}
	case status == http.StatusTooManyRequests:
		wait = retryAfter(h, now)
		if wait == 0 && hasReset {
			wait = reset
		}
		if wait == 0 {
			wait = defaultRetryAfter
		}
	case hasRemain && hasReset && g.floor >= 0 && remain <= g.floor:
		wait = reset
	}
	if wait > maxHold {
		wait = maxHold
	}
	if until := now.Add(wait); wait > 0 && until.After(g.until) {
		g.until = until
	}
	return wait
}

// budget returns the last error budget seen (-1 if unknown), when it
// resets, and until when requests are held.
func (g *gate) budget() (remain int, resetAt, heldUntil time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.remain, g.resetAt, g.until
}

func headerInt(h http.Header, key string) (int, bool) {
	v := h.Get(key)
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0
}

func headerSeconds(h http.Header, key string) (time.Duration, bool) {
	n, ok := headerInt(h, key)
	return time.Duration(n) * time.Second, ok
}

// retryAfter parses Retry-After as seconds or an HTTP date; zero when
// absent or unparsable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
