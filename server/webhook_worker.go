package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

const (
	// webhookReadChunk is the entries per store read of a catch-up.
	webhookReadChunk = 256
	// webhookIdle is how often an idle goroutine wakes to follow the
	// hub's position.
	webhookIdle = 30 * time.Second
	// webhookSkipAhead is how far past the cursor the scan position must
	// be, with no batch open, before the cursor is moved over killmails
	// that did not match.
	webhookSkipAhead = 4096
)

// errWebhookDisabled ends the goroutine of a subscription just disabled.
var errWebhookDisabled = errors.New("server: webhook subscription disabled")

// webhookBatch is consecutive matching killmails of one system, sent in
// one POST. Breaking a batch at each change of system keeps log order.
type webhookBatch struct {
	system      int64
	kills       []json.RawMessage
	first, last uint64
	due         time.Time
}

// webhookWorker is the state of a subscription's delivery goroutine.
type webhookWorker struct {
	s    *webhookSub
	w    *Webhooks
	soft context.Context // ends: stop waiting and retrying
	hard context.Context // ends: cut the request in flight
	// scan: every log entry up to it has been matched (and, if it
	// matched, is acknowledged or in open).
	scan uint64
	// live: the inbox holds every match after scan, so the store need
	// not be read.
	live bool
	open *webhookBatch
}

// run delivers until soft ends or the subscription is disabled. It
// registers with the hub first, then catches up from the cursor, so that
// nothing committed in between is missed.
func (s *webhookSub) run(soft, hard context.Context) {
	cancel := s.w.hub.Subscribe(s.filter, s.push)
	defer cancel()
	wk := &webhookWorker{s: s, w: s.w, soft: soft, hard: hard, scan: s.cursor()}
	if err := wk.loop(); !errors.Is(err, errWebhookDisabled) && soft.Err() == nil {
		s.w.log.Error("webhook delivery stopped", "subscription_id", s.id(), "err", err)
	}
}

// loop runs until an error ends it: the context's, errWebhookDisabled or
// a store failure.
func (wk *webhookWorker) loop() error {
	for {
		if !wk.live {
			if err := wk.catchUp(); err != nil {
				return err
			}
		}
		if err := wk.drain(); err != nil {
			return err
		}
		if !wk.live {
			continue
		}
		if wk.open != nil && !time.Now().Before(wk.open.due) {
			if err := wk.flush(); err != nil {
				return err
			}
			continue
		}
		if err := wk.wait(); err != nil {
			return err
		}
	}
}

// catchUp reads the log from scan up to the hub's position, then trusts
// the inbox: the hub offers it every killmail after that position.
func (wk *webhookWorker) catchUp() error {
	wk.s.reset()
	_, target := wk.w.hub.Position()
	for wk.scan < target {
		entries, err := wk.w.readLog(wk.soft, wk.scan, webhookReadChunk)
		for _, e := range entries {
			if err := wk.offerEntry(e); err != nil {
				return err
			}
		}
		switch {
		case wk.soft.Err() != nil:
			return wk.soft.Err()
		case err != nil:
			wk.w.log.Error("webhook catch-up read failed", "subscription_id", wk.s.id(), "offset", wk.scan, "err", err)
			if err := sleepCtx(wk.soft, time.Second); err != nil {
				return err
			}
		case len(entries) == 0:
			wk.scan = target // none left up to target (retention removed them)
		}
	}
	wk.live = true
	wk.skipAhead()
	return nil
}

// offerEntry matches one entry read from the log; a match's JSON is read
// from the store then.
func (wk *webhookWorker) offerEntry(e logEntry) error {
	if e.offset <= wk.scan {
		return nil
	}
	wk.scan = e.offset
	if e.km == nil || !wk.s.fs.match(e.km) {
		return nil // backfilled (quiet), undecodable or not matching
	}
	full, err := wk.w.st.At(wk.soft, e.offset)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil // removed by retention since
	case err != nil:
		return err
	}
	return wk.add(e.offset, e.km.SystemID, full.JSON)
}

