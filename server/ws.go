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
// protocol. It has two goroutines: readLoop (owns ch) and writeLoop (owns
// lastOffset and spare). The hub's tail reaches it only through q.
type wsConn struct {
	hub         *Hub
	ws          *websocket.Conn
	vsn         int
	ip          string
	userID      string
	connectedAt string
	q           *outQueue

	ch *lobbyChannel // reader-owned

	lastOffset uint64    // writer-owned
	spare      []outItem // writer-owned

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
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		// The upgrader has answered the request.
		h.close(c.ip, transportWS, c.q)
		return
	}
	c.ws = ws
	c.userID = userID(r)
	c.connectedAt = nowStamp()
	c.q.onOverflow = c.kick
	ws.SetReadLimit(h.cfg.MaxFrameBytes)
	go c.readLoop()
	go c.writeLoop()
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

// writeLoop drains the queue to the socket until the queue closes.
func (c *wsConn) writeLoop() {
	defer c.exit()
	for range c.q.wake {
		batch, closing := c.q.take(c.spare)
		if err := c.writeBatch(batch); err != nil {
			c.spare = recycle(batch)
			c.abort(err)
			return
		}
		c.spare = recycle(batch)
		if closing != 0 {
			c.finish(closing)
			return
		}
	}
}

func (c *wsConn) writeBatch(batch []outItem) error {
	if len(batch) == 0 {
		return nil
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.hub.cfg.WriteTimeout))
	sent := 0
	for i := range batch {
		it := &batch[i]
		if c.q.abandoned() {
			return errAbandoned
		}
		if it.task != nil {
			if err := it.task(); err != nil {
				return err
			}
			continue
		}
		if it.offset != 0 && it.offset <= c.lastOffset {
			continue
		}
		var err error
		if it.pm != nil {
			err = c.ws.WritePreparedMessage(it.pm)
		} else {
			err = c.ws.WriteMessage(websocket.TextMessage, it.data)
		}
		if err != nil {
			return err
		}
		if it.offset != 0 {
			c.lastOffset = it.offset
		}
		sent++
	}
	c.hub.met.sentWS.Add(float64(sent))
	return nil
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
	_ = c.ws.NetConn().SetWriteDeadline(time.Now().Add(closeGrace))
}

// exit runs as each goroutine ends; the second one releases the
// connection.
func (c *wsConn) exit() {
	if c.exits.Add(1) == 2 {
		c.hub.close(c.ip, transportWS, c.q)
	}
}

// deliver implements sink: the shared killmail_update frame, and the
// kill_count_update of the system when the channel asked for it.
func (c *wsConn) deliver(ev *liveEvent, viaSystem bool) {
	pm, n := ev.wsUpdate(c.vsn)
	if c.q.push(outItem{pm: pm, size: n, offset: ev.entry.Offset}) {
		return
	}
	if viaSystem {
		pm, n := ev.wsCount(c.vsn)
		c.q.push(outItem{pm: pm, size: n})
	}
}
