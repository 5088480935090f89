package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// WebhookConfig configures webhook delivery. Zero values are defaults.
type WebhookConfig struct {
	// Backoff is the delay before the first retry of a failed delivery
	// (env WK_WEBHOOK_BACKOFF). It doubles with each further failure of
	// the same batch, up to MaxBackoff, with jitter. Zero means 10s.
	Backoff time.Duration
	// MaxBackoff caps the retry delay. Zero means 1h.
	MaxBackoff time.Duration
	// MaxFailureAge disables a subscription whose deliveries have failed
	// without a success for this long (env WK_WEBHOOK_MAX_FAILURE_AGE).
	// Zero means 72h.
	MaxFailureAge time.Duration
	// AllowPrivate lets callback URLs reach loopback, private,
	// link-local and metadata addresses (env WK_WEBHOOK_ALLOW_PRIVATE).
	// Off, they are refused at create time and again at connect time.
	AllowPrivate bool
	// Timeout bounds one delivery attempt: connect, send, response. Zero
	// means 10s (API.md §6.5).
	Timeout time.Duration
	// BatchWindow is how long a batch waits for more killmails of its
	// system before it is sent. Zero means 5s.
	BatchWindow time.Duration
	// MaxBatch caps the killmails of one POST. Zero means 50.
	MaxBatch int
	// MaxSubscriptions caps the webhook subscriptions; past it create
	// answers 429. Zero means 10000.
	MaxSubscriptions int
	// UserAgent is sent with every delivery. Zero means
	// "WandererKills/1.0", as the original (API.md §9 item 12).
	UserAgent string
}

func (c *WebhookConfig) defaults() {
	setDefault(&c.Backoff, 10*time.Second)
	setDefault(&c.MaxBackoff, time.Hour)
	setDefault(&c.MaxFailureAge, 72*time.Hour)
	setDefault(&c.Timeout, 10*time.Second)
	setDefault(&c.BatchWindow, 5*time.Second)
	setDefault(&c.MaxBatch, 50)
	setDefault(&c.MaxSubscriptions, 10000)
	if c.UserAgent == "" {
		c.UserAgent = "WandererKills/1.0"
	}
}

// Validate reports a configuration that cannot work: a negative duration
// or count.
func (c WebhookConfig) Validate() error {
	for name, d := range map[string]time.Duration{
		"backoff": c.Backoff, "max backoff": c.MaxBackoff, "max failure age": c.MaxFailureAge,
		"timeout": c.Timeout, "batch window": c.BatchWindow,
	} {
		if d < 0 {
			return fmt.Errorf("server: webhook %s must not be negative, got %s", name, d)
		}
	}
	if c.MaxBatch < 0 || c.MaxSubscriptions < 0 {
		return errors.New("server: webhook MaxBatch and MaxSubscriptions must not be negative")
	}
	return nil
}

// Keys of the webhook records in the store's key-value space.
const (
	webhookSubPrefix    = "webhook/sub/"
	webhookCursorPrefix = "webhook/cursor/"
)

// webhookShutdownGrace is how long shutdown lets deliveries in flight
// finish (and their cursors be written) before it cuts them.
const webhookShutdownGrace = 5 * time.Second

// Webhooks owns the webhook subscriptions: their records in the store and
// one delivery goroutine per enabled subscription.
//
// Each subscription has a cursor, an offset of the store's write log,
// persisted under "webhook/cursor/<id>" (the subscription itself under
// "webhook/sub/<id>"). Its goroutine registers with the hub (Subscribe)
// for wake-ups and the matching live killmails, reads what it missed from
// the store after its cursor in bounded chunks, and POSTs the matching
// killmails in log order, batched per system, signed per Standard
// Webhooks. The cursor moves past a batch only after a 2xx answer, so
// delivery is at least once: a crash repeats at most the batch in flight.
// A new subscription starts at the store's head: no history is replayed.
//
// Failed attempts are retried with exponential backoff and jitter; a
// subscription failing for MaxFailureAge, or answered 410 Gone, is
// disabled and says so in its state. Goroutines are independent: a slow or
// dead endpoint delays only its own subscription.
//
// All methods are safe for concurrent use.
type Webhooks struct {
	cfg    WebhookConfig
	st     *store.Store
	hub    *Hub
	log    *slog.Logger
	met    *webhookMetrics
	client *http.Client
	lookup lookupFunc
	// logCache shares catch-up reads between subscriptions.
	logCache *logCache

	mu      sync.Mutex
	subs    map[string]*webhookSub
	running bool
	soft    context.Context // Run's ctx while it runs
	hard    context.Context // cancelled after the shutdown grace
	wg      sync.WaitGroup
}

