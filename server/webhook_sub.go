package server

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
)

// subRecord is a webhook subscription as persisted under
// "webhook/sub/<id>": what was asked for, and the delivery state that must
// survive a restart (failure streak, disabled).
type subRecord struct {
	ID           string  `json:"id"`
	SubscriberID string  `json:"subscriber_id"`
	SystemIDs    []int64 `json:"system_ids"`
	CharacterIDs []int64 `json:"character_ids"`
	CallbackURL  string  `json:"callback_url"`
	// Secret is the signing secret, "whsec_" + base64.
	Secret    string `json:"secret"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`

	// FailingSince is the first failure since the last success; the
	// subscription is disabled MaxFailureAge after it.
	FailingSince   time.Time `json:"failing_since,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
	Disabled       bool      `json:"disabled,omitempty"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	DisabledAt     time.Time `json:"disabled_at,omitzero"`
}

// cursorRecord is persisted under "webhook/cursor/<id>": every matching
// killmail up to Offset has been acknowledged with a 2xx.
type cursorRecord struct {
	Offset        uint64    `json:"offset"`
	LastSuccessAt time.Time `json:"last_success_at,omitzero"`
}

// webhookInboxMax caps the live events a subscription holds while its
// goroutine is busy; past it they are dropped and the goroutine reads
// them again from the store.
const webhookInboxMax = 512

// webhookSub is one subscription in memory. rec, cur and the state fields
// are guarded by mu; the goroutine (run) owns everything else it uses.
type webhookSub struct {
	w      *Webhooks
	url    string // the callback URL
	key    []byte // the decoded secret
	filter Filter
	fs     *filterSet

	mu          sync.Mutex
	rec         subRecord
	cur         cursorRecord
	batched     int // killmails in the open batch
	attempts    int // failed attempts of the batch in flight
	nextAttempt time.Time
	inbox       []Event
	overflow    bool

	wake chan struct{}
	// stop and done are set while the goroutine runs; guarded by
	// Webhooks.mu.
	stop func()
	done chan struct{}
}

func newWebhookSub(w *Webhooks, rec subRecord, cur cursorRecord) (*webhookSub, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(rec.Secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("server: webhook subscription %s: bad secret", rec.ID)
	}
	f := Filter{Systems: rec.SystemIDs, Characters: rec.CharacterIDs}
	return &webhookSub{
		w: w, url: rec.CallbackURL, key: key, filter: f, fs: compileFilter(f, true),
		rec: rec, cur: cur, wake: make(chan struct{}, 1),
	}, nil
}

func (s *webhookSub) id() string { return s.rec.ID } // immutable

func (s *webhookSub) disabled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.Disabled
}

func (s *webhookSub) cursor() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.Offset
}

// halt stops the goroutine, cutting a delivery in flight, and waits for
// it. The subscription must already be out of Webhooks.subs.
func (s *webhookSub) halt() {
	s.w.mu.Lock()
	stop, done := s.stop, s.done
	s.w.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
}

// exited is called by the goroutine as it ends.
func (s *webhookSub) exited(done chan struct{}) {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	if s.done == done {
		s.stop, s.done = nil, nil
	}
}

// push is the hub callback: it runs on the hub's tail goroutine and never
// blocks. Past webhookInboxMax the inbox is dropped and marked overflowed:
// the goroutine then reads from the store instead.
func (s *webhookSub) push(ev Event) {
	s.mu.Lock()
	switch {
	case s.overflow:
	case len(s.inbox) >= webhookInboxMax:
		s.overflow, s.inbox = true, nil
	default:
		s.inbox = append(s.inbox, ev)
	}
	s.mu.Unlock()
	s.signal()
}

func (s *webhookSub) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take empties the inbox; overflowed says events were dropped since the
// last reset.
func (s *webhookSub) take() (evs []Event, overflowed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overflow {
		return nil, true
	}
	evs, s.inbox = s.inbox, nil
	return evs, false
}

// reset empties the inbox and clears the overflow: events pushed after it
// are kept again.
func (s *webhookSub) reset() {
	s.mu.Lock()
	s.inbox, s.overflow = nil, false
	s.mu.Unlock()
}

func (s *webhookSub) setBatched(n int) {
	s.mu.Lock()
	s.batched = n
	s.mu.Unlock()
}

