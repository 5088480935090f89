package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// sseKind is which SSE endpoint a stream serves.
type sseKind int

const (
	// sseStandard is /api/v1/kills/stream (API.md §5.2): a retry line,
	// then one unnamed data event per killmail and ": ping" keep-alives.
	sseStandard sseKind = iota
	// sseEnhanced is /api/v1/kills/stream/enhanced (API.md §5.3): named
	// events connected, batch, transition, killmail, heartbeat, error.
	sseEnhanced
)

// sseRetryMillis is the reconnection delay the standard stream announces.
const sseRetryMillis = 2000

// Resume on SSE: every killmail event carries "id: <epoch>-<offset>" (the
// store epoch and the write-log offset). A client reconnecting with
// Last-Event-ID (or ?last_event_id= on a first connection) gets every
// matching killmail after that offset from the store, then live ones. A
// bare "<offset>" is honoured too. A different epoch, an offset beyond
// the newest, or one older than retention get an explicit error event
// (the stream then goes on from where it can).

// sseStream is one open SSE response. Its handler goroutine is the
// writer; the hub's tail reaches it only through q.
type sseStream struct {
	hub  *Hub
	kind sseKind
	// raw is the connection when the stream took it over (see
	// sse_conn.go); nil: the stream writes through w.
	raw        *sseConn
	w          http.ResponseWriter
	rc         *http.ResponseController
	q          *outQueue
	ip         string
	epoch      string
	lastOffset uint64
	spare      []outItem
	events     [][]byte
	mode       string
}

// resumePos is a parsed Last-Event-ID.
type resumePos struct {
	given   bool
	invalid bool
	epoch   string
	offset  uint64
}

func parseResume(r *http.Request) resumePos {
	id := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if id == "" {
		id = strings.TrimSpace(r.URL.Query().Get("last_event_id"))
	}
	if id == "" {
		return resumePos{}
	}
	rp := resumePos{given: true}
	num := id
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		rp.epoch, num = id[:i], id[i+1:]
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil || (rp.epoch == "" && num != id) {
		return resumePos{given: true, invalid: true}
	}
	rp.offset = n
	return rp
}

// serveSSE serves both stream endpoints.
func (h *Hub) serveSSE(w http.ResponseWriter, r *http.Request, kind sseKind) {
	f, err := parseSSEFilters(r.URL.Query())
	if err != nil {
		writeErrorMap(w, http.StatusBadRequest, errorMap{Domain: "validation", Type: "invalid_format", Message: err.Error()})
		return
	}
	st := &sseStream{hub: h, kind: kind, w: w, rc: http.NewResponseController(w), ip: clientIP(r),
		q: newOutQueue(h.cfg.QueueBytes), epoch: h.st.Epoch(), mode: "realtime"}
	if err := h.open(st.ip, transportSSE, st.q); err != nil {
		refuse(w, err)
		return
	}
	defer h.close(st.ip, transportSSE, st.q)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	st.setHeaders()
	if raw, ok := hijackSSE(w, r, cancel); ok {
		st.raw = raw
		defer raw.end()
	} else {
		// A stream outlives http.Server's ReadTimeout, which would
		// otherwise cancel the request when it fires.
		_ = st.rc.SetReadDeadline(time.Time{})
		w.WriteHeader(http.StatusOK)
	}
	st.q.onOverflow = st.jam
	if err := st.open(f); err != nil {
		return
	}
	fl := f.filter()
	sub := &subscriber{sink: st, minValue: fl.MinValue, wildcard: fl.Wildcard()}
	pos := h.register(sub, fl.Systems, fl.Characters)
	defer func() {
		st.q.close(closeGone)
		h.unregister(sub)
	}()
	if err := st.begin(ctx, f, parseResume(r), pos); err != nil {
		return
	}
	st.loop(ctx)
}

// jam runs when the queue overflows: a write stuck on a client that does
// not read gets closeGrace to finish, then fails.
func (st *sseStream) jam() {
	if st.raw != nil {
		st.raw.jam(closeGrace)
		return
	}
	_ = st.rc.SetWriteDeadline(time.Now().Add(closeGrace))
}

func (st *sseStream) setHeaders() {
	hdr := st.w.Header()
	if st.kind == sseStandard {
		hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	} else {
		hdr.Set("Content-Type", "text/event-stream")
		hdr.Set("X-Accel-Buffering", "no")
	}
	hdr.Set("Cache-Control", "no-cache")
}

// open writes the first chunk: the retry line, or the connected event.
func (st *sseStream) open(f sseFilters) error {
	if st.kind == sseStandard {
		return st.send([]byte("retry: " + strconv.Itoa(sseRetryMillis) + "\n\n"))
	}
	return st.send(appendSSEEvent(nil, "connected", map[string]any{
		"status": "connected", "filters": f, "timestamp": nowStamp(),
	}))
}

// begin sends what precedes live delivery: the resume catch-up (or the
// reason it cannot be honoured), or the enhanced stream's preload.
func (st *sseStream) begin(ctx context.Context, f sseFilters, rp resumePos, pos uint64) error {
	st.lastOffset = pos
	fs := compileFilter(f.filter(), true)
	if rp.given {
		from, ok, err := st.checkResume(rp)
		if err != nil || !ok {
			return err
		}
		st.lastOffset = from
		return st.hub.catchUp(ctx, from, pos, fs, st.q, func(e store.Entry, _ *store.Killmail) error {
			if err := st.send(appendSSEKillmail(nil, st.kind, st.epoch, e.Offset, e.JSON)); err != nil {
				return err
			}
			st.lastOffset = e.Offset
			return nil
		})
	}
	if st.kind == sseEnhanced && f.PreloadDays > 0 && !f.filter().Wildcard() {
		return st.preload(ctx, f, pos)
	}
	return nil
}