// NewWebhooks loads the subscriptions persisted in st and registers the
// webhook metrics on reg (nil skips them). Deliveries start with Run.
func NewWebhooks(ctx context.Context, st *store.Store, hub *Hub, cfg WebhookConfig, reg prometheus.Registerer, log *slog.Logger) (*Webhooks, error) {
	if st == nil || hub == nil {
		return nil, errors.New("server: webhooks need a store and a hub")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Webhooks{
		cfg: cfg, st: st, hub: hub,
		log:      log.With("component", "webhooks"),
		client:   newWebhookClient(cfg),
		lookup:   defaultLookup,
		logCache: newLogCache(webhookLogCache),
		subs:     make(map[string]*webhookSub),
	}
	w.met = newWebhookMetrics(w)
	if reg != nil {
		if err := w.met.register(reg); err != nil {
			return nil, err
		}
	}
	if err := w.load(ctx); err != nil {
		return nil, err
	}
	return w, nil
}

// load reads the persisted subscriptions and their cursors.
func (w *Webhooks) load(ctx context.Context) error {
	cursors := make(map[string]cursorRecord)
	err := w.st.ScanKV(ctx, webhookCursorPrefix, func(key string, v []byte) error {
		var c cursorRecord
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("server: webhook cursor %s: %w", key, err)
		}
		cursors[strings.TrimPrefix(key, webhookCursorPrefix)] = c
		return nil
	})
	if err != nil {
		return err
	}
	return w.st.ScanKV(ctx, webhookSubPrefix, func(key string, v []byte) error {
		var rec subRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return fmt.Errorf("server: webhook subscription %s: %w", key, err)
		}
		cur, ok := cursors[rec.ID]
		if !ok {
			cur.Offset = w.st.Head()
		}
		s, err := newWebhookSub(w, rec, cur)
		if err != nil {
			return err
		}
		w.subs[rec.ID] = s
		return nil
	})
}

// Run starts a delivery goroutine for each enabled subscription (and for
// those created while it runs) and blocks until ctx ends. It then lets the
// deliveries in flight finish for a short grace, cuts the rest and
// returns nil once every goroutine has stopped.
func (w *Webhooks) Run(ctx context.Context) error {
	hard, cut := context.WithCancel(context.WithoutCancel(ctx))
	defer cut()
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("server: webhooks already running")
	}
	w.running, w.soft, w.hard = true, ctx, hard
	for _, s := range w.subs {
		w.startLocked(s)
	}
	w.mu.Unlock()

	<-ctx.Done()
	w.mu.Lock()
	w.running = false
	w.mu.Unlock()
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(webhookShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		cut()
		<-done
	}
	w.client.CloseIdleConnections()
	return nil
}

// startLocked starts s's delivery goroutine when Run is running and s is
// enabled. w.mu is held.
func (w *Webhooks) startLocked(s *webhookSub) {
	if !w.running || s.disabled() || s.done != nil {
		return
	}
	soft, stopSoft := context.WithCancel(w.soft)
	hard, stopHard := context.WithCancel(w.hard)
	done := make(chan struct{})
	s.stop = func() { stopSoft(); stopHard() }
	s.done = done
	w.wg.Add(1)
	stop := s.stop
	go func() {
		defer w.wg.Done()
		defer close(done)
		defer s.exited(done)
		defer stop()
		s.run(soft, hard)
	}()
}

// ErrSubscriptionLimit is what Create returns past
// WebhookConfig.MaxSubscriptions.
var ErrSubscriptionLimit = errors.New("server: webhook subscription limit reached")

// WebhookRequest is a validated create request (API.md §6.1).
type WebhookRequest struct {
	// SubscriberID names the subscriber; it need not be unique.
	SubscriberID string
	// SystemIDs and CharacterIDs are distinct and sorted; a killmail
	// matches when its system is listed OR a victim or attacker is.
	SystemIDs, CharacterIDs []int64
	// CallbackURL is the http(s) URL the deliveries are POSTed to.
	CallbackURL string
}

