package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// HubConfig configures the live fan-out (WebSocket and SSE). Zero values
// are defaults.
type HubConfig struct {
	// QueueBytes is each connection's outbound budget. A connection whose
	// queued messages pass it is closed as a slow consumer (it may
	// resume). Zero means 4 MiB.
	QueueBytes int
	// MaxConnPerIP caps the live connections (WebSocket and SSE together)
	// of one client address (env WK_MAX_CONN_PER_IP). Zero means 100;
	// negative means no cap.
	MaxConnPerIP int
	// MaxSSEConnections caps open SSE streams; past it the stream routes
	// answer 503 (API.md §5.3). Zero means 1000; negative means no cap.
	MaxSSEConnections int
	// IdleTimeout closes a WebSocket that sent nothing (heartbeats
	// included) for this long. Zero means 60s (API.md §4.1).
	IdleTimeout time.Duration
	// WriteTimeout bounds one write to a client. Zero means 10s.
	WriteTimeout time.Duration
	// MaxFrameBytes caps an inbound WebSocket frame; a larger one closes
	// the socket. Zero means 131072 (API.md §4.1).
	MaxFrameBytes int64
	// MaxSystems and MaxCharacters cap one channel's subscriptions. Zero
	// means 10000 and 50000 (API.md §4.2).
	MaxSystems, MaxCharacters int
	// DisableCompression turns permessage-deflate off (on by default, as
	// upstream).
	DisableCompression bool
	// SSEKeepAlive is the idle time after which the standard stream sends
	// ": ping". Zero means 10s.
	SSEKeepAlive time.Duration
	// SSEHeartbeat is the period of the enhanced stream's heartbeat event.
	// Zero means 30s.
	SSEHeartbeat time.Duration
	// SSEBatchInterval is the pause between the enhanced stream's preload
	// batches. Zero means 100ms.
	SSEBatchInterval time.Duration
	// ReadChunk is the entries per store read of the tail and of
	// catch-ups. Zero means 256.
	ReadChunk int
	// PreloadMaxKills caps the killmails one preload sends. Zero means
	// 2000.
	PreloadMaxKills int
}

