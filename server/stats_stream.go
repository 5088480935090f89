package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/ingest"
)

// The stats stream (/api/v1/stats/stream) feeds the dashboard: a "stats"
// event with a statsSnapshot whenever the figures change (looked at every
// statsPeriod), a ": ping" comment after statsKeepAlive without one.
const (
	statsPeriod    = time.Second
	statsKeepAlive = 10 * time.Second
	// maxStatsStreams caps open stats streams: each builds a snapshot
	// every second.
	maxStatsStreams = 100
)

// statsSnapshot is one "stats" event: every figure the dashboard shows.
// A figure the server does not know is null, never a made-up zero.
type statsSnapshot struct {
	Timestamp string `json:"timestamp"`
	Version   string `json:"version"`
	StartedAt string `json:"started_at"`
	Store     struct {
		Killmails uint64 `json:"killmails"`
		Head      uint64 `json:"head_offset"`
		Trimmed   uint64 `json:"trimmed_offset"`
		DiskBytes uint64 `json:"disk_bytes"`
		Epoch     string `json:"epoch"`
	} `json:"store"`
	// Ingest is null until the server's sampler runs (Serve).
	Ingest *ingestFigures `json:"ingest"`
	Feed   feedFigures    `json:"feed"`
	ESI    *esiFigures    `json:"esi"`
	Live   HubStats       `json:"live"`
	// Webhooks is null when the server has no webhooks.
	Webhooks *webhookFigures `json:"webhooks"`
	HTTP     struct {
		RequestsPerMinute int64 `json:"requests_per_minute"`
	} `json:"http"`
}

// feedFigures is the live feed as the dashboard shows it.
type feedFigures struct {
	Source string `json:"source"`
	State  string `json:"state"`
	// LastSequence, UpstreamSequence and LagSequences are R2Z2's; null
	// when unknown (RedisQ has no sequence).
	LastSequence      *int64       `json:"last_sequence"`
	UpstreamSequence  *int64       `json:"upstream_sequence"`
	LagSequences      *int64       `json:"lag_sequences"`
	LagSeconds        float64      `json:"lag_seconds"`
	Killmails         uint64       `json:"killmails"`
	ConsecutiveErrors int          `json:"consecutive_errors"`
	LastError         *string      `json:"last_error"`
	LastSuccess       *string      `json:"last_success"`
	Circuit           circuitState `json:"circuit_breaker"`
}

// esiFigures is the ESI client as the dashboard shows it.
type esiFigures struct {
	// ErrorBudgetRemaining is the last X-ESI-Error-Limit-Remain; null
	// before ESI sent one. ErrorBudgetReset is when it resets.
	ErrorBudgetRemaining *int    `json:"error_budget_remaining"`
	ErrorBudgetReset     *string `json:"error_budget_reset"`
	// HeldUntil is set while calls are held back (error limit, 420, 429).
	HeldUntil *string `json:"held_until"`
	// CacheHitRate is null before any lookup.
	CacheHitRate        *float64     `json:"cache_hit_rate"`
	CacheHits           uint64       `json:"cache_hits"`
	CacheMisses         uint64       `json:"cache_misses"`
	CacheEntries        int          `json:"cache_entries"`
	ConsecutiveTimeouts int          `json:"consecutive_timeouts"`
	Circuit             circuitState `json:"circuit_breaker"`
}

// circuitState is a circuit breaker in short.
type circuitState struct {
	State             string `json:"state"`
	ConsecutiveErrors int    `json:"consecutive_errors"`
	Threshold         int    `json:"threshold"`
}

// statsSnapshot gathers the figures as of now.
func (s *Server) statsSnapshot(now time.Time) *statsSnapshot {
	snap := &statsSnapshot{Version: s.cfg.Version, StartedAt: s.started.UTC().Format(time.RFC3339)}
	st := s.deps.Store.Stats()
	snap.Store.Killmails, snap.Store.Head, snap.Store.Trimmed = st.Killmails, st.Head, st.Trimmed
	snap.Store.DiskBytes, snap.Store.Epoch = st.DiskBytes, st.Epoch
	if f, ok := s.dash.ingest.figures(now); ok {
		snap.Ingest = &f
	}
	snap.Feed = feedFiguresOf(s.feedState())
	if s.deps.ESI != nil {
		snap.ESI = esiFiguresOf(s.deps.ESI.Stats(), now)
	}
	snap.Live = s.hub.Stats()
	snap.Webhooks = webhookFiguresOf(s.webhooks)
	snap.HTTP.RequestsPerMinute = s.http.perMin.sum(now)
	return snap
}