// Create stores a new subscription, starting at the store's head, and
// starts its deliveries. It returns the subscription and its signing
// secret ("whsec_" + base64 of 32 random bytes), which is shown only
// here. A callback URL whose host resolves to an address that is not
// allowed gives an error wrapping ErrWebhookAddress; the cap gives
// ErrSubscriptionLimit.
func (w *Webhooks) Create(ctx context.Context, req WebhookRequest) (Subscription, string, error) {
	if !w.cfg.AllowPrivate {
		if err := checkCallbackHost(ctx, w.lookup, hostOf(req.CallbackURL)); err != nil {
			return Subscription{}, "", fmt.Errorf("server: callback_url: %w", err)
		}
	}
	now := nowStamp()
	rec := subRecord{
		ID: randomToken(16), SubscriberID: req.SubscriberID,
		SystemIDs: nonNil(req.SystemIDs), CharacterIDs: nonNil(req.CharacterIDs),
		CallbackURL: req.CallbackURL, Secret: "whsec_" + base64.StdEncoding.EncodeToString(randomBytes(32)),
		CreatedAt: now, UpdatedAt: now,
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.subs) >= w.cfg.MaxSubscriptions {
		return Subscription{}, "", fmt.Errorf("%w (%d)", ErrSubscriptionLimit, w.cfg.MaxSubscriptions)
	}
	cur := cursorRecord{Offset: w.st.Head()}
	s, err := newWebhookSub(w, rec, cur)
	if err != nil {
		return Subscription{}, "", err
	}
	if err := w.st.PutKV(ctx, map[string][]byte{
		webhookSubPrefix + rec.ID:    recordJSON(rec),
		webhookCursorPrefix + rec.ID: recordJSON(cur),
	}); err != nil {
		return Subscription{}, "", fmt.Errorf("server: store subscription: %w", err)
	}
	w.subs[rec.ID] = s
	w.startLocked(s)
	w.log.InfoContext(ctx, "webhook subscription created", "subscription_id", rec.ID,
		"subscriber_id", rec.SubscriberID, "systems", len(rec.SystemIDs), "characters", len(rec.CharacterIDs), "cursor", cur.Offset)
	return s.view(false), rec.Secret, nil
}

// DeleteSubscriber removes every webhook subscription of subscriberID:
// their goroutines are stopped (a delivery in flight is cut) and their
// records deleted. It returns how many there were.
func (w *Webhooks) DeleteSubscriber(ctx context.Context, subscriberID string) (int, error) {
	w.mu.Lock()
	var gone []*webhookSub
	for id, s := range w.subs {
		if s.rec.SubscriberID == subscriberID {
			gone = append(gone, s)
			delete(w.subs, id)
		}
	}
	w.mu.Unlock()
	if len(gone) == 0 {
		return 0, nil
	}
	kv := make(map[string][]byte, 2*len(gone))
	for _, s := range gone {
		s.halt()
		kv[webhookSubPrefix+s.rec.ID] = nil
		kv[webhookCursorPrefix+s.rec.ID] = nil
	}
	if err := w.st.PutKV(ctx, kv); err != nil {
		return 0, fmt.Errorf("server: delete subscriptions: %w", err)
	}
	w.log.InfoContext(ctx, "webhook subscriptions deleted", "subscriber_id", subscriberID, "count", len(gone))
	return len(gone), nil
}

// Subscriptions lists the webhook subscriptions, oldest first, without
// delivery state.
func (w *Webhooks) Subscriptions() []Subscription {
	w.mu.Lock()
	subs := make([]*webhookSub, 0, len(w.subs))
	for _, s := range w.subs {
		subs = append(subs, s)
	}
	w.mu.Unlock()
	out := make([]Subscription, 0, len(subs))
	for _, s := range subs {
		out = append(out, s.view(false))
	}
	sortSubscriptions(out)
	return out
}

// Subscription returns one webhook subscription with its delivery state.
func (w *Webhooks) Subscription(id string) (Subscription, bool) {
	w.mu.Lock()
	s := w.subs[id]
	w.mu.Unlock()
	if s == nil {
		return Subscription{}, false
	}
	return s.view(true), true
}

// counts returns the number of subscriptions and of disabled ones.
func (w *Webhooks) counts() (total, disabled int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range w.subs {
		if s.disabled() {
			disabled++
		}
	}
	return len(w.subs), disabled
}

// startWebhooks runs the webhook deliveries until ctx ends; the returned
// function waits for them to stop.
func (s *Server) startWebhooks(ctx context.Context) (wait func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.webhooks.Run(ctx); err != nil {
			s.log.Error("webhooks stopped", "err", err)
		}
	}()
	return func() { <-done }
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}

// randomToken is n random bytes in unpadded base64url (22 characters for
// 16 bytes, as the original's ids).
func randomToken(n int) string { return base64.RawURLEncoding.EncodeToString(randomBytes(n)) }

func recordJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("server: marshal %T: %v", v, err)) // plain structs always marshal
	}
	return b
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}
