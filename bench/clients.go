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
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The client load: WebSocket and SSE clients that join systems over
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
	// Sub says which systems each client follows (connect).
	Sub subscription `json:"sub"`
	// Commits maps each published killmail id to its commit time (unix
	// ns); Expect is how many deliveries to wait for, at most WaitMs.
	Commits map[int64]int64 `json:"commits,omitempty"`
	Expect  uint64          `json:"expect,omitempty"`
	WaitMs  int64           `json:"wait_ms,omitempty"`
}

// loadReply answers a loadRequest.
type loadReply struct {
	Clients int `json:"clients"`
	Failed  int `json:"failed"`
	// Joined lists the indexes (see subscription.systems) of the clients
	// a connect opened.
	Joined     []int      `json:"joined,omitempty"`
	Deliveries uint64     `json:"deliveries"`
	Hist       *Histogram `json:"hist,omitempty"`
	Err        string     `json:"err,omitempty"`
	// CPUSeconds is the CPU time the client load has used so far.
	CPUSeconds float64 `json:"cpu_seconds"`
}

// ServeClientLoad runs the client load for a parent bench: it reads
// requests from r and answers each on w until "close" or the end of r,
// then closes its clients. `wanderer-kills bench --client-load` calls it.
//
// When the environment variable WK_BENCH_CLIENT_CPUPROFILE names a file,
// the client load writes its own CPU profile there (the parent's
// --cpuprofile covers only the server side).
func ServeClientLoad(ctx context.Context, r io.Reader, w io.Writer) error {
	RaiseFileLimit(1 << 20)
	if path := os.Getenv(clientProfileEnv); path != "" {
		stop, err := StartCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
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
		rep.CPUSeconds = CPUTime().Seconds()
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("bench: client load: %w", err)
		}
	}
}

// clientProfileEnv names the client load's CPU profile file.
const clientProfileEnv = "WK_BENCH_CLIENT_CPUPROFILE"

// StartCPUProfile profiles this process's CPU into path until stop: the
// client load's profile and the command's --cpuprofile.
func StartCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("bench: cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// clientLoad is the open clients of one process.
type clientLoad struct {
	mu      sync.Mutex
	clients []*loadClient
	// next is the index of the next client to open (only the request
	// loop uses it).
	next int
	// arrived counts killmail deliveries since the last collect.
	arrived atomic.Uint64
	// poll reads the WebSocket clients (nil until the first, or where
	// there is no epoll).
	poll     *pollSet
	pollOnce sync.Once
}

// pollSet returns the load's pollSet, started on first use; nil where
// there is none.
func (l *clientLoad) pollSet() *pollSet {
	l.pollOnce.Do(func() {
		if p, err := newPollSet(); err == nil {
			l.poll = p
		}
	})
	return l.poll
}

// loadClient is one connection and what it read.
type loadClient struct {
	mu    sync.Mutex
	recvs []arrival
	close func()
	done  chan struct{}
	load  *clientLoad
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

// connect opens clients (16 at a time) until req.Clients are open, each
// with the next index; a client that fails is not retried.
func (l *clientLoad) connect(ctx context.Context, req loadRequest) loadReply {
	l.mu.Lock()
	have := len(l.clients)
	l.mu.Unlock()
	todo := make(chan int)
	var (
		wg       sync.WaitGroup
		failed   atomic.Int64
		firstErr atomic.Value
		joined   []int
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
				joined = append(joined, i)
				l.mu.Unlock()
			}
		}()
	}
	for k := have; k < req.Clients && ctx.Err() == nil; k++ {
		todo <- l.next
		l.next++
	}
	close(todo)
	wg.Wait()
	l.mu.Lock()
	rep := loadReply{Clients: len(l.clients), Failed: int(failed.Load()), Joined: joined}
	l.mu.Unlock()
	if e, ok := firstErr.Load().(string); ok {
		rep.Err = e
	}
	return rep
}

func (l *clientLoad) dial(ctx context.Context, req loadRequest, i int) (*loadClient, error) {
	c := &loadClient{done: make(chan struct{}), load: l}
	var err error
	if req.Transport == transportSSE {
		err = c.dialSSE(ctx, req.Addr, i, req.Sub.systems(i))
	} else {
		err = c.dialWS(ctx, req.Addr, i, req.Sub.systems(i))
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
	if l.poll != nil {
		l.poll.close()
		l.poll, l.pollOnce = nil, sync.Once{}
	}
}
