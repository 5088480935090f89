package server

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

// sseBatchSize is the killmails per batch event of the enhanced preload.
const sseBatchSize = 50

// preload sends the enhanced stream's history (API.md §5.3): the stored
// killmails of the last preload_days matching the filters (system OR
// character, AND min_value), oldest first, as batch events
// SSEBatchInterval apart, then a transition event. Killmails after cutoff
// come live instead.
func (st *sseStream) preload(ctx context.Context, f sseFilters, cutoff uint64) error {
	st.mode = "historical"
	defer func() { st.mode = "realtime" }()
	kills, err := st.hub.historicalKills(ctx, f, cutoff)
	if err != nil {
		if ctx.Err() != nil {
			return errStreamEnded
		}
		st.hub.log.Error("sse preload failed", "err", err)
		return st.sendError("preload_failed", "could not read stored killmails; streaming live killmails only")
	}
	total := (len(kills) + sseBatchSize - 1) / sseBatchSize
	for i := range total {
		if i > 0 {
			select {
			case <-ctx.Done():
				return errStreamEnded
			case <-time.After(st.hub.cfg.SSEBatchInterval):
			}
		}
		chunk := kills[i*sseBatchSize : min(len(kills), (i+1)*sseBatchSize)]
		if err := st.send(appendSSEEvent(nil, "batch", map[string]any{
			"kills": chunk, "count": len(chunk), "batch_number": i + 1, "total_batches": total,
		})); err != nil {
			return err
		}
	}
	return st.send(appendSSEEvent(nil, "transition", map[string]any{
		"status": "historical_complete", "total_historical": len(kills), "timestamp": nowStamp(),
	}))
}

// historicalKills returns the stored killmails of the filter's window at
// or below cutoff, oldest first, at most PreloadMaxKills (the newest).
func (h *Hub) historicalKills(ctx context.Context, f sseFilters, cutoff uint64) ([]json.RawMessage, error) {
	fl := f.filter()
	since := time.Now().Add(-time.Duration(f.PreloadDays) * 24 * time.Hour).Unix()
	base := index.Query{Since: since, MinValue: fl.MinValue, Limit: h.cfg.PreloadMaxKills}
	type hit struct {
		offset uint64
		time   int64
		js     json.RawMessage
	}
	seen := make(map[uint64]bool)
	var hits []hit
	for _, q := range []index.Query{withSystems(base, fl.Systems), withCharacters(base, fl.Characters)} {
		if len(q.Systems) == 0 && len(q.Characters) == 0 {
			continue
		}
		entries, _, err := h.st.Search(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if e.Offset > cutoff || seen[e.Offset] {
				continue
			}
			km, err := e.Killmail()
			if err != nil {
				continue
			}
			seen[e.Offset] = true
			hits = append(hits, hit{e.Offset, km.KillTime.Unix(), e.JSON})
		}
	}
	slices.SortFunc(hits, func(a, b hit) int {
		return cmp.Or(cmp.Compare(b.time, a.time), cmp.Compare(b.offset, a.offset))
	})
	hits = hits[:min(len(hits), h.cfg.PreloadMaxKills)]
	out := make([]json.RawMessage, len(hits))
	for i, ht := range hits {
		out[len(hits)-1-i] = ht.js
	}
	return out, nil
}

func withSystems(q index.Query, ids []int64) index.Query {
	q.Systems = ids
	return q
}

func withCharacters(q index.Query, ids []int64) index.Query {
	q.Characters = ids
	return q
}
