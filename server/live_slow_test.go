package server

import (
	"encoding/json"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// dialTinyWindow dials a WebSocket whose socket receive buffer is tiny,
// so that a client that stops reading backs up into the server quickly.
func dialTinyWindow(t testing.TB, addr string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{NetDialContext: (&net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}).DialContext}
	c, res, err := d.Dial("ws://"+addr+"/socket/websocket?vsn=2.0.0", nil)
	require.NoError(t, err)
	res.Body.Close()
	return c
}

// TestSlowConsumer: one client that never reads does not hold back 1,000
// others (200 under -race); it is disconnected as a slow consumer; after
// everyone leaves, goroutines and heap return to their baseline.
func TestSlowConsumer(t *testing.T) {
	readers, kills, chunk := 1000, 200, 10
	if raceEnabled {
		readers = 200
	}
	e := newLiveEnv(t, "", "", func(c *Config) {
		c.Live.MaxConnPerIP = -1
		c.Live.QueueBytes = 64 << 10
		c.Live.WriteTimeout = 3 * time.Second
	})
	// Killmails of at most 3 KB for everyone, so that a chunk fits a fast
	// reader's 64 KiB budget however the writers are scheduled; and the
	// largest one, which only the slow client asks for, to outgrow the
	// socket buffers (several MB on loopback) behind it.
	var fixtures []*store.Killmail
	var big *store.Killmail
	bigSize := 0
	for _, km := range liveFixtures(t) {
		b, _ := json.Marshal(km)
		if len(b) <= 3000 {
			fixtures = append(fixtures, km)
		}
		if len(b) > bigSize {
			big, bigSize = km, len(b)
		}
	}
	runtime.GC()
	baseG := runtime.NumGoroutine()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	join := map[string]any{"systems": []int{30000142}, "preload": false}
	slow := dialTinyWindow(t, e.addr)
	require.NoError(t, slow.WriteJSON([]any{"1", "1", lobbyTopic, evJoin,
		map[string]any{"systems": []int{30000142, 30000144}, "preload": false}}))

	counts := make([]atomic.Int64, readers)
	conns := make([]*websocket.Conn, readers)
	var wg sync.WaitGroup
	for i := range readers {
		c, res, err := websocket.DefaultDialer.Dial("ws://"+e.addr+"/socket/websocket?vsn=2.0.0", nil)
		require.NoError(t, err)
		res.Body.Close()
		conns[i] = c
		require.NoError(t, c.WriteJSON([]any{"1", "1", lobbyTopic, evJoin, join}))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, b, err := c.ReadMessage()
				if err != nil {
					if counts[i].Load() < int64(kills) {
						t.Logf("reader %d ended after %d kills: %v", i, counts[i].Load(), err)
					}
					return
				}
				if len(b) > 40 && string(b[:40]) == `[null,null,"killmails:lobby","killmail_u` {
					counts[i].Add(1)
				}
			}
		}()
	}
	require.Eventually(t, func() bool { return e.srv.hub.Stats().Subscriptions == readers+1 }, 30*time.Second, 5*time.Millisecond)

	minCount := func() int64 {
		m := int64(1 << 62)
		for i := range counts {
			m = min(m, counts[i].Load())
		}
		return m
	}
	now := time.Now()
	for n := 0; n < kills; n += chunk {
		var batch []*store.Killmail
		for i := n; i < n+chunk; i++ {
			batch = append(batch, killIn(fixtures[i%len(fixtures)], int64(990000+i), 30000142, now),
				killIn(big, int64(1990000+i), 30000144, now))
		}
		e.add(batch...)
		want := int64(n + chunk)
		require.Eventually(t, func() bool { return minCount() >= want }, 30*time.Second, time.Millisecond,
			"every fast reader gets kill %d", want)
	}
	slowCounter := e.srv.hub.met.slow.WithLabelValues(transportWS)
	require.Eventually(t, func() bool { return counterValue(slowCounter) == 1 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, readers, e.srv.hub.Stats().WebSocketConnections, "only the slow one left")

	// The slow client finds the end of its stream once it reads.
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	var err error
	for err == nil {
		_, _, err = slow.ReadMessage()
	}
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "closed, not just silent: %v", err)
	slow.Close()

	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	require.Eventually(t, func() bool { return e.srv.hub.Stats().WebSocketConnections == 0 }, 10*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return runtime.NumGoroutine() <= baseG+2 }, 10*time.Second, 10*time.Millisecond,
		"goroutines back to baseline %d", baseG)
	// The store keeps the newest records in memory: that is not the
	// connections' memory.
	var after runtime.MemStats
	kept := func() uint64 { return e.st.Stats().RecentBytes }
	require.Eventually(t, func() bool {
		runtime.GC()
		runtime.ReadMemStats(&after)
		return after.HeapInuse < before.HeapInuse+kept()+16<<20
	}, 10*time.Second, 50*time.Millisecond, "heap back near baseline")
	t.Logf("heap in use: before %d, after %d, of which recent records %d", before.HeapInuse, after.HeapInuse, kept())
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
