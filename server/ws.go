package server

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// closeGrace is how long a closing connection waits for the peer's close
// frame, and how long a jammed write may still take once the queue
// overflowed.
const closeGrace = time.Second

// wsConn is one WebSocket connection speaking the Phoenix channel
// protocol. readLoop runs for its life (and owns ch); writeTurn runs
// while there is something to write (one turn at a time, started by q;
// the turns own lastOffset, spare and bufs). The hub's tail reaches it
// only through q.
type wsConn struct {
	hub *Hub
	ws  *websocket.Conn
	// nc is the connection under ws; the writer sends queued frames
	// straight to it (see ws_frame.go).
	nc *wsNetConn
	// deflate: permessage-deflate was agreed, so live frames go out
	// compressed.
	deflate     bool
	vsn         int
	ip          string
	userID      string
	connectedAt string
	q           *outQueue

	ch *lobbyChannel // reader-owned

	lastOffset uint64      // writer-owned
	spare      []outItem   // writer-owned
	bufs       net.Buffers // writer-owned

	closing    atomic.Bool
	readerDone chan struct{}
	exits      atomic.Int32
}

// serveWS upgrades /socket/websocket (API.md §4.1).
func (h *Hub) serveWS(w http.ResponseWriter, r *http.Request) {
	vsn, ok := parseVsn(r.URL.Query().Get("vsn"))
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported serializer version", "status": "400"})
		return
	}
	c := &wsConn{hub: h, vsn: vsn, ip: clientIP(r), q: newOutQueue(h.cfg.QueueBytes), readerDone: make(chan struct{})}
	if err := h.open(c.ip, transportWS, c.q); err != nil {
		refuse(w, err)
		return
	}
	tap := &hijackTap{ResponseWriter: w}
	ws, err := h.upgrader.Upgrade(tap, r, nil)
	if err != nil {
		// The upgrader has answered the request.
		h.close(c.ip, transportWS, c.q)
		return
	}
	c.ws, c.nc, c.deflate = ws, tap.conn, tap.conn.deflate
	c.userID = userID(r)
	c.connectedAt = nowStamp()
	c.q.onOverflow = c.kick
	ws.SetReadLimit(h.cfg.MaxFrameBytes)
	go c.readLoop()
	c.q.spawnWriters(c.writeTurn)
}

// refuse answers a connection the hub did not admit.
func refuse(w http.ResponseWriter, err error) {
	var le *connLimitError
	if errors.As(err, &le) {
		writeJSON(w, le.status, map[string]any{"error": map[string]string{"type": le.reason, "message": le.msg}})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": map[string]string{
		"type": "shutting_down", "message": "Server is shutting down"}})
}

// parseVsn picks the serializer: "2.x" is V2, "1.x" or nothing is V1.
func parseVsn(v string) (int, bool) {
	switch {
	case v == "" || strings.HasPrefix(v, "1."):
		return vsnV1, true
	case strings.HasPrefix(v, "2."):
		return vsnV2, true
	}
	return 0, false
}

// userID builds the original's user id: "<client id>_<unix µs>_<random>",
// the client id taken from client_id, client_identifier or identifier,
// trimmed, cut to 32 characters and cleaned to [A-Za-z0-9_-].
func userID(r *http.Request) string {
	q := r.URL.Query()
	var id string
	for _, k := range []string{"client_id", "client_identifier", "identifier"} {
		if v := q.Get(k); v != "" {
			id = v
			break
		}
	}
	id = strings.TrimSpace(id)
	if len(id) > 32 {
		id = id[:32]
	}
	id = strings.Map(func(r rune) rune {
		if r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return -1
	}, id)
	var b [8]byte
	_, _ = rand.Read(b[:])
	tail := strconv.FormatInt(time.Now().UnixMicro(), 10) + "_" + base64.RawURLEncoding.EncodeToString(b[:])
	if id == "" {
		return tail
	}
	return id + "_" + tail
}

// readLoop reads frames until the peer leaves, the socket idles past
// IdleTimeout or the writer closes the socket.
func (c *wsConn) readLoop() {
	defer c.exit()
	defer close(c.readerDone)
	defer func() {
		c.q.close(closeGone)
		if c.ch != nil {
			c.hub.unregister(c.ch.sub)
		}
	}()
	for {
		if !c.closing.Load() {
			_ = c.ws.SetReadDeadline(time.Now().Add(c.hub.cfg.IdleTimeout))
		}
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		m, err := decodePhx(c.vsn, data)
		if err != nil {
			c.closing.Store(true)
			msg := websocket.FormatCloseMessage(websocket.CloseInvalidFramePayloadData, "invalid frame")
			_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace))
			return
		}
		c.handle(m)
	}
}

