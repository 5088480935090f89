package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// The fan-out's WebSocket clients speak the protocol by hand: they share
// the two cores with the server, and a general client (gorilla's) costs
// several read calls and a copy per frame. A client here reads through a
// buffer that holds most frames whole, looks at a frame's first bytes
// only (event name, first killmail id) and skips the rest in the buffer.

// wsReadBuffer is a client's read buffer: a killmail_update frame (median
// 2.5 KB, mean 4.5 KB) and the kill_count_update behind it arrive in one
// read.
const wsReadBuffer = 16 << 10

// wsHeadBytes is how much of a frame a client looks at.
const wsHeadBytes = 256

var errWSClosed = errors.New("bench: websocket closed by the server")

// dialWS opens a Phoenix V2 socket, joins the lobby with systems and
// waits for the join reply, then reads in its own goroutine.
func (c *loadClient) dialWS(ctx context.Context, addr string, i int, systems []int64) error {
	conn, err := loopbackDialer(i).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("bench: websocket dial: %w", err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	rd := bufio.NewReaderSize(conn, wsReadBuffer)
	if err := wsHandshake(conn, rd, addr); err != nil {
		_ = conn.Close()
		return err
	}
	join, _ := json.Marshal([]any{"1", "1", "killmails:lobby", "phx_join", map[string]any{"systems": systems, "preload": false}})
	if _, err := conn.Write(maskedTextFrame(join)); err != nil {
		_ = conn.Close()
		return fmt.Errorf("bench: websocket join: %w", err)
	}
	var buf [wsHeadBytes]byte
	for {
		op, head, err := nextWSFrame(rd, buf[:])
		if err == nil && op == 0x8 {
			err = errWSClosed
		}
		if err != nil {
			_ = conn.Close()
			return fmt.Errorf("bench: websocket join reply: %w", err)
		}
		if bytes.Contains(head, replyEvent) {
			if !bytes.Contains(head, okStatus) {
				_ = conn.Close()
				return fmt.Errorf("bench: websocket join refused: %.200s", head)
			}
			break
		}
	}
	_ = conn.SetDeadline(time.Time{})
	buffered, _ := rd.Peek(rd.Buffered())
	if poll := c.load.pollSet(); poll != nil {
		return poll.add(c, conn, buffered, &frameScanner{})
	}
	c.close = func() { _ = conn.Close() }
	go c.readConn(conn, buffered, &frameScanner{})
	return nil
}

// wsHandshake sends the upgrade request and reads the 101 response.
func wsHandshake(conn net.Conn, rd *bufio.Reader, addr string) error {
	var key [16]byte
	_, _ = rand.Read(key[:])
	req := "GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key[:]) + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := conn.Write([]byte(req)); err != nil {
		return fmt.Errorf("bench: websocket handshake: %w", err)
	}
	status, err := rd.ReadString('\n')
	if err != nil {
		return fmt.Errorf("bench: websocket handshake: %w", err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101") {
		return fmt.Errorf("bench: websocket handshake: %s", strings.TrimSpace(status))
	}
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return fmt.Errorf("bench: websocket handshake: %w", err)
		}
		if line == "\r\n" {
			return nil
		}
	}
}

// maskedTextFrame is a client text frame (clients must mask).
func maskedTextFrame(payload []byte) []byte {
	f := []byte{0x81}
	switch n := len(payload); {
	case n <= 125:
		f = append(f, 0x80|byte(n))
	case n <= 0xffff:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	f = append(f, key[:]...)
	for i, b := range payload {
		f = append(f, b^key[i%4])
	}
	return f
}

// nextWSFrame reads one server frame (unmasked) and returns its opcode
// and the start of its payload, copied into dst.
func nextWSFrame(rd *bufio.Reader, dst []byte) (op byte, head []byte, err error) {
	h, err := rd.Peek(2)
	if err != nil {
		return 0, nil, err
	}
	op, size, hl := h[0]&0x0f, uint64(h[1]&0x7f), 2
	switch size {
	case 126:
		hl = 4
	case 127:
		hl = 10
	}
	if h, err = rd.Peek(hl); err != nil {
		return 0, nil, err
	}
	switch hl {
	case 4:
		size = uint64(binary.BigEndian.Uint16(h[2:]))
	case 10:
		size = binary.BigEndian.Uint64(h[2:])
	}
	_, _ = rd.Discard(hl)
	if size > 1<<30 {
		return 0, nil, fmt.Errorf("bench: websocket frame of %d bytes", size)
	}
	n := int(size)
	head, err = rd.Peek(min(n, len(dst)))
	if err != nil {
		return 0, nil, err
	}
	// Copy the head out before skipping: Discard may refill the buffer.
	head = dst[:copy(dst, head)]
	if _, err := rd.Discard(n); err != nil {
		return 0, nil, err
	}
	return op, head, nil
}
