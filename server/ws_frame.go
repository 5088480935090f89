package server

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"net"
	"net/http"
	"sync"
	"time"
)

// Raw WebSocket frames. Server-to-client frames are not masked, so a
// frame's bytes (header and payload) are the same for every connection:
// the tail encodes each live message once per serializer and compression
// and every matching connection's writer sends those very bytes, a whole
// batch of them with one writev.
//
// gorilla/websocket still runs the handshake, reads, and writes what the
// writer's tasks send (preloads, catch-ups) and control frames (close,
// pong). All of those, and the writer's raw batches, go through one
// wsNetConn whose lock keeps frames whole on the wire.

// wsNetConn is the connection under a WebSocket. Every write holds mu:
// gorilla's (through Write) and the writer's raw batches (writeRaw).
type wsNetConn struct {
	net.Conn
	mu sync.Mutex
	// upgraded is set by the first write (the handshake response);
	// deflate records whether that response agreed on permessage-deflate.
	upgraded bool
	deflate  bool
	// deadline is the write deadline in force (guarded by mu).
	deadline time.Time
}

// Write writes p whole, under the connection's write lock.
func (c *wsNetConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.upgraded {
		c.upgraded = true
		c.deflate = bytes.Contains(p, []byte("\r\nSec-WebSocket-Extensions: permessage-deflate"))
	}
	return c.Conn.Write(p)
}

// SetWriteDeadline waits for a write in progress, so that a control
// frame's deadline does not cut a batch short.
func (c *wsNetConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetWriteDeadline(t)
}

// writeRaw writes bufs (whole frames) with one writev, under the write
// lock, giving it between 3/4 of timeout and timeout. (Moving the
// deadline costs a timer update: it moves only when less than 3/4 of
// timeout is left.) bufs is consumed.
func (c *wsNetConn) writeRaw(bufs *net.Buffers, timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := time.Now(); c.deadline.Sub(now) < timeout-timeout/4 {
		c.deadline = now.Add(timeout)
		_ = c.Conn.SetWriteDeadline(c.deadline)
	}
	if len(*bufs) == 1 {
		_, err := c.Conn.Write((*bufs)[0])
		return err
	}
	_, err := bufs.WriteTo(c.Conn)
	return err
}

// jam shortens the deadline of a write in progress without waiting for
// it: the writer of a peer that stopped reading fails soon after. (The
// writer's next batch may move it again, as it would have before.)
func (c *wsNetConn) jam(d time.Duration) {
	_ = c.Conn.SetWriteDeadline(time.Now().Add(d))
}

// hijackTap hands gorilla's Upgrader the connection wrapped in a
// wsNetConn.
type hijackTap struct {
	http.ResponseWriter
	conn *wsNetConn
}

// Hijack takes the connection over and wraps it.
func (h *hijackTap) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &wsNetConn{Conn: nc}
	return h.conn, brw, nil
}

// WebSocket frame header bits (RFC 6455 §5.2, RFC 7692 §6).
const (
	wsFinText = 0x81
	wsRSV1    = 0x40
)

// appendFrame appends an unmasked final text frame carrying payload;
// compressed sets RSV1 (payload is then a permessage-deflate message).
func appendFrame(dst []byte, payload []byte, compressed bool) []byte {
	b0 := byte(wsFinText)
	if compressed {
		b0 |= wsRSV1
	}
	n := len(payload)
	switch {
	case n <= 125:
		dst = append(dst, b0, byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// textFrame is payload as an uncompressed text frame (allowed on a
// permessage-deflate connection too: RSV1 says which messages are
// compressed).
func textFrame(payload []byte) []byte {
	return appendFrame(make([]byte, 0, len(payload)+10), payload, false)
}

// deflateTail ends every sync-flushed DEFLATE stream; permessage-deflate
// leaves it out (RFC 7692 §7.2.1).
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// frameDeflater compresses messages for permessage-deflate without
// context takeover (what gorilla negotiates), at gorilla's default level.
// Not safe for concurrent use: the hub's tail owns one.
type frameDeflater struct {
	buf bytes.Buffer
	fw  *flate.Writer
}

// appendFrame appends payload compressed, as one frame with RSV1 set.
func (z *frameDeflater) appendFrame(dst, payload []byte) []byte {
	z.buf.Reset()
	if z.fw == nil {
		z.fw, _ = flate.NewWriter(&z.buf, flate.BestSpeed) // valid level: no error
	} else {
		z.fw.Reset(&z.buf)
	}
	_, _ = z.fw.Write(payload) // a bytes.Buffer does not fail
	_ = z.fw.Flush()
	out := bytes.TrimSuffix(z.buf.Bytes(), deflateTail)
	return appendFrame(dst, out, true)
}
