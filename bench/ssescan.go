package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The fan-out's SSE clients, like its WebSocket ones, speak HTTP by hand:
// one GET, then the chunked body is scanned as it arrives, looking at the
// start of each line only.

// sseScanner follows a chunked SSE body fed to it in pieces and reports
// each data line's first killmail id when the line has been fed whole.
type sseScanner struct {
	state int // sseSize, sseData or sseEnd
	size  int // chunk size being parsed (sseSize) or bytes left (sseData)
	// ext: past the size digits of the size line (an extension, CR).
	ext    bool
	head   [wsHeadBytes]byte
	hn     int
	closed bool
}

// Chunk parsing states: the size line, the data, the CRLF after it.
const (
	sseSize = iota
	sseData
	sseEnd
)

// feed consumes p and calls found for each data line completed in it.
func (s *sseScanner) feed(p []byte, found func(id int64)) {
	for len(p) > 0 && !s.closed {
		switch s.state {
		case sseSize:
			i := bytes.IndexByte(p, '\n')
			line := p
			if i >= 0 {
				line = p[:i]
			}
			for _, b := range line {
				d := hexDigit(b)
				if d < 0 {
					s.ext = true
				}
				if !s.ext {
					s.size = s.size<<4 | d
				}
			}
			if i < 0 {
				return
			}
			p, s.ext = p[i+1:], false
			if s.size == 0 {
				s.closed = true
				return
			}
			s.state = sseData
		case sseData:
			n := min(s.size, len(p))
			s.lines(p[:n], found)
			p, s.size = p[n:], s.size-n
			if s.size == 0 {
				s.state = sseEnd
			}
		case sseEnd:
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				return
			}
			p, s.state = p[i+1:], sseSize
		}
	}
}

// ended reports whether the body (or the connection) ended.
func (s *sseScanner) ended() bool { return s.closed }

func hexDigit(b byte) int {
	switch {
	case b >= '0' && b <= '9':
		return int(b - '0')
	case b >= 'a' && b <= 'f':
		return int(b-'a') + 10
	case b >= 'A' && b <= 'F':
		return int(b-'A') + 10
	}
	return -1
}

// lines follows the event stream's lines through body bytes.
func (s *sseScanner) lines(p []byte, found func(int64)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		seg := p
		if i >= 0 {
			seg = p[:i]
		}
		if s.hn < len(s.head) {
			s.hn += copy(s.head[s.hn:], seg)
		}
		if i < 0 {
			return
		}
		if line := s.head[:s.hn]; bytes.HasPrefix(line, dataPrefix) {
			if id, ok := firstID(line); ok {
				found(id)
			}
		}
		s.hn, p = 0, p[i+1:]
	}
}

// dialSSE opens the standard stream for systems and reads its response
// head, then reads the body in the load's pollSet (or its own goroutine).
func (c *loadClient) dialSSE(ctx context.Context, addr string, i int, systems []int64) error {
	conn, err := loopbackDialer(i).DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("bench: sse dial: %w", err)
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	ids := make([]string, len(systems))
	for k, s := range systems {
		ids[k] = strconv.FormatInt(s, 10)
	}
	req := "GET /api/v1/kills/stream?system_ids=" + strings.Join(ids, ",") + " HTTP/1.1\r\nHost: " + addr +
		"\r\nAccept: text/event-stream\r\n\r\n"
	rd := bufio.NewReaderSize(conn, wsReadBuffer)
	if _, err = conn.Write([]byte(req)); err == nil {
		err = sseHead(rd)
	}
	if err != nil {
		_ = conn.Close()
		return err
	}
	_ = conn.SetDeadline(time.Time{})
	buffered, _ := rd.Peek(rd.Buffered())
	if poll := c.load.pollSet(); poll != nil {
		return poll.add(c, conn, buffered, &sseScanner{})
	}
	c.close = func() { _ = conn.Close() }
	go c.readConn(conn, buffered, &sseScanner{})
	return nil
}

// sseHead reads the response head of a stream: 200, chunked.
func sseHead(rd *bufio.Reader) error {
	status, err := rd.ReadString('\n')
	if err != nil {
		return fmt.Errorf("bench: sse: %w", err)
	}
	if !strings.HasPrefix(status, "HTTP/1.1 200") {
		return fmt.Errorf("bench: sse: %s", strings.TrimSpace(status))
	}
	chunked := false
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return fmt.Errorf("bench: sse: %w", err)
		}
		if line == "\r\n" {
			break
		}
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Transfer-Encoding") &&
			strings.Contains(strings.ToLower(v), "chunked") {
			chunked = true
		}
	}
	if !chunked {
		return fmt.Errorf("bench: sse: response not chunked")
	}
	return nil
}

// connScanner is what follows a client's stream: a frameScanner or an
// sseScanner.
type connScanner interface {
	feed(p []byte, found func(id int64))
	ended() bool
}

// readConn reads a client's socket in its own goroutine (where there is
// no pollSet).
func (c *loadClient) readConn(conn net.Conn, buffered []byte, scan connScanner) {
	defer close(c.done)
	scan.feed(buffered, c.record)
	buf := make([]byte, wsReadBuffer)
	for !scan.ended() {
		n, err := conn.Read(buf)
		scan.feed(buf[:n], c.record)
		if err != nil {
			return
		}
	}
}
