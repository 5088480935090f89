package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The client load: WebSocket and SSE clients that join a system over
// loopback, read what the server sends and note when each killmail
// arrives. It runs in a child process (ServeClientLoad on the child's
// standard input and output) so that its sockets, goroutines and memory
// are not counted as the server's, or in-process for tests. Requests and
// replies are JSON, one per line.

// Transports of the fan-out scenarios.
const (
	transportWS  = "ws"
	transportSSE = "sse"
)

// loadRequest is one instruction to the client load.
type loadRequest struct {
	// Op is "connect" (open clients until Clients are open), "collect"
	// (turn what arrived since the last collect into latencies) or
	// "close".
	Op        string `json:"op"`
	Addr      string `json:"addr,omitempty"`
	Transport string `json:"transport,omitempty"`
	Clients   int    `json:"clients,omitempty"`
	// System is the system every client joins.
	System int64 `json:"system,omitempty"`
	// Commits maps each published killmail id to its commit time (unix
	// ns); Expect is how many deliveries to wait for, at most WaitMs.
	Commits map[int64]int64 `json:"commits,omitempty"`
	Expect  uint64          `json:"expect,omitempty"`
	WaitMs  int64           `json:"wait_ms,omitempty"`
}

// loadReply answers a loadRequest.
type loadReply struct {
	Clients    int        `json:"clients"`
	Failed     int        `json:"failed"`
	Deliveries uint64     `json:"deliveries"`
	Hist       *Histogram `json:"hist,omitempty"`
	Err        string     `json:"err,omitempty"`
}

// ServeClientLoad runs the client load for a parent bench: it reads
// requests from r and answers each on w until "close" or the end of r,
// then closes its clients. `wanderer-kills bench --client-load` calls it.
func ServeClientLoad(ctx context.Context, r io.Reader, w io.Writer) error {
	RaiseFileLimit(1 << 20)
	l := &clientLoad{}
	defer l.closeAll()
	dec := json.NewDecoder(bufio.NewReader(r))
	enc := json.NewEncoder(w)
	for {
		var req loadRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("bench: client load: %w", err)
		}
		var rep loadReply
		switch req.Op {
		case "connect":
			rep = l.connect(ctx, req)
		case "collect":
			rep = l.collect(ctx, req)
		case "close":
			l.closeAll()
			return enc.Encode(loadReply{})
		default:
			rep.Err = "unknown op " + strconv.Quote(req.Op)
		}
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("bench: client load: %w", err)
		}
	}
}

// clientLoad is the open clients of one process.
type clientLoad struct {
	mu      sync.Mutex
	clients []*loadClient
	// arrived counts killmail deliveries since the last collect.
	arrived atomic.Uint64
}

// loadClient is one connection and what it read.
type loadClient struct {
	mu     sync.Mutex
	recvs  []arrival
	close  func()
	done   chan struct{}
	load   *clientLoad
	header [256]byte
}

// arrival is a killmail id and when its frame was read (unix ns).
type arrival struct{ id, at int64 }

func (c *loadClient) record(id int64) {
	at := time.Now().UnixNano()
	c.mu.Lock()
	c.recvs = append(c.recvs, arrival{id, at})
	c.mu.Unlock()
	c.load.arrived.Add(1)
}

func (c *loadClient) take() []arrival {
	c.mu.Lock()
	defer c.mu.Unlock()
	rs := c.recvs
	c.recvs = nil
	return rs
}

// connect opens clients (16 at a time) until req.Clients are open.
func (l *clientLoad) connect(ctx context.Context, req loadRequest) loadReply {
	l.mu.Lock()
	have := len(l.clients)
	l.mu.Unlock()
	todo := make(chan int)
	var (
		wg       sync.WaitGroup
		failed   atomic.Int64
		firstErr atomic.Value
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range todo {
				c, err := l.dial(ctx, req, i)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				l.mu.Lock()
				l.clients = append(l.clients, c)
				l.mu.Unlock()
			}
		}()
	}
	for i := have; i < req.Clients && ctx.Err() == nil; i++ {
		todo <- i
	}
	close(todo)
	wg.Wait()
	l.mu.Lock()
	rep := loadReply{Clients: len(l.clients), Failed: int(failed.Load())}
	l.mu.Unlock()
	if e, ok := firstErr.Load().(string); ok {
		rep.Err = e
	}
	return rep
}

// systemsOf is what client i joins: the published system and one of its
// own, so the server's index holds many systems.
func systemsOf(hot int64, i int) []int64 {
	own := SystemID(uint64(100 + i%7000))
	if own == hot {
		own = SystemID(99)
	}
	return []int64{hot, own}
}

func (l *clientLoad) dial(ctx context.Context, req loadRequest, i int) (*loadClient, error) {
	c := &loadClient{done: make(chan struct{}), load: l}
	var err error
	if req.Transport == transportSSE {
		err = c.dialSSE(ctx, req.Addr, i, systemsOf(req.System, i))
	} else {
		err = c.dialWS(ctx, req.Addr, i, systemsOf(req.System, i))
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// loopbackDialer dials from 127.0.x.y, spreading connections over source
// addresses so ephemeral ports last.
func loopbackDialer(i int) *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+i/200%250), byte(2+i%200))}}
}

var (
	updateEvent = []byte(`"killmail_update"`)
	replyEvent  = []byte(`"phx_reply"`)
	okStatus    = []byte(`"status":"ok"`)
	killmailKey = []byte(`"killmail_id":`)
	dataPrefix  = []byte("data: ")
)

