package bench

import (
	"fmt"
	"slices"
	"strings"
)

// Fan-out subscription models: which systems each client follows and
// where the published killmails happen.
const (
	// FanoutModelMap gives each client SystemsPerClient systems drawn by
	// popularity (PopularSystems), as map tools and notifier bots follow
	// their own systems; the published killmails keep the Generator's
	// systems, so a killmail reaches the clients that follow its system.
	FanoutModelMap = "map"
	// FanoutModelBroadcast has every client follow one system (and one of
	// its own) and every killmail happen there: each killmail goes to
	// every client. A stress variant.
	FanoutModelBroadcast = "broadcast"
)

// FanoutModels lists the subscription models, the default first.
func FanoutModels() []string { return []string{FanoutModelMap, FanoutModelBroadcast} }

// hotSystem is the system every broadcast client joins and every
// broadcast killmail happens in.
const hotSystem = 30000142 // Jita

// maxSystemsPerClient is the most systems a client may follow: the SSE
// stream's cap on system_ids (API.md §5.1), so both transports can run
// the same model.
const maxSystemsPerClient = 100

// subscription says which systems the clients of a fan-out follow; the
// parent and the client load compute the same lists from it.
type subscription struct {
	// Model is FanoutModelMap or FanoutModelBroadcast.
	Model string `json:"model"`
	// PerClient is the systems per client (map) and Seed the draw's seed.
	PerClient int    `json:"per_client,omitempty"`
	Seed      uint64 `json:"seed,omitempty"`
}

// systems is what client i follows.
func (s subscription) systems(i int) []int64 {
	if s.Model == FanoutModelBroadcast {
		return broadcastSystems(i)
	}
	return PopularSystems(s.Seed+uint64(i)*0x9e3779b97f4a7c15, s.PerClient)
}

// publishSystem is the system a published killmail is moved to (0: it
// keeps the Generator's).
func (s subscription) publishSystem() int64 {
	if s.Model == FanoutModelBroadcast {
		return hotSystem
	}
	return 0
}

// describe names the model for the report ("map, 50 systems per client,
// popularity-weighted").
func (s subscription) describe() string {
	if s.Model == FanoutModelBroadcast {
		return "broadcast"
	}
	return fmt.Sprintf("map, %d systems per client, popularity-weighted", s.PerClient)
}

// broadcastSystems is what broadcast client i joins: hotSystem and one of
// its own, so the server's index holds many systems.
func broadcastSystems(i int) []int64 {
	own := SystemID(uint64(100 + i%7000))
	if own == hotSystem {
		own = SystemID(99)
	}
	return []int64{hotSystem, own}
}

// audience counts the open clients following each system: the parent's
// side of the delivery accounting.
type audience struct {
	sub     subscription
	clients int
	follows map[int64]int // system → clients following it
}

func newAudience(sub subscription) *audience {
	return &audience{sub: sub, follows: map[int64]int{}}
}

// join adds the clients of the given indexes.
func (a *audience) join(indexes []int) {
	for _, i := range indexes {
		for _, s := range a.sub.systems(i) {
			a.follows[s]++
		}
	}
	a.clients += len(indexes)
}

// expect is the deliveries the killmails (count per system) are owed:
// each goes to every client following its system, once.
func (a *audience) expect(kills map[int64]int) uint64 {
	var n uint64
	for s, k := range kills {
		n += uint64(k) * uint64(a.follows[s])
	}
	return n
}

// validSubscription checks the model and the systems per client.
func validSubscription(model string, perClient int) error {
	if !slices.Contains(FanoutModels(), model) {
		return fmt.Errorf("bench: unknown fan-out model %q (have %s)", model, strings.Join(FanoutModels(), ", "))
	}
	if model == FanoutModelMap && (perClient < 1 || perClient > maxSystemsPerClient) {
		return fmt.Errorf("bench: %d systems per client: want 1 to %d (the SSE stream's cap on system_ids)",
			perClient, maxSystemsPerClient)
	}
	return nil
}
