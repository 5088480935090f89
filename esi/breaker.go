package esi

import (
	"sync"
	"time"
)

// Breaker states, as Stats reports them.
const (
	StateClosed   = "closed"
	StateOpen     = "open"
	StateHalfOpen = "half_open"
)

// breaker is a consecutive-failure circuit breaker: threshold failures in
// a row open it; after cooldown one probe is let through, whose success
// closes it and whose failure opens it again. Safe for concurrent use.
type breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time
	onChange  func(state string)

	mu       sync.Mutex
	state    string
	failures int
	openedAt time.Time
	changed  time.Time
	probing  bool
}

func newBreaker(threshold int, cooldown time.Duration, now func() time.Time, onChange func(string)) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, now: now, onChange: onChange, state: StateClosed}
}

// allow reports whether a request may go out. probe is true for the one
// request let through a half-open breaker; its caller must report its
// outcome (success, failure or abandon).
func (b *breaker) allow() (probe bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case StateClosed:
		return false, nil
	case StateOpen:
		if b.now().Sub(b.openedAt) < b.cooldown {
			return false, ErrCircuitOpen
		}
		b.set(StateHalfOpen)
	}
	if b.probing {
		return false, ErrCircuitOpen
	}
	b.probing = true
	return true, nil
}

// success records an answer from ESI; it closes the breaker.
func (b *breaker) success(probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	b.failures = 0
	if b.state != StateClosed {
		b.openedAt = time.Time{}
		b.set(StateClosed)
	}
}

// failure records a failed call; it opens the breaker at the threshold,
// or at once when the probe failed.
func (b *breaker) failure(probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
	}
	b.failures++
	if probe || (b.state == StateClosed && b.failures >= b.threshold) {
		b.openedAt = b.now()
		b.set(StateOpen)
	}
}

// abandon releases a probe whose caller gave up before an outcome; the
// next request probes again.
func (b *breaker) abandon(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probing = false
}

func (b *breaker) set(state string) {
	if b.state == state {
		return
	}
	b.state = state
	b.changed = b.now()
	if b.onChange != nil {
		b.onChange(state)
	}
}

// BreakerStats is a snapshot of the circuit breaker.
type BreakerStats struct {
	// State is StateClosed, StateOpen or StateHalfOpen.
	State string
	// ConsecutiveFailures is the current run of failures; Threshold of
	// them open the breaker.
	ConsecutiveFailures, Threshold int
	// OpenedAt is when it last opened; zero when closed.
	OpenedAt time.Time
	// Cooldown is how long it stays open before a probe.
	Cooldown time.Duration
	// ChangedAt is when the state last changed; zero if never.
	ChangedAt time.Time
}

func (b *breaker) stats() BreakerStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BreakerStats{State: b.state, ConsecutiveFailures: b.failures, Threshold: b.threshold,
		OpenedAt: b.openedAt, Cooldown: b.cooldown, ChangedAt: b.changed}
}