// checkResume decides where a resumed stream starts; ok is false when the
// position is unusable (an error event said so; live delivery goes on).
func (st *sseStream) checkResume(rp resumePos) (from uint64, ok bool, err error) {
	s := st.hub.st
	switch {
	case rp.invalid:
		return 0, false, st.sendError("invalid_last_event_id", "Last-Event-ID must be \"<epoch>-<offset>\" or \"<offset>\"; streaming live killmails only")
	case rp.epoch != "" && rp.epoch != st.epoch:
		return 0, false, st.sendError("epoch_mismatch", fmt.Sprintf(
			"Last-Event-ID belongs to store epoch %s, this store is %s; streaming live killmails only", rp.epoch, st.epoch))
	case rp.offset > s.Head():
		return 0, false, st.sendError("offset_ahead", fmt.Sprintf(
			"Last-Event-ID offset %d is beyond the newest offset %d; streaming live killmails only", rp.offset, s.Head()))
	case rp.offset < s.Trimmed():
		err = st.sendError("offset_trimmed", fmt.Sprintf(
			"killmails after offset %d up to %d may have been removed by retention; sending what remains", rp.offset, s.Trimmed()))
	}
	return rp.offset, err == nil, err
}

// loop writes queued killmails until the client leaves or the queue
// closes, with keep-alives (standard) or heartbeats (enhanced) between.
func (st *sseStream) loop(ctx context.Context) {
	period := st.hub.cfg.SSEKeepAlive
	if st.kind == sseEnhanced {
		period = st.hub.cfg.SSEHeartbeat
	}
	timer := time.NewTimer(period)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			if st.keepAlive() != nil {
				return
			}
			timer.Reset(period)
		case <-st.q.wake:
			batch, closing := st.q.take(st.spare)
			n, err := st.writeBatch(batch)
			st.spare = recycle(batch)
			if err != nil {
				st.abort(err)
				return
			}
			if closing != 0 {
				st.finish(closing)
				return
			}
			if n > 0 && st.kind == sseStandard {
				timer.Reset(period)
			}
		}
	}
}

// writeBatch sends the killmails of a drained batch together.
func (st *sseStream) writeBatch(batch []outItem) (int, error) {
	if len(batch) == 0 {
		return 0, nil
	}
	events, last := st.events[:0], st.lastOffset
	for i := range batch {
		it := &batch[i]
		if st.q.abandoned() {
			st.events = dropEvents(events)
			return 0, errAbandoned
		}
		if it.offset != 0 && it.offset <= last {
			continue
		}
		events = append(events, it.wire)
		last = max(last, it.offset)
	}
	n := len(events)
	err := st.write(events)
	st.events = dropEvents(events)
	if err != nil {
		return 0, err
	}
	st.lastOffset = last
	st.hub.met.sentSSE.Add(float64(n))
	return n, nil
}

// dropEvents forgets the events of a sent batch and keeps a small array
// for the next one.
func dropEvents(events [][]byte) [][]byte {
	clear(events)
	if cap(events) > 64 {
		return nil
	}
	return events[:0]
}

// write sends whole events and flushes them.
func (st *sseStream) write(events [][]byte) error {
	if len(events) == 0 {
		return nil
	}
	if st.raw != nil {
		return st.raw.write(events, st.hub.cfg.WriteTimeout)
	}
	_ = st.rc.SetWriteDeadline(time.Now().Add(st.hub.cfg.WriteTimeout))
	for _, b := range events {
		if _, err := st.w.Write(b); err != nil {
			return err
		}
	}
	return st.rc.Flush()
}

func (st *sseStream) keepAlive() error {
	if st.kind == sseStandard {
		return st.send([]byte(": ping\n\n"))
	}
	return st.send(appendSSEEvent(nil, "heartbeat", map[string]string{"timestamp": nowStamp(), "mode": st.mode}))
}

// send writes and flushes one event of this stream.
func (st *sseStream) send(b []byte) error {
	if err := st.write([][]byte{b}); err != nil {
		return err
	}
	st.hub.met.sentSSE.Inc()
	return nil
}

func (st *sseStream) sendError(typ, msg string) error {
	return st.send(appendSSEEvent(nil, "error", map[string]string{"type": typ, "message": msg, "timestamp": nowStamp()}))
}

// finish ends the stream for a reason, with a final error event when the
// client can still read it.
func (st *sseStream) finish(kind closeKind) {
	switch kind {
	case closeSlow:
		st.slow()
		st.jam()
		_ = st.sendError("slow_consumer", "slow consumer: resume with Last-Event-ID "+resumeID(st.epoch, st.lastOffset))
	case closeShutdown:
		_ = st.sendError("server_shutdown", "server shutting down; reconnect with Last-Event-ID "+resumeID(st.epoch, st.lastOffset))
	}
}

// abort ends a stream whose writes failed; a timeout counts as slow.
func (st *sseStream) abort(err error) {
	st.q.close(closeGone)
	if st.q.kind() == closeSlow || isTimeout(err) {
		st.slow()
	}
}

func (st *sseStream) slow() {
	st.hub.met.slow.WithLabelValues(transportSSE).Inc()
	st.hub.log.Info("slow consumer disconnected", "transport", transportSSE, "ip", st.ip, "last_offset", st.lastOffset)
}

// deliver implements sink: the shared SSE event of the killmail.
func (st *sseStream) deliver(ev *liveEvent, _ bool) {
	b := ev.sseFrame(st.kind)
	st.q.push(outItem{wire: b, size: len(b), offset: ev.entry.Offset})
}

// errStreamEnded: the client left during a preload.
var errStreamEnded = errors.New("server: stream ended")
