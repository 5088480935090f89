package server

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// TestMatchTime checks that the bench hook finds the subscribers the tail
// would: by system, by victim or attacker character, once each, and
// wildcards.
func TestMatchTime(t *testing.T) {
	st, err := store.Open(context.Background(), store.Config{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	hub, err := NewHub(st, HubConfig{}, nil, nil)
	require.NoError(t, err)
	kms := liveFixtures(t)[:2]
	km := killIn(kms[0], 1, 30000142, kms[0].KillTime.Time)
	other := killIn(kms[1], 2, 30000144, kms[1].KillTime.Time)
	char := km.Attackers[0].CharacterID
	require.NotZero(t, char)

	noop := func(Event) {}
	hub.Subscribe(Filter{Systems: []int64{30000142}}, noop)
	hub.Subscribe(Filter{Characters: []int64{char}}, noop)
	hub.Subscribe(Filter{Systems: []int64{30000142}, Characters: []int64{char}}, noop) // once, not twice
	cancel := hub.Subscribe(Filter{Systems: []int64{30000999}}, noop)
	cancel()

	for _, tc := range []struct {
		name string
		kms  []*store.Killmail
		want int
	}{
		{"system and character", []*store.Killmail{km}, 3},
		{"nobody", []*store.Killmail{other}, 0},
		{"both", []*store.Killmail{km, other, km}, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			elapsed, matched := hub.MatchTime(tc.kms)
			assert.Equal(t, tc.want, matched)
			assert.Positive(t, elapsed)
		})
	}
	t.Run("wildcard", func(t *testing.T) {
		hub.Subscribe(Filter{}, noop)
		_, matched := hub.MatchTime([]*store.Killmail{other})
		assert.Equal(t, 1, matched)
	})
}
