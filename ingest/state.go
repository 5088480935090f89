package ingest

import (
	"context"
	"sync"
	"time"
)

// Feed states, as State.State reports them.
const (
	StateStarting = "starting"
	StateRunning  = "running"
	StateCaughtUp = "caught_up"
	StateBackoff  = "backoff"
	StateStopped  = "stopped"
	StateOff      = "off"
)

// State is a snapshot of a live feed for /health, /readyz and the
// dashboard.
type State struct {
	// Source is "r2z2", "redisq" or "none".
	Source string
	// State is one of the State… constants.
	State string
	// LastSequence is the last R2Z2 sequence handled (0 for RedisQ).
	LastSequence int64
	// UpstreamSequence is the newest sequence known upstream; 0 unknown.
	UpstreamSequence int64
	// LagSequences is UpstreamSequence - LastSequence when known.
	LagSequences int64
	// Lag is how old the last killmail was when it was handled (upload
	// to store); zero once caught up.
	Lag time.Duration
	// LastSuccess is when the feed last handled a killmail or an empty
	// answer.
	LastSuccess time.Time
	// LastError is the last problem seen, empty when none; LastErrorAt
	// is when.
	LastError   string
	LastErrorAt time.Time
	// ConsecutiveErrors counts failures since the last success.
	ConsecutiveErrors int
	// Killmails counts the killmails stored (added or updated) since start.
	Killmails uint64
}

// tracker holds a feed's State behind a lock.
type tracker struct {
	mu sync.Mutex
	st State
}

func newTracker(source string) *tracker {
	return &tracker{st: State{Source: source, State: StateStarting}}
}

func (t *tracker) snapshot() State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

func (t *tracker) update(fn func(*State)) {
	t.mu.Lock()
	fn(&t.st)
	t.mu.Unlock()
}

func (t *tracker) set(state string) { t.update(func(s *State) { s.State = state }) }

func (t *tracker) fail(err error) {
	t.update(func(s *State) {
		s.State = StateBackoff
		s.LastError = err.Error()
		s.LastErrorAt = time.Now()
		s.ConsecutiveErrors++
	})
}

func (t *tracker) ok(state string) {
	t.update(func(s *State) {
		s.State = state
		s.LastSuccess = time.Now()
		s.ConsecutiveErrors = 0
	})
}

// None is the "none" source: no live feed, the service serves what is
// stored. The zero value is ready to use.
type None struct{}

// Run blocks until ctx ends and returns nil.
func (None) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// State reports the source as off.
func (None) State() State { return State{Source: "none", State: StateOff} }

// Source is a live feed: Run blocks until ctx ends, State is cheap and
// safe for concurrent use. *R2Z2, *RedisQ and None implement it.
type Source interface {
	Run(ctx context.Context) error
	State() State
}
