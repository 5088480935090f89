package server

import (
	"cmp"
	"slices"
	"strings"
)

// ChannelSubscription is one joined WebSocket channel as the
// subscriptions API lists it (API.md §4.2: type "websocket",
// subscriber_id = the connection's user_id).
type ChannelSubscription struct {
	// SubscriberID is the connection's user_id.
	SubscriberID string
	// Systems and Characters are sorted copies of what the channel
	// subscribes to.
	Systems, Characters []int64
	// ConnectedAt is when the connection opened (six-digit UTC stamp).
	ConnectedAt string
}

// ChannelSubscriptions lists the WebSocket channels currently joined with
// at least one system or character, in no particular order. Channels with
// neither are not indexed by the hub and receive nothing, so they are not
// listed. It only reads: it takes the hub's read lock while it walks the
// inverted indexes (cost proportional to the subscribed ids). Safe for
// concurrent use.
func (h *Hub) ChannelSubscriptions() []ChannelSubscription {
	h.mu.RLock()
	defer h.mu.RUnlock()
	seen := make(map[*subscriber]struct{})
	var out []ChannelSubscription
	visit := func(s *subscriber) {
		if _, dup := seen[s]; dup || s.removed {
			return
		}
		seen[s] = struct{}{}
		c, ok := s.sink.(*wsConn)
		if !ok {
			return
		}
		// userID and connectedAt are set before the connection's
		// goroutines start and never change; the id lists are guarded by
		// mu.
		out = append(out, ChannelSubscription{
			SubscriberID: c.userID,
			Systems:      sortedIDs(s.systems),
			Characters:   sortedIDs(s.chars),
			ConnectedAt:  c.connectedAt,
		})
	}
	for _, ss := range h.ix.bySystem {
		for _, s := range ss.list {
			visit(s)
		}
	}
	h.ix.eachFollower(visit)
	for _, s := range h.ix.wild.list {
		visit(s)
	}
	slices.SortFunc(out, func(a, b ChannelSubscription) int {
		return cmp.Or(strings.Compare(a.ConnectedAt, b.ConnectedAt), strings.Compare(a.SubscriberID, b.SubscriberID))
	})
	return out
}
