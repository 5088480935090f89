package server

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/index"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// Writer tasks: work a connection's writer does in queue order, writing
// straight to its socket: the preload after a join or subscribe, and the
// catch-up from since_offset. Live killmails queue behind them (within
// the byte budget), so the client sees one ordered stream.

// preloadSkip leaves out of a preload what the channel already received:
// killmails after offset `after` that matched its filter `got`.
type preloadSkip struct {
	after uint64
	got   *filterSet
}

func (c *wsConn) preloadTask(joinRef json.RawMessage, systems []int64, opts preloadOpts, cutoff uint64, skip *preloadSkip) outItem {
	systems = slices.Clone(systems)
	return outItem{task: func() error { return c.runPreload(joinRef, systems, opts, cutoff, skip) }}
}

// runPreload sends, for each system, its newest stored killmails of the
// window (newest first) at or below cutoff: as one killmail_update with
// "preload": true per system that has any (what clients handle), or as
// preload_batch events when the join asked for delivery_batch_size;
// framed by preload_status and preload_complete.
func (c *wsConn) runPreload(joinRef json.RawMessage, systems []int64, opts preloadOpts, cutoff uint64, skip *preloadSkip) error {
	ctx := c.hub.ctx
	push := func(event string, payload []byte) error {
		return c.writeNow(c.channelFrame(joinRef, event, payload))
	}
	status, _ := json.Marshal(map[string]any{
		"status": "loading", "current_system": systems[0], "systems_complete": 0, "total_systems": len(systems),
	})
	if err := push("preload_status", status); err != nil {
		return err
	}
	since := time.Now().Add(-time.Duration(opts.sinceHours) * time.Hour).Unix()
	var total, processed, failed int
	var batch []json.RawMessage
	for _, sys := range systems {
		if c.q.abandoned() || ctx.Err() != nil || total >= c.hub.cfg.PreloadMaxKills {
			break
		}
		kills, top, err := c.hub.preloadKills(ctx, sys, since, opts.limit, cutoff, skip)
		processed++
		if err != nil {
			failed++
			continue
		}
		if len(kills) == 0 {
			continue
		}
		total += len(kills)
		if opts.batchSize == 0 {
			if err := push("killmail_update", appendUpdatePayload(nil, sys, kills, nowStamp(), true, top)); err != nil {
				return err
			}
			continue
		}
		batch = append(batch, kills...)
		for len(batch) >= opts.batchSize {
			if err := c.pushPreloadBatch(push, batch[:opts.batchSize], opts); err != nil {
				return err
			}
			batch = batch[opts.batchSize:]
		}
	}
	if len(batch) > 0 {
		if err := c.pushPreloadBatch(push, batch, opts); err != nil {
			return err
		}
	}
	done, _ := json.Marshal(map[string]int{"total_kills": total, "systems_processed": processed, "errors": failed})
	return push("preload_complete", done)
}

func (c *wsConn) pushPreloadBatch(push func(string, []byte) error, kills []json.RawMessage, opts preloadOpts) error {
	payload, _ := json.Marshal(map[string]any{"kills": kills, "batch_size": len(kills)})
	if err := push("preload_batch", payload); err != nil {
		return err
	}
	if opts.interval > 0 {
		select {
		case <-time.After(time.Duration(opts.interval) * time.Millisecond):
		case <-c.hub.ctx.Done():
		}
	}
	return nil
}

// preloadKills returns up to limit stored killmails of a system since a
// time, newest first, none after cutoff (those come live) and none the
// skip says the client has. top is the highest offset among them.
func (h *Hub) preloadKills(ctx context.Context, system, since int64, limit int, cutoff uint64, skip *preloadSkip) (kills []json.RawMessage, top uint64, err error) {
	entries, _, err := h.st.Search(ctx, index.Query{Systems: []int64{system}, Since: since, Limit: limit + 16})
	if err != nil {
		return nil, 0, err
	}
	for _, e := range entries {
		if len(kills) == limit {
			break
		}
		if e.Offset > cutoff || skip.has(e) {
			continue
		}
		kills = append(kills, e.JSON)
		top = max(top, e.Offset)
	}
	return kills, top, nil
}

func (s *preloadSkip) has(e store.Entry) bool {
	if s == nil || e.Offset <= s.after {
		return false
	}
	km, err := e.Killmail()
	return err == nil && s.got.match(km)
}

// catchUpTask sends every killmail in (from, to] that matches fs, in log
// order, as killmail_update pushes, then lets live ones follow.
func (c *wsConn) catchUpTask(from, to uint64, fs *filterSet) outItem {
	return outItem{task: func() error {
		return c.hub.catchUp(c.hub.ctx, from, to, fs, c.q, func(e store.Entry, km *store.Killmail) error {
			payload := appendUpdatePayload(nil, km.SystemID, []json.RawMessage{e.JSON}, nowStamp(), false, e.Offset)
			if err := c.writeNow(appendPhx(nil, c.vsn, nil, nil, lobbyTopic, "killmail_update", payload)); err != nil {
				return err
			}
			c.lastOffset = e.Offset
			return nil
		})
	}}
}

// catchUp reads the log in (from, to] in bounded chunks and calls send
// for each non-quiet killmail that matches fs. It stops early, without
// error, when q is abandoned or ctx ends.
func (h *Hub) catchUp(ctx context.Context, from, to uint64, fs *filterSet, q *outQueue, send func(store.Entry, *store.Killmail) error) error {
	pos := from
	for pos < to {
		if q.abandoned() || ctx.Err() != nil {
			return nil
		}
		entries, err := h.st.Read(ctx, pos, h.cfg.ReadChunk)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		for _, e := range entries {
			if e.Offset > to {
				return nil
			}
			pos = e.Offset
			if e.Quiet {
				continue
			}
			km, err := e.Killmail()
			if err != nil || !fs.match(km) {
				continue
			}
			if err := send(e, km); err != nil {
				return err
			}
		}
	}
	return nil
}