func feedFiguresOf(f ingest.State) feedFigures {
	ff := feedFigures{Source: f.Source, State: f.State, LagSeconds: f.Lag.Seconds(), Killmails: f.Killmails,
		ConsecutiveErrors: f.ConsecutiveErrors, Circuit: circuitOf(feedBreaker(f))}
	if f.LastSequence > 0 {
		ff.LastSequence = &f.LastSequence
	}
	if f.UpstreamSequence > 0 {
		ff.UpstreamSequence = &f.UpstreamSequence
		if f.LastSequence > 0 {
			ff.LagSequences = &f.LagSequences
		}
	}
	if f.LastError != "" {
		ff.LastError = &f.LastError
	}
	ff.LastSuccess = stampOrNil(f.LastSuccess)
	return ff
}

func esiFiguresOf(es esi.Stats, now time.Time) *esiFigures {
	ef := &esiFigures{CacheHits: es.CacheHits, CacheMisses: es.CacheMisses, CacheEntries: es.CacheEntries,
		ConsecutiveTimeouts: es.ConsecutiveTimeouts, Circuit: circuitOf(es.Breaker)}
	if es.ErrorBudgetRemaining >= 0 {
		ef.ErrorBudgetRemaining = &es.ErrorBudgetRemaining
		ef.ErrorBudgetReset = stampOrNil(es.ErrorBudgetReset)
	}
	if es.HeldUntil.After(now) {
		ef.HeldUntil = stampOrNil(es.HeldUntil)
	}
	if es.CacheHits+es.CacheMisses > 0 {
		ef.CacheHitRate = &es.HitRate
	}
	return ef
}

func circuitOf(b esi.BreakerStats) circuitState {
	state := b.State
	if state == "" {
		state = esi.StateClosed
	}
	return circuitState{State: state, ConsecutiveErrors: b.ConsecutiveFailures, Threshold: b.Threshold}
}

func stampOrNil(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	v := t.UTC().Format(time.RFC3339)
	return &v
}

// statsStream serves /api/v1/stats/stream: Server-Sent Events of the
// dashboard figures. It ends when the client leaves or the server shuts
// down (with a final "error" event of type server_shutdown).
func (s *Server) statsStream(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if s.dash.streams.Add(1) > maxStatsStreams {
		s.dash.streams.Add(-1)
		writeErrorMap(w, http.StatusServiceUnavailable, errorMap{Domain: "system", Type: "connection_limit_reached",
			Message: "Too many active stats streams", Retryable: true})
		return
	}
	defer s.dash.streams.Add(-1)
	out := &statsWriter{w: w, rc: http.NewResponseController(w), timeout: s.hub.cfg.WriteTimeout}
	// A stream outlives http.Server's ReadTimeout.
	_ = out.rc.SetReadDeadline(time.Time{})
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	stop := s.dash.stopped()
	frames := &statsFrames{srv: s}
	first := append([]byte("retry: "+strconv.Itoa(sseRetryMillis)+"\n\n"), frames.next(time.Now())...)
	if out.send(first) != nil {
		return
	}
	tick := time.NewTicker(statsPeriod)
	defer tick.Stop()
	lastSent := time.Now()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-stop:
			_ = out.send(appendSSEEvent(nil, "error", map[string]string{
				"type": "server_shutdown", "message": "server shutting down", "timestamp": nowStamp()}))
			return
		case now := <-tick.C:
			b := frames.next(now)
			if b == nil && now.Sub(lastSent) < statsKeepAlive {
				continue
			}
			if b == nil {
				b = []byte(": ping\n\n")
			}
			if out.send(b) != nil {
				return
			}
			lastSent = now
		}
	}
}

// statsFrames makes the "stats" events of one stream, skipping
// snapshots equal to the last one sent.
type statsFrames struct {
	srv  *Server
	last []byte // the last snapshot sent, without its timestamp
}

// next returns the event of the snapshot as of now, or nil when the
// figures did not change.
func (f *statsFrames) next(now time.Time) []byte {
	snap := f.srv.statsSnapshot(now)
	key, _ := json.Marshal(snap) // Timestamp still empty: equal keys, equal figures
	if bytes.Equal(key, f.last) {
		return nil
	}
	f.last = key
	snap.Timestamp = nowStamp()
	return appendSSEEvent(nil, "stats", snap)
}

// statsWriter writes and flushes the chunks of one stats stream, each
// within the write timeout.
type statsWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
}

func (o *statsWriter) send(b []byte) error {
	_ = o.rc.SetWriteDeadline(time.Now().Add(o.timeout))
	if _, err := o.w.Write(b); err != nil {
		return err
	}
	return o.rc.Flush()
}
