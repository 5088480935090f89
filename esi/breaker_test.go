package esi

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func TestBreakerStates(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	var changes []string
	b := newBreaker(3, 30*time.Second, clock.now, func(s string) { changes = append(changes, s) })

	for range 2 {
		probe, err := b.allow()
		require.NoError(t, err)
		b.failure(probe)
	}
	b.success(false) // a success resets the run
	for range 3 {
		probe, err := b.allow()
		require.NoError(t, err)
		require.False(t, probe)
		b.failure(probe)
	}
	assert.Equal(t, StateOpen, b.stats().State)
	_, err := b.allow()
	require.ErrorIs(t, err, ErrCircuitOpen)

	clock.advance(30 * time.Second)
	probe, err := b.allow()
	require.NoError(t, err)
	require.True(t, probe)
	assert.Equal(t, StateHalfOpen, b.stats().State)
	_, err = b.allow()
	require.ErrorIs(t, err, ErrCircuitOpen, "one probe at a time")
	b.failure(probe)
	assert.Equal(t, StateOpen, b.stats().State)
	assert.Equal(t, clock.t, b.stats().OpenedAt)

	clock.advance(30 * time.Second)
	probe, err = b.allow()
	require.NoError(t, err)
	b.abandon(probe) // the caller left: the next request probes
	probe, err = b.allow()
	require.NoError(t, err)
	require.True(t, probe)
	b.success(probe)
	st := b.stats()
	assert.Equal(t, StateClosed, st.State)
	assert.Zero(t, st.ConsecutiveFailures)
	assert.True(t, st.OpenedAt.IsZero())
	assert.Equal(t, []string{StateOpen, StateHalfOpen, StateOpen, StateHalfOpen, StateClosed}, changes)
}

func TestGateObserve(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name   string
		status int
		h      http.Header
		wait   time.Duration
	}{
		{name: "healthy", status: 200, h: hdr("X-ESI-Error-Limit-Remain", "100", "X-ESI-Error-Limit-Reset", "30")},
		{name: "at floor", status: 200, h: hdr("X-ESI-Error-Limit-Remain", "10", "X-ESI-Error-Limit-Reset", "30"), wait: 30 * time.Second},
		{name: "420 with reset", status: 420, h: hdr("X-ESI-Error-Limit-Remain", "0", "X-ESI-Error-Limit-Reset", "7"), wait: 7 * time.Second},
		{name: "420 without headers", status: 420, h: hdr(), wait: time.Minute},
		{name: "429 seconds", status: 429, h: hdr("Retry-After", "2"), wait: 2 * time.Second},
		{name: "429 date", status: 429, h: hdr("Retry-After", clock.t.Add(90*time.Second).UTC().Format(http.TimeFormat)), wait: 90 * time.Second},
		{name: "429 bare", status: 429, h: hdr(), wait: 5 * time.Second},
		{name: "429 capped", status: 429, h: hdr("Retry-After", "86400"), wait: 5 * time.Minute},
		{name: "garbage headers", status: 200, h: hdr("X-ESI-Error-Limit-Remain", "x", "Retry-After", "soon")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGate(10, clock.now)
			assert.Equal(t, tc.wait, g.observe(tc.h, tc.status))
			_, _, until := g.budget()
			if tc.wait > 0 {
				assert.Equal(t, clock.t.Add(tc.wait), until)
			} else {
				assert.True(t, until.IsZero())
			}
		})
	}
}
