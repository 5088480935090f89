package server

import (
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// MatchTime finds the live subscribers of each killmail as the hub's tail
// does, through the inverted index of every registered subscriber, but
// without decoding, encoding or delivering anything. It returns the time
// spent matching and how many subscribers matched in all. It is the hook
// of the benchmark harness (`wanderer-kills bench`, scenario match); it
// holds the hub's write lock, so the tail waits while it runs.
func (h *Hub) MatchTime(kms []*store.Killmail) (elapsed time.Duration, matched int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []*subscriber
	start := time.Now()
	for _, km := range kms {
		out, _ = h.ix.match(km, out[:0])
		matched += len(out)
	}
	elapsed = time.Since(start)
	clear(out)
	return elapsed, matched
}