// drain takes the live events from the inbox. An overflowed inbox sends
// the worker back to the store.
func (wk *webhookWorker) drain() error {
	_, pos := wk.w.hub.Position()
	evs, overflowed := wk.s.take()
	if overflowed {
		wk.live = false
		return nil
	}
	for _, ev := range evs {
		if ev.Offset <= wk.scan {
			continue
		}
		wk.scan = ev.Offset
		if err := wk.add(ev.Offset, ev.Killmail.SystemID, ev.JSON); err != nil {
			return err
		}
	}
	// The hub dispatches entries in log order on one goroutine: once its
	// position is pos, every entry before pos has been offered, and the
	// matches among them were in evs.
	if pos > 0 {
		wk.scan = max(wk.scan, pos-1)
	}
	wk.skipAhead()
	return nil
}

// skipAhead moves the persisted cursor over non-matching killmails when
// no batch is open and it lags far behind the scan position.
func (wk *webhookWorker) skipAhead() {
	if wk.open == nil && wk.scan >= wk.s.cursor()+webhookSkipAhead {
		wk.s.skipTo(wk.hard, wk.scan)
	}
}

// wait blocks until a wake-up, the open batch's deadline, the idle tick
// or the end.
func (wk *webhookWorker) wait() error {
	d := webhookIdle
	if wk.open != nil {
		d = min(d, time.Until(wk.open.due))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wk.soft.Done():
		return wk.soft.Err()
	case <-wk.s.wake:
	case <-t.C:
	}
	return nil
}

// add puts a matching killmail in the open batch, sending the batch
// first when the system changes or it is due, and after when it is full.
func (wk *webhookWorker) add(off uint64, system int64, js json.RawMessage) error {
	if b := wk.open; b != nil && (b.system != system || !time.Now().Before(b.due)) {
		if err := wk.flush(); err != nil {
			return err
		}
	}
	if wk.open == nil {
		wk.open = &webhookBatch{system: system, first: off, due: time.Now().Add(wk.w.cfg.BatchWindow)}
	}
	b := wk.open
	b.kills = append(b.kills, js)
	b.last = off
	wk.s.setBatched(len(b.kills))
	if len(b.kills) >= wk.w.cfg.MaxBatch {
		return wk.flush()
	}
	return nil
}

// flush delivers the open batch; it returns once the batch is
// acknowledged, or with the error that stops the goroutine.
func (wk *webhookWorker) flush() error {
	b := wk.open
	wk.open = nil
	err := wk.deliver(b)
	wk.s.setBatched(0)
	return err
}

// deliver sends b until a 2xx, retrying failures with backoff. A 410, or
// failures for MaxFailureAge, disable the subscription. The webhook-id
// and the body are the same for every attempt.
func (wk *webhookWorker) deliver(b *webhookBatch) error {
	msg := webhookMessage{
		id:   fmt.Sprintf("msg_%s_%d_%d", wk.s.id(), b.first, b.last),
		body: batchBody(b.system, b.kills, nowStamp()),
	}
	for attempt := 1; ; attempt++ {
		if err := wk.soft.Err(); err != nil {
			return err
		}
		if attempt > 1 {
			wk.w.met.retries.Inc()
		}
		res := wk.w.send(wk.hard, wk.s.url, wk.s.key, msg)
		if err := wk.hard.Err(); err != nil {
			return err // cut by shutdown or delete: not the endpoint's failure
		}
		wk.w.met.observe(res)
		now := time.Now()
		switch res.outcome {
		case outcomeSuccess:
			wk.s.acked(wk.hard, b.last, now)
			wk.w.met.killmails.Add(float64(len(b.kills)))
			return nil
		case outcomeGone:
			wk.s.failed(wk.hard, res.err.Error(), now, attempt, time.Time{})
			wk.s.disable(wk.hard, "callback answered 410 Gone", now)
			return errWebhookDisabled
		}
		delay := wk.w.cfg.backoff(attempt)
		since := wk.s.failed(wk.hard, res.err.Error(), now, attempt, now.Add(delay))
		if age := now.Sub(since); age >= wk.w.cfg.MaxFailureAge {
			wk.s.disable(wk.hard, fmt.Sprintf("deliveries failing since %s, longer than the max failure age %s: %v",
				stamp(since), wk.w.cfg.MaxFailureAge, res.err), now)
			return errWebhookDisabled
		}
		if err := sleepCtx(wk.soft, delay); err != nil {
			return err
		}
	}
}

// backoff is the delay after the attempt-th failure of a batch: Backoff
// doubled per failure, capped at MaxBackoff, with "equal jitter" (a
// random point in its upper half) so that endpoints recovering together
// are not hit together.
func (c *WebhookConfig) backoff(attempt int) time.Duration {
	d := c.Backoff
	for i := 1; i < attempt && d < c.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.MaxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
