package server

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWebSocketFrames: live frames are written by the hub's writer as raw
// shared bytes; gorilla clients with and without permessage-deflate read
// them (and the replies between them) over both serializers.
func TestWebSocketFrames(t *testing.T) {
	for _, deflate := range []bool{false, true} {
		for _, tc := range serializers[:2] {
			name := tc.name + map[bool]string{false: ", plain", true: ", deflate"}[deflate]
			t.Run(name, func(t *testing.T) {
				e := newLiveEnv(t, "", "")
				kms := liveFixtures(t)
				d := websocket.Dialer{EnableCompression: deflate}
				c, res, err := d.Dial("ws://"+e.addr+"/socket/websocket?"+url.Values{"vsn": {tc.vsn}}.Encode(), nil)
				require.NoError(t, err)
				res.Body.Close()
				t.Cleanup(func() { _ = c.Close() })
				assert.Equal(t, deflate, strings.Contains(res.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate"))
				ws := &wsClient{t: t, c: c, vsn: tc.vsn}
				status, _ := ws.call(lobbyTopic, evJoin, map[string]any{"systems": []int64{30000142}, "preload": false})
				require.Equal(t, "ok", status)

				now := time.Now()
				var want []int64
				for i := range 5 {
					id := int64(910000 + i)
					want = append(want, id)
					e.add(killIn(kms[i%len(kms)], id, 30000142, now))
				}
				var got []int64
				last := 0.0
				for range want {
					got = append(got, killIDsOf(t, ws.event("killmail_update"))...)
					// The count is the stored one when the tail sends it.
					count := ws.event("kill_count_update").object(t)["count"].(float64)
					assert.GreaterOrEqual(t, count, last)
					last = count
				}
				assert.Equal(t, want, got)
				assert.EqualValues(t, len(want), last)
				status, resp := ws.call(lobbyTopic, "get_status", map[string]any{})
				require.Equal(t, "ok", status)
				assert.Equal(t, []any{float64(30000142)}, resp["subscribed_systems"])
			})
		}
	}
}

// TestWebSocketPingsDuringLive: pongs (written by gorilla from the reader
// goroutine) never cut into the writer's raw frames.
func TestWebSocketPingsDuringLive(t *testing.T) {
	e := newLiveEnv(t, "", "")
	kms := liveFixtures(t)
	ws := dialWS(t, e.addr, "2.0.0")
	var pongs atomic.Int64
	ws.c.SetPongHandler(func(string) error { pongs.Add(1); return nil })
	status, _ := ws.call(lobbyTopic, evJoin, map[string]any{"systems": []int64{30000142}, "preload": false})
	require.Equal(t, "ok", status)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Microsecond):
			}
			if ws.c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)) != nil {
				return
			}
		}
	}()
	const n = 40
	now := time.Now()
	for i := range n {
		e.add(killIn(kms[i%len(kms)], int64(920000+i), 30000142, now))
	}
	var got []int64
	for len(got) < n {
		got = append(got, killIDsOf(t, ws.event("killmail_update"))...)
	}
	close(stop)
	wg.Wait()
	for i, id := range got {
		assert.EqualValues(t, 920000+i, id)
	}
	assert.Positive(t, pongs.Load())
}

// TestFrameEncoding: a frame's header for each length class, and a
// compressed frame that inflates back to the message.
func TestFrameEncoding(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte("k"), n)
		f := appendFrame(nil, payload, false)
		require.Equal(t, byte(0x81), f[0])
		var size uint64
		var head int
		switch f[1] {
		case 126:
			size, head = uint64(binary.BigEndian.Uint16(f[2:])), 4
		case 127:
			size, head = binary.BigEndian.Uint64(f[2:]), 10
		default:
			size, head = uint64(f[1]), 2
		}
		assert.EqualValues(t, n, size, "length %d", n)
		assert.Equal(t, payload, f[head:], "length %d", n)
	}

	msg := []byte(`["1",null,"killmails:lobby","killmail_update",{"system_id":30000142,"killmails":[]}]`)
	z := &frameDeflater{}
	for range 2 { // the deflater is reused
		f := z.appendFrame(nil, msg)
		require.Equal(t, byte(0xc1), f[0], "FIN, RSV1, text")
		require.Less(t, int(f[1]), 126)
		rd := flate.NewReader(io.MultiReader(bytes.NewReader(f[2:]), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
		out, err := io.ReadAll(rd)
		require.NoError(t, err)
		assert.Equal(t, msg, out)
	}
}

// TestSSEWire: an HTTP/1.1 stream is taken over from net/http and written
// as a chunked body by hand, with the headers the handler set; an
// HTTP/1.0 one goes through net/http (no chunks).
func TestSSEWire(t *testing.T) {
	e := newLiveEnv(t, "", "")
	for _, tc := range []struct {
		proto   string
		chunked bool
	}{{"HTTP/1.1", true}, {"HTTP/1.0", false}} {
		t.Run(tc.proto, func(t *testing.T) {
			c, err := net.Dial("tcp", e.addr)
			require.NoError(t, err)
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = fmt.Fprintf(c, "GET /api/v1/kills/stream?system_ids=30000142 %s\r\nHost: %s\r\n\r\n", tc.proto, e.addr)
			require.NoError(t, err)
			rd := bufio.NewReader(c)
			res, err := http.ReadResponse(rd, nil)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, res.StatusCode)
			assert.Equal(t, "text/event-stream; charset=utf-8", res.Header.Get("Content-Type"))
			assert.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
			assert.NotEmpty(t, res.Header.Get("X-Request-Id"))
			assert.Equal(t, tc.chunked, slices.Contains(res.TransferEncoding, "chunked"))
			line, err := bufio.NewReader(res.Body).ReadString('\n')
			require.NoError(t, err)
			assert.Equal(t, "retry: 2000\n", line)
		})
	}
}