// persist writes kv, logging a failure: the in-memory state stays right,
// and what a restart repeats is at most the batches after the last
// written cursor.
func (s *webhookSub) persist(ctx context.Context, kv map[string][]byte) {
	if err := s.w.st.PutKV(context.WithoutCancel(ctx), kv); err != nil {
		s.w.log.Error("webhook state not saved", "subscription_id", s.id(), "err", err)
	}
}

// acked records a 2xx for the batch ending at last: the cursor moves.
func (s *webhookSub) acked(ctx context.Context, last uint64, now time.Time) {
	s.mu.Lock()
	s.cur = cursorRecord{Offset: max(last, s.cur.Offset), LastSuccessAt: now}
	kv := map[string][]byte{webhookCursorPrefix + s.rec.ID: recordJSON(s.cur)}
	if !s.rec.FailingSince.IsZero() {
		s.rec.FailingSince = time.Time{}
		kv[webhookSubPrefix+s.rec.ID] = recordJSON(s.rec)
	}
	s.attempts, s.nextAttempt = 0, time.Time{}
	s.mu.Unlock()
	s.persist(ctx, kv)
}

// skipTo moves the cursor over killmails that did not match, when no
// batch is open: a restart then need not read them again. The cursor
// never passes a matching killmail that was not acknowledged.
func (s *webhookSub) skipTo(ctx context.Context, off uint64) {
	s.mu.Lock()
	if off <= s.cur.Offset {
		s.mu.Unlock()
		return
	}
	s.cur.Offset = off
	kv := map[string][]byte{webhookCursorPrefix + s.rec.ID: recordJSON(s.cur)}
	s.mu.Unlock()
	s.persist(ctx, kv)
}

// failed records a failed attempt and returns when the failure streak
// began.
func (s *webhookSub) failed(ctx context.Context, msg string, now time.Time, attempts int, next time.Time) time.Time {
	s.mu.Lock()
	if s.rec.FailingSince.IsZero() {
		s.rec.FailingSince = now
	}
	s.rec.LastError, s.rec.LastErrorAt = msg, now
	s.attempts, s.nextAttempt = attempts, next
	since := s.rec.FailingSince
	kv := map[string][]byte{webhookSubPrefix + s.rec.ID: recordJSON(s.rec)}
	s.mu.Unlock()
	s.persist(ctx, kv)
	return since
}

// disable turns deliveries off for good (until the subscription is made
// again) and says why.
func (s *webhookSub) disable(ctx context.Context, reason string, now time.Time) {
	s.mu.Lock()
	s.rec.Disabled, s.rec.DisabledReason, s.rec.DisabledAt = true, reason, now
	s.nextAttempt = time.Time{}
	kv := map[string][]byte{webhookSubPrefix + s.rec.ID: recordJSON(s.rec)}
	s.mu.Unlock()
	s.persist(ctx, kv)
	s.w.log.Warn("webhook subscription disabled", "subscription_id", s.id(), "reason", reason)
}

// view is the subscription as the API shows it; withState adds the
// delivery state.
func (s *webhookSub) view(withState bool) Subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	cb, disabled := s.rec.CallbackURL, s.rec.Disabled
	v := Subscription{
		ID: s.rec.ID, SubscriberID: s.rec.SubscriberID, Type: "webhook",
		SystemIDs: s.rec.SystemIDs, CharacterIDs: s.rec.CharacterIDs, CallbackURL: &cb,
		CreatedAt: s.rec.CreatedAt, UpdatedAt: s.rec.UpdatedAt, Disabled: &disabled,
	}
	if withState {
		v.Delivery = &DeliveryState{
			Cursor:         s.cur.Offset,
			LastSuccessAt:  stamp(s.cur.LastSuccessAt),
			LastError:      s.rec.LastError,
			LastErrorAt:    stamp(s.rec.LastErrorAt),
			FailingSince:   stamp(s.rec.FailingSince),
			NextAttemptAt:  stamp(s.nextAttempt),
			Attempts:       s.attempts,
			Pending:        s.batched + len(s.inbox),
			Disabled:       s.rec.Disabled,
			DisabledReason: s.rec.DisabledReason,
			DisabledAt:     stamp(s.rec.DisabledAt),
		}
	}
	return v
}

// stamp prints t as the server's timestamps, "" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

// hostOf returns the host of a URL already validated.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}