// writeTurn drains the queue to the socket until it is empty (the queue
// starts another turn on the next push) or closes. Turns never overlap;
// the last one, which finishes the socket, counts as the writer's exit.
func (c *wsConn) writeTurn() {
	for {
		batch, closing := c.q.take(c.spare)
		if err := c.writeBatch(batch); err != nil {
			c.spare = recycle(batch)
			c.abort(err)
			c.exit()
			return
		}
		c.spare = recycle(batch)
		if closing != 0 {
			c.finish(closing)
			c.exit()
			return
		}
		if c.q.idle() {
			return
		}
	}
}

// writeBatch sends a drained batch: the frames between tasks go out
// together, with one write.
func (c *wsConn) writeBatch(batch []outItem) error {
	if len(batch) == 0 {
		return nil
	}
	bufs, last, frames := c.bufs[:0], c.lastOffset, 0
	for i := range batch {
		it := &batch[i]
		if c.q.abandoned() {
			c.bufs = dropBufs(bufs)
			return errAbandoned
		}
		if it.task != nil {
			if err := c.flush(bufs, last, frames); err != nil {
				return err
			}
			bufs, frames = c.bufs, 0
			if err := it.task(); err != nil {
				return err
			}
			last = c.lastOffset
			continue
		}
		if it.offset == 0 || it.offset > last {
			bufs = append(bufs, it.wire)
			last = max(last, it.offset)
			frames++
		}
		if len(it.also) > 0 {
			bufs = append(bufs, it.also)
			frames++
		}
	}
	return c.flush(bufs, last, frames)
}

// flush writes bufs (frames) in one go; then the client has everything
// through offset last.
func (c *wsConn) flush(bufs net.Buffers, last uint64, frames int) error {
	if len(bufs) > 0 {
		if c.q.abandoned() {
			c.bufs = dropBufs(bufs)
			return errAbandoned
		}
		pending := bufs
		err := c.nc.writeRaw(&pending, c.hub.cfg.WriteTimeout)
		c.bufs = dropBufs(bufs)
		if err != nil {
			return err
		}
		c.hub.met.sentWS.Add(float64(frames))
	}
	c.lastOffset = last
	return nil
}

// dropBufs forgets the frames of a sent batch and keeps a small array
// for the next one.
func dropBufs(bufs net.Buffers) net.Buffers {
	clear(bufs)
	if cap(bufs) > 64 {
		return nil
	}
	return bufs[:0]
}

// errAbandoned stops a writer whose queue was dropped.
var errAbandoned = errors.New("server: connection abandoned")

// abort ends a connection whose writes failed or were abandoned. A write
// that timed out means a client that does not read: a slow consumer too.
func (c *wsConn) abort(err error) {
	c.q.close(closeGone)
	if c.q.kind() == closeSlow || isTimeout(err) {
		c.hub.met.slow.WithLabelValues(transportWS).Inc()
		c.hub.log.Info("slow consumer disconnected", "transport", transportWS, "ip", c.ip, "last_offset", c.lastOffset)
	}
	_ = c.ws.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// writeNow writes one frame of this connection from a writer task.
func (c *wsConn) writeNow(frame []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.hub.cfg.WriteTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
		return err
	}
	c.hub.met.sentWS.Inc()
	return nil
}

// finish closes the socket for a reason: a close frame when the peer is
// still there, then a short wait for its answer.
func (c *wsConn) finish(kind closeKind) {
	c.closing.Store(true)
	var code int
	var text string
	switch kind {
	case closeSlow:
		c.hub.met.slow.WithLabelValues(transportWS).Inc()
		c.hub.log.Info("slow consumer disconnected", "transport", transportWS, "ip", c.ip, "last_offset", c.lastOffset)
		code, text = websocket.CloseTryAgainLater, fmt.Sprintf("slow consumer: resume with since_offset %d", c.lastOffset)
	case closeShutdown:
		code, text = websocket.CloseGoingAway, "server shutting down"
	}
	if code != 0 {
		msg := websocket.FormatCloseMessage(code, text)
		if c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeGrace)) == nil {
			_ = c.ws.SetReadDeadline(time.Now().Add(closeGrace))
			select {
			case <-c.readerDone:
			case <-time.After(closeGrace):
			}
		}
	}
	_ = c.ws.Close()
}

// kick runs when the queue overflows: a writer blocked on a client that
// does not read gets closeGrace to finish, then fails.
func (c *wsConn) kick() {
	c.nc.jam(closeGrace)
}

// exit runs as the reader ends and as the writer's last turn ends; the
// second one releases the connection.
func (c *wsConn) exit() {
	if c.exits.Add(1) == 2 {
		c.hub.close(c.ip, transportWS, c.q)
	}
}

// deliver implements sink: the shared killmail_update frame, followed by
// the kill_count_update of the system when the channel asked for it, in
// one queue item.
func (c *wsConn) deliver(ev *liveEvent, viaSystem bool) {
	it := outItem{wire: ev.wsUpdate(c.vsn, c.deflate), offset: ev.entry.Offset}
	if viaSystem {
		it.also = ev.wsCount(c.vsn, c.deflate)
	}
	it.size = len(it.wire) + len(it.also)
	c.q.push(it)
}