// firstID is the first killmail id in b, found without decoding it.
func firstID(b []byte) (int64, bool) {
	i := bytes.Index(b, killmailKey)
	if i < 0 {
		return 0, false
	}
	b = b[i+len(killmailKey):]
	j := 0
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	n, err := strconv.ParseInt(string(b[:j]), 10, 64)
	return n, err == nil
}

// dialWS opens a Phoenix V2 socket, joins the lobby with systems and
// waits for the join reply, then reads in its own goroutine.
func (c *loadClient) dialWS(ctx context.Context, addr string, i int, systems []int64) error {
	d := websocket.Dialer{NetDialContext: loopbackDialer(i).DialContext, HandshakeTimeout: 30 * time.Second,
		ReadBufferSize: 4096, WriteBufferSize: 1024}
	conn, res, err := d.DialContext(ctx, "ws://"+addr+"/socket/websocket?vsn=2.0.0", nil)
	if err != nil {
		return fmt.Errorf("bench: websocket dial: %w", err)
	}
	_ = res.Body.Close()
	join := []any{"1", "1", "killmails:lobby", "phx_join", map[string]any{"systems": systems, "preload": false}}
	if err := conn.WriteJSON(join); err != nil {
		_ = conn.Close()
		return fmt.Errorf("bench: websocket join: %w", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			_ = conn.Close()
			return fmt.Errorf("bench: websocket join reply: %w", err)
		}
		if bytes.Contains(msg, replyEvent) {
			if !bytes.Contains(msg, okStatus) {
				_ = conn.Close()
				return fmt.Errorf("bench: websocket join refused: %.200s", msg)
			}
			break
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	c.close = func() { _ = conn.Close() }
	go c.readWS(conn)
	return nil
}

func (c *loadClient) readWS(conn *websocket.Conn) {
	defer close(c.done)
	for {
		_, rd, err := conn.NextReader()
		if err != nil {
			return
		}
		n, _ := io.ReadFull(rd, c.header[:])
		if _, err := io.Copy(io.Discard, rd); err != nil {
			return
		}
		head := c.header[:n]
		if bytes.Contains(head[:min(n, 96)], updateEvent) {
			if id, ok := firstID(head); ok {
				c.record(id)
			}
		}
	}
}

// dialSSE opens the standard stream for systems and waits for its first
// line, then reads in its own goroutine.
func (c *loadClient) dialSSE(ctx context.Context, addr string, i int, systems []int64) error {
	tr := &http.Transport{DialContext: loopbackDialer(i).DialContext, DisableCompression: true,
		ResponseHeaderTimeout: 30 * time.Second}
	ids := make([]byte, 0, 32)
	for k, s := range systems {
		if k > 0 {
			ids = append(ids, ',')
		}
		ids = strconv.AppendInt(ids, s, 10)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, "http://"+addr+"/api/v1/kills/stream?system_ids="+string(ids), nil)
	if err != nil {
		cancel()
		return err
	}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		cancel()
		return fmt.Errorf("bench: sse: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 200))
		_ = res.Body.Close()
		cancel()
		return fmt.Errorf("bench: sse: status %d: %s", res.StatusCode, body)
	}
	rd := bufio.NewReaderSize(res.Body, 4096)
	if _, err := rd.ReadSlice('\n'); err != nil {
		_ = res.Body.Close()
		cancel()
		return fmt.Errorf("bench: sse: first line: %w", err)
	}
	c.close = func() {
		cancel()
		_ = res.Body.Close()
		tr.CloseIdleConnections()
	}
	go c.readSSE(rd)
	return nil
}

// readSSE notes each data line's killmail when the line has been read
// whole.
func (c *loadClient) readSSE(rd *bufio.Reader) {
	defer close(c.done)
	lineStart := true
	var pending int64
	for {
		line, err := rd.ReadSlice('\n')
		if lineStart && bytes.HasPrefix(line, dataPrefix) {
			pending, _ = firstID(line)
		}
		switch {
		case err == nil:
			if pending > 0 {
				c.record(pending)
				pending = 0
			}
			lineStart = true
		case errors.Is(err, bufio.ErrBufferFull):
			lineStart = false
		default:
			return
		}
	}
}

// collect waits for the expected deliveries (or WaitMs), then turns the
// arrivals of every client into latencies from the commits.
func (l *clientLoad) collect(ctx context.Context, req loadRequest) loadReply {
	deadline := time.Now().Add(time.Duration(req.WaitMs) * time.Millisecond)
	for l.arrived.Load() < req.Expect && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	l.mu.Lock()
	clients := append([]*loadClient(nil), l.clients...)
	l.mu.Unlock()
	rep := loadReply{Clients: len(clients), Hist: &Histogram{}}
	for _, c := range clients {
		for _, a := range c.take() {
			if at, ok := req.Commits[a.id]; ok {
				rep.Hist.Add(time.Duration(a.at - at))
				rep.Deliveries++
			}
		}
	}
	l.arrived.Store(0)
	return rep
}

// closeAll closes every client and waits for their readers.
func (l *clientLoad) closeAll() {
	l.mu.Lock()
	clients := l.clients
	l.clients = nil
	l.mu.Unlock()
	for _, c := range clients {
		c.close()
	}
	for _, c := range clients {
		<-c.done
	}
}
