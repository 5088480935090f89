package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// BenchmarkMatch measures matching one killmail against the inverted
// index holding 10,000 system and 50,000 character subscriptions (10,000
// subscribers with one system and five characters each). Target < 1 µs.
func BenchmarkMatch(b *testing.B) {
	kms := liveFixtures(b)
	r := rand.New(rand.NewPCG(1, 2))
	ix := newMatchIndex()
	var chars []int64
	for _, km := range kms {
		chars = append(chars, km.Characters()...)
	}
	for i := range 10000 {
		s := &subscriber{sink: funcSink(func(Event) {})}
		sys := []int64{30000000 + int64(i)}
		cs := make([]int64, 5)
		for j := range cs {
			if r.IntN(100) == 0 {
				cs[j] = chars[r.IntN(len(chars))] // some kills match by character
			} else {
				cs[j] = 90000000 + int64(i*5+j)
			}
		}
		ix.add(s, sys, cs)
	}
	for i, km := range kms {
		km.SystemID = 30000000 + int64(i*97%12000) // most systems subscribed, some not
	}
	var out []*subscriber
	matched := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var n int
		out, n = ix.match(kms[i%len(kms)], out[:0])
		matched += len(out) + n
	}
	b.ReportMetric(float64(matched)/float64(b.N), "matches/op")
}

// raiseFileLimit lifts RLIMIT_NOFILE (root may raise the hard limit) and
// returns the limit in force.
func raiseFileLimit(want uint64) uint64 {
	var rl syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	if rl.Cur >= want {
		return rl.Cur
	}
	nl := syscall.Rlimit{Cur: want, Max: max(want, rl.Max)}
	if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl) != nil {
		nl = syscall.Rlimit{Cur: rl.Max, Max: rl.Max}
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl)
	}
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// loopbackDialer dials from 127.0.0.<n>, spreading connections over
// source addresses so ephemeral ports last.
func loopbackDialer(n int) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, byte(1+n%200), byte(2+n/200%250))}}
}

// latencies collects commit → client read durations. Clients record
// what they read locally (recv) and hand it over once at the end, so the
// measurement adds no shared lock to the hot path.
type latencies struct {
	mu      sync.Mutex
	commits map[int64]time.Time
	recvs   [][]recv
}

type recv struct {
	id int64
	at time.Time
}

func (l *latencies) committed(id int64, at time.Time) {
	l.mu.Lock()
	l.commits[id] = at
	l.mu.Unlock()
}

func (l *latencies) done(rs []recv) {
	l.mu.Lock()
	l.recvs = append(l.recvs, rs)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B, expected int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var samples []time.Duration
	for _, rs := range l.recvs {
		for _, r := range rs {
			if c, ok := l.commits[r.id]; ok {
				samples = append(samples, max(r.at.Sub(c), 0))
			}
		}
	}
	slices.Sort(samples)
	if len(samples) == 0 {
		b.Fatal("no deliveries")
	}
	q := func(p float64) float64 { return float64(samples[int(p*float64(len(samples)-1))]) / 1e6 }
	b.ReportMetric(q(0.50), "p50_ms")
	b.ReportMetric(q(0.99), "p99_ms")
	b.ReportMetric(q(1), "max_ms")
	b.ReportMetric(float64(len(samples))/float64(expected), "delivered_ratio")
}

var killmailIDKey = []byte(`"killmail_id":`)

// scanIDs finds the killmail ids in a frame without decoding it (the
// clients share the two cores with the server).
func scanIDs(b []byte) []int64 {
	var ids []int64
	for {
		i := bytes.Index(b, killmailIDKey)
		if i < 0 {
			return ids
		}
		b = b[i+len(killmailIDKey):]
		j := 0
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if n, err := strconv.ParseInt(string(b[:j]), 10, 64); err == nil {
			ids = append(ids, n)
		}
	}
}

// publish appends rate killmails per second for d into one system and
// records their commit times. It returns how many it appended.
func publish(b *testing.B, e *liveEnv, lat *latencies, rate int, d time.Duration) int {
	kms := liveFixtures(b)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	n := int(d.Seconds() * float64(rate))
	for i := range n {
		<-tick.C
		km := killIn(kms[i%len(kms)], int64(5_000_000+i), 30000142, time.Now())
		_, err := e.st.Append(context.Background(), store.Batch{Killmails: []*store.Killmail{km}})
		require.NoError(b, err)
		lat.committed(km.KillmailID, time.Now())
	}
	return n
}

// BenchmarkDeliveryWebSocket measures commit → client read latency with
// 10,000 WebSocket clients (V2) on one system at 20 killmails/s for 10 s.
// Run with -benchtime=1x; figures in p50_ms/p99_ms.
func BenchmarkDeliveryWebSocket(b *testing.B) {
	clients := benchClients(10000)
	if limit := raiseFileLimit(3*uint64(clients) + 1000); limit < 2*uint64(clients)+500 {
		clients = int(limit-500) / 2
		b.Logf("file limit %d: %d clients", limit, clients)
	}
	e := newLiveEnv(b, "", "", func(c *Config) { c.Live.MaxConnPerIP = -1; c.Live.IdleTimeout = 10 * time.Minute })
	lat := &latencies{commits: make(map[int64]time.Time)}
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, clients)
	for i := range clients {
		d := websocket.Dialer{NetDialContext: loopbackDialer(i).DialContext, ReadBufferSize: 16 << 10, WriteBufferSize: 1024}
		c, res, err := d.Dial("ws://"+e.addr+"/socket/websocket?vsn=2.0.0", nil)
		require.NoError(b, err)
		res.Body.Close()
		conns[i] = c
		require.NoError(b, c.WriteJSON([]any{"1", "1", lobbyTopic, evJoin, map[string]any{"systems": []int{30000142}, "preload": false}}))
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rs []recv
			defer func() { lat.done(rs) }()
			// The clients share the cores with the server: each looks at
			// a frame's first bytes (event, first killmail id) and skips
			// the rest without copying it out.
			var head [256]byte
			for {
				_, rd, err := c.NextReader()
				if err != nil {
					return
				}
				n, _ := io.ReadFull(rd, head[:])
				if _, err := io.Copy(io.Discard, rd); err != nil {
					return
				}
				if bytes.Contains(head[:min(n, 64)], []byte(`"killmail_update"`)) {
					now := time.Now()
					for _, id := range scanIDs(head[:n]) {
						rs = append(rs, recv{id, now})
					}
				}
			}
		}()
	}
	require.Eventually(b, func() bool { return e.srv.hub.Stats().Subscriptions == clients }, time.Minute, 10*time.Millisecond)
	n := 0
	for b.Loop() {
		n += publish(b, e, lat, 20, 10*time.Second)
		time.Sleep(2 * time.Second)
	}
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	lat.report(b, n*clients)
}

