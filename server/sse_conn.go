package server

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"
)

// sseConn is an SSE stream's connection taken over from net/http (HTTP/1.1
// only): the stream writes its own chunked body, each batch of events one
// chunk with one writev, instead of two or three writes per event through
// net/http's buffers. The wire is the same: status line, headers, chunks.
type sseConn struct {
	conn     net.Conn
	deadline time.Time
	head     []byte
	bufs     net.Buffers
	watched  chan struct{}
}

// hijackSSE takes the connection of an HTTP/1.1 stream over and writes the
// response head (200, w's headers, chunked). It goes under the
// middleware's recorder, so that the request still counts as a 200 stream
// in the HTTP metrics. ok is false when the connection cannot be taken
// (HTTP/2, HTTP/1.0): the stream then goes through w as before. When the
// client's side of the connection ends, cancel runs.
func hijackSSE(w http.ResponseWriter, r *http.Request, cancel context.CancelFunc) (*sseConn, bool) {
	if r.ProtoMajor != 1 || r.ProtoMinor < 1 {
		return nil, false
	}
	inner := w
	for {
		u, ok := inner.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			break
		}
		inner = u.Unwrap()
	}
	hj, ok := inner.(http.Hijacker)
	if !ok {
		return nil, false
	}
	nc, _, err := hj.Hijack()
	if err != nil {
		return nil, false
	}
	_ = nc.SetDeadline(time.Time{})
	head := append([]byte(nil), "HTTP/1.1 200 OK\r\n"...)
	hdr := w.Header().Clone()
	hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	hdr.Set("Transfer-Encoding", "chunked")
	_ = hdr.Write((*appendWriter)(&head)) // appending does not fail
	c := &sseConn{conn: nc, head: append(head, "\r\n"...), watched: make(chan struct{})}
	go c.watch(cancel)
	return c, true
}

// appendWriter appends what is written to a byte slice.
type appendWriter []byte

func (a *appendWriter) Write(p []byte) (int, error) {
	*a = append(*a, p...)
	return len(p), nil
}

// watch reads the client's side until it ends (a stream client sends
// nothing), then cancels: the stream's context ends with the client, as
// net/http's would.
func (c *sseConn) watch(cancel context.CancelFunc) {
	defer close(c.watched)
	defer cancel()
	var buf [64]byte
	for {
		if _, err := c.conn.Read(buf[:]); err != nil {
			return
		}
	}
}

// write sends events as one chunk (after the response head, the first
// time), giving the write between 3/4 of timeout and timeout (moving the
// deadline costs a timer update, so it moves only when less than 3/4 is
// left).
func (c *sseConn) write(events [][]byte, timeout time.Duration) error {
	n := 0
	for _, b := range events {
		n += len(b)
	}
	if n == 0 {
		return nil
	}
	head := c.head
	head = strconv.AppendInt(head, int64(n), 16)
	head = append(head, "\r\n"...)
	bufs := append(c.bufs[:0], head)
	bufs = append(bufs, events...)
	bufs = append(bufs, crlf)
	if now := time.Now(); c.deadline.Sub(now) < timeout-timeout/4 {
		c.deadline = now.Add(timeout)
		_ = c.conn.SetWriteDeadline(c.deadline)
	}
	pending := bufs
	_, err := pending.WriteTo(c.conn)
	clear(bufs)
	c.bufs = bufs[:0]
	if cap(c.bufs) > 64 {
		c.bufs = nil
	}
	c.head = head[:0]
	return err
}

var crlf = []byte("\r\n")

// jam shortens the deadline of a write in progress (the client stopped
// reading and the queue overflowed).
func (c *sseConn) jam(d time.Duration) {
	_ = c.conn.SetWriteDeadline(time.Now().Add(d))
}

// end finishes the chunked body (briefly: the client may be gone), closes
// the connection and waits for the watcher.
func (c *sseConn) end() {
	_ = c.conn.SetWriteDeadline(time.Now().Add(closeGrace))
	if len(c.head) == 0 {
		_, _ = c.conn.Write([]byte("0\r\n\r\n"))
	}
	_ = c.conn.Close()
	<-c.watched
}