func (c *HubConfig) defaults() {
	setDefault(&c.QueueBytes, 4<<20)
	setDefault(&c.MaxConnPerIP, 100)
	setDefault(&c.MaxSSEConnections, 1000)
	setDefault(&c.IdleTimeout, 60*time.Second)
	setDefault(&c.WriteTimeout, 10*time.Second)
	setDefault(&c.MaxFrameBytes, 131072)
	setDefault(&c.MaxSystems, 10000)
	setDefault(&c.MaxCharacters, 50000)
	setDefault(&c.SSEKeepAlive, 10*time.Second)
	setDefault(&c.SSEHeartbeat, 30*time.Second)
	setDefault(&c.SSEBatchInterval, 100*time.Millisecond)
	setDefault(&c.ReadChunk, 256)
	setDefault(&c.PreloadMaxKills, 2000)
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Transport names, as metrics label them.
const (
	transportWS  = "websocket"
	transportSSE = "sse"
)

// Hub follows the store's write log and fans each killmail out to the
// live subscribers: WebSocket channels, SSE streams and Subscribe
// callbacks.
//
// One tail goroutine (Run) reads durable entries in bounded chunks, woken
// by store.Changed; it decodes each killmail once, finds its subscribers
// through inverted indexes, encodes each wire shape once and enqueues the
// same bytes to each matching connection's bounded queue. It never waits
// on a client: a connection whose queue passes its budget is closed with
// a "slow consumer" reason and may resume from its last offset.
//
// Each connection has one writer goroutine (and a WebSocket one reader).
// A subscriber registers under its queue's lock and learns the tail's
// position, so catch-up from the store (up to that position) and live
// delivery (after it) form one stream without loss or repeat.
//
// All methods are safe for concurrent use.
type Hub struct {
	cfg      HubConfig
	st       *store.Store
	log      *slog.Logger
	met      *hubMetrics
	upgrader websocket.Upgrader

	// ctx bounds the store reads of connections (catch-up, preload); it
	// ends at Shutdown.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards ix and the subscribers' id lists. The tail holds it for
	// reading while it matches one killmail and advances pos.
	mu      sync.RWMutex
	ix      *matchIndex
	nSubs   int
	pos     atomic.Uint64
	scratch []*subscriber  // tail only
	deflate *frameDeflater // tail only

	connMu sync.Mutex
	conns  map[*outQueue]struct{}
	perIP  map[string]int
	nWS    int
	nSSE   int
	closed bool
	wg     sync.WaitGroup
}

// NewHub builds a hub over the store and registers its metrics on reg
// (nil skips them). The tail starts at the store's head: Run delivers
// what is committed from then on.
func NewHub(st *store.Store, cfg HubConfig, reg prometheus.Registerer, log *slog.Logger) (*Hub, error) {
	if st == nil {
		return nil, errors.New("server: hub needs a store")
	}
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		cfg:     cfg,
		st:      st,
		log:     log.With("component", "hub"),
		ix:      newMatchIndex(),
		deflate: &frameDeflater{},
		conns:   make(map[*outQueue]struct{}),
		perIP:   make(map[string]int),
		upgrader: websocket.Upgrader{
			ReadBufferSize:    1024,
			WriteBufferSize:   4096,
			WriteBufferPool:   &sync.Pool{},
			EnableCompression: !cfg.DisableCompression,
			CheckOrigin:       func(*http.Request) bool { return true },
		},
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.pos.Store(st.Head())
	h.met = newHubMetrics(h)
	if reg != nil {
		if err := h.met.register(reg); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// Run follows the write log until ctx ends, delivering each durable,
// non-quiet killmail to its subscribers. It returns nil when ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		changed := h.st.Changed()
		n, err := h.step(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			h.log.Error("tail read failed", "offset", h.pos.Load(), "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			continue
		case n > 0:
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// step reads and dispatches one chunk; it returns how many entries it
// handled.
func (h *Hub) step(ctx context.Context) (int, error) {
	entries, err := h.st.Read(ctx, h.pos.Load(), h.cfg.ReadChunk)
	for _, e := range entries {
		h.dispatch(e)
	}
	return len(entries), err
}

// dispatch delivers one entry to every subscriber it matches.
func (h *Hub) dispatch(e store.Entry) {
	if e.Quiet {
		h.pos.Store(e.Offset)
		return
	}
	km, err := e.Killmail()
	if err != nil {
		h.log.Error("undecodable log entry skipped", "offset", e.Offset, "err", err)
		h.pos.Store(e.Offset)
		return
	}
	h.mu.RLock()
	matched, nSys := h.ix.match(km, h.scratch[:0])
	h.pos.Store(e.Offset)
	h.mu.RUnlock()
	if len(matched) > 0 {
		ev := &liveEvent{entry: e, km: km, epoch: h.st.Epoch(), stamp: nowStamp(), count: h.st.CountSystem, z: h.deflate}
		value := km.TotalValue()
		for i, s := range matched {
			if s.minValue > 0 && (km.ZKB == nil || value < s.minValue) {
				continue
			}
			s.sink.deliver(ev, i < nSys)
		}
	}
	clear(matched)
	h.scratch = matched[:0]
}

// register adds s to the index under its ids and returns the tail's
// position: every entry after it will be matched against s, none before.
func (h *Hub) register(s *subscriber, systems, chars []int64) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.systems, s.chars = append([]int64(nil), systems...), append([]int64(nil), chars...)
	h.ix.add(s, s.systems, s.chars)
	h.nSubs++
	return h.pos.Load()
}

// update changes the ids of a registered subscriber and returns the
// tail's position at the change.
func (h *Hub) update(s *subscriber, addSys, delSys, addChars, delChars []int64) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.removed {
		h.ix.remove(s, delSys, delChars)
		h.ix.add(s, addSys, addChars)
		s.systems = applyDiff(s.systems, addSys, delSys)
		s.chars = applyDiff(s.chars, addChars, delChars)
	}
	return h.pos.Load()
}

// unregister removes s; later deliveries skip it. Idempotent.
func (h *Hub) unregister(s *subscriber) {
	if s == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.removed {
		return
	}
	h.ix.remove(s, s.systems, s.chars)
	h.ix.release(s)
	s.removed = true
	h.nSubs--
}

func applyDiff(have, add, del []int64) []int64 {
	out := have[:0:0]
	for _, id := range have {
		if !containsID(del, id) {
			out = append(out, id)
		}
	}
	return append(out, add...)
}

func containsID(ids []int64, id int64) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}

// Position returns the store epoch and the offset the tail has delivered
// through: a consumer that has every killmail up to it resumes after it.
func (h *Hub) Position() (epoch string, offset uint64) { return h.st.Epoch(), h.pos.Load() }

// Event is one live killmail handed to a Subscribe callback. Killmail and
// JSON are shared with other subscribers: read them, never modify them.
type Event struct {
	Offset   uint64
	Killmail *store.Killmail
	JSON     json.RawMessage
}

type funcSink func(Event)

func (f funcSink) deliver(ev *liveEvent, _ bool) {
	f(Event{Offset: ev.entry.Offset, Killmail: ev.km, JSON: ev.entry.JSON})
}

// Subscribe registers fn for every live killmail that matches f (an
// empty filter matches everything, as for webhooks) and returns the
// function that cancels it. fn runs on the hub's tail goroutine, in log
// order, and must not block: hand the event to a worker (a non-blocking
// channel send, or just a wake-up of a reader that follows the store from
// its own cursor). Killmails committed before Subscribe returns are not
// delivered; read them from the store up to Position's offset.
func (h *Hub) Subscribe(f Filter, fn func(Event)) (cancel func()) {
	s := &subscriber{sink: funcSink(fn), minValue: f.MinValue, wildcard: f.Wildcard()}
	h.register(s, f.Systems, f.Characters)
	var once sync.Once
	return func() { once.Do(func() { h.unregister(s) }) }
}

// errLiveClosed: the hub is shutting down.
var errLiveClosed = errors.New("server: live feeds are shutting down")

// connLimitError says why a connection was refused.
type connLimitError struct {
	status int
	reason string
	msg    string
}

func (e *connLimitError) Error() string { return e.msg }

// open admits a connection from ip, counts it and tracks its queue for
// shutdown. close must follow when it ends.
func (h *Hub) open(ip, transport string, q *outQueue) error {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	switch {
	case h.closed:
		return errLiveClosed
	case h.cfg.MaxConnPerIP > 0 && h.perIP[ip] >= h.cfg.MaxConnPerIP:
		h.met.rejected.WithLabelValues("per_ip").Inc()
		return &connLimitError{http.StatusTooManyRequests, "per_ip_limit", "Too many connections from this address"}
	case transport == transportSSE && h.cfg.MaxSSEConnections > 0 && h.nSSE >= h.cfg.MaxSSEConnections:
		h.met.rejected.WithLabelValues("capacity").Inc()
		return &connLimitError{http.StatusServiceUnavailable, "connection_limit_reached", "Too many active SSE connections"}
	}
	h.perIP[ip]++
	if transport == transportWS {
		h.nWS++
	} else {
		h.nSSE++
	}
	h.conns[q] = struct{}{}
	h.wg.Add(1)
	h.met.opened.WithLabelValues(transport).Inc()
	return nil
}

// close releases what open took.
func (h *Hub) close(ip, transport string, q *outQueue) {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	if h.perIP[ip]--; h.perIP[ip] <= 0 {
		delete(h.perIP, ip)
	}
	if transport == transportWS {
		h.nWS--
	} else {
		h.nSSE--
	}
	delete(h.conns, q)
	h.wg.Done()
}

// Shutdown refuses new connections, closes every WebSocket with a close
// frame (1001 "server shutting down") and ends every SSE stream with a
// final event, after what is queued. It waits for the connections to end
// or ctx. Idempotent.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.connMu.Lock()
	h.closed = true
	for q := range h.conns {
		q.close(closeShutdown)
	}
	h.connMu.Unlock()
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	h.cancel()
	return err
}

// HubStats are the live-feed figures for /websocket/status, /status,
// /metrics and the dashboard.
type HubStats struct {
	WebSocketConnections int `json:"websocket_connections"`
	SSEConnections       int `json:"sse_connections"`
	// Subscriptions counts live channel/stream subscriptions.
	Subscriptions int `json:"subscriptions"`
	// Systems and Characters count distinct subscribed ids.
	Systems    int `json:"systems"`
	Characters int `json:"characters"`
	// TailOffset is the write-log offset delivered through.
	TailOffset uint64 `json:"tail_offset"`
}

// Stats returns current figures. Safe for concurrent use.
func (h *Hub) Stats() HubStats {
	var hs HubStats
	h.mu.RLock()
	hs.Subscriptions, hs.Systems, hs.Characters = h.nSubs, len(h.ix.bySystem), h.ix.chars.len()
	h.mu.RUnlock()
	h.connMu.Lock()
	hs.WebSocketConnections, hs.SSEConnections = h.nWS, h.nSSE
	h.connMu.Unlock()
	hs.TailOffset = h.pos.Load()
	return hs
}

// queueBytes sums what the open connections have queued.
func (h *Hub) queueBytes() int {
	h.connMu.Lock()
	qs := make([]*outQueue, 0, len(h.conns))
	for q := range h.conns {
		qs = append(qs, q)
	}
	h.connMu.Unlock()
	total := 0
	for _, q := range qs {
		total += q.size()
	}
	return total
}

// clientIP is the address a connection comes from (no proxy headers are
// trusted).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