// BenchmarkDeliverySSE measures commit → client read latency with 5,000
// SSE clients on one system at 20 killmails/s for 10 s (-benchtime=1x).
func BenchmarkDeliverySSE(b *testing.B) {
	clients := benchClients(5000)
	if limit := raiseFileLimit(3*uint64(clients) + 1000); limit < 2*uint64(clients)+500 {
		clients = int(limit-500) / 2
	}
	e := newLiveEnv(b, "", "", func(c *Config) { c.Live.MaxConnPerIP = -1; c.Live.MaxSSEConnections = -1 })
	lat := &latencies{commits: make(map[int64]time.Time)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range clients {
		tr := &http.Transport{DialContext: loopbackDialer(i).DialContext, ReadBufferSize: 16 << 10}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.httpURL("/api/v1/kills/stream?system_ids=30000142"), nil)
		res, err := (&http.Client{Transport: tr}).Do(req)
		require.NoError(b, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer res.Body.Close()
			var rs []recv
			defer func() { lat.done(rs) }()
			rd := bufio.NewReaderSize(res.Body, 8192)
			for {
				line, err := rd.ReadSlice('\n')
				if err != nil && err != bufio.ErrBufferFull {
					return
				}
				if bytes.HasPrefix(line, []byte("data: ")) {
					now := time.Now()
					for _, id := range scanIDs(line) {
						rs = append(rs, recv{id, now})
					}
				}
			}
		}()
	}
	require.Eventually(b, func() bool { return e.srv.hub.Stats().Subscriptions == clients }, time.Minute, 10*time.Millisecond)
	n := 0
	for b.Loop() {
		n += publish(b, e, lat, 20, 10*time.Second)
		time.Sleep(2 * time.Second)
	}
	cancel()
	wg.Wait()
	lat.report(b, n*clients)
}

// rawJoin opens a WebSocket by hand (no client library, no goroutine),
// joins the lobby and reads the reply, leaving an idle connection that
// costs the client side next to nothing.
func rawJoin(addr string, i int, systems []int) (net.Conn, error) {
	c, err := loopbackDialer(i).Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(c, "GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	rd := bufio.NewReader(c)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	payload, _ := json.Marshal([]any{"1", "1", lobbyTopic, evJoin, map[string]any{"systems": systems, "preload": false}})
	frame := []byte{0x81, 0x80 | 126, byte(len(payload) >> 8), byte(len(payload)), 0, 0, 0, 0}
	if _, err := c.Write(append(frame, payload...)); err != nil { // zero mask: payload as is
		c.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(rd, make([]byte, 2)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// BenchmarkIdleConnection measures the server's heap and goroutine-stack
// bytes per idle joined WebSocket (target < 20 KB), with 2,000 raw
// clients that hold no goroutine and no buffer of their own.
func BenchmarkIdleConnection(b *testing.B) {
	const n = 2000
	raiseFileLimit(3*n + 1000)
	e := newLiveEnv(b, "", "", func(c *Config) { c.Live.MaxConnPerIP = -1; c.Live.IdleTimeout = 10 * time.Minute })
	measure := func() (heap, stack uint64) {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse, ms.StackInuse
	}
	for b.Loop() {
		h0, s0 := measure()
		g0 := runtime.NumGoroutine()
		conns := make([]net.Conn, 0, n)
		for i := range n {
			c, err := rawJoin(e.addr, i, []int{30000142, 30000000 + i})
			require.NoError(b, err)
			conns = append(conns, c)
		}
		require.Eventually(b, func() bool { return e.srv.hub.Stats().Subscriptions == n }, time.Minute, 10*time.Millisecond)
		time.Sleep(200 * time.Millisecond)
		h1, s1 := measure()
		b.ReportMetric(float64(h1-h0)/n, "heap_B/conn")
		b.ReportMetric(float64(s1-s0)/n, "stack_B/conn")
		b.ReportMetric(float64(h1+s1-h0-s0)/n, "total_B/conn")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/conn")
		for _, c := range conns {
			c.Close()
		}
		require.Eventually(b, func() bool { return e.srv.hub.Stats().WebSocketConnections == 0 }, time.Minute, 10*time.Millisecond)
	}
}

// benchClients is the client count of a delivery benchmark, overridable
// with WK_BENCH_CLIENTS for quicker runs.
func benchClients(def int) int {
	if n, err := strconv.Atoi(os.Getenv("WK_BENCH_CLIENTS")); err == nil && n > 0 {
		return n
	}
	return def
}
