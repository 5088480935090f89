package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// encodeBatch encodes killmails as a JSON array of ESI bodies with their
// killmail_hash and zkb block (a shape POST /api/v1/killmails takes),
// each zkb.labels stamped with the send time.
func encodeBatch(batch []*store.Killmail, sent time.Time) ([]byte, error) {
	stamp := SentLabelPrefix + strconv.FormatInt(sent.UnixNano(), 10)
	out := make([]esiRecord, len(batch))
	for i, km := range batch {
		z := store.ZKB{Hash: km.Hash}
		if km.ZKB != nil {
			z = *km.ZKB
		}
		z.Labels = append(slices.Clip(z.Labels), stamp)
		out[i] = recordOf(km)
		out[i].ZKB = &z
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("bench: encode batch: %w", err)
	}
	return b, nil
}

// sentStamp returns the send time a killmail's labels carry.
func sentStamp(labels []string) (int64, bool) {
	for _, l := range labels {
		if rest, ok := strings.CutPrefix(l, SentLabelPrefix); ok {
			ns, err := strconv.ParseInt(rest, 10, 64)
			return ns, err == nil
		}
	}
	return 0, false
}

// heartbeatEvery keeps clients under the server's 60 s idle timeout.
const heartbeatEvery = 25 * time.Second

// fleet is the WebSocket clients of a run.
type fleet struct {
	clients   []*benchClient
	firstID   int64
	delivered atomic.Int64
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// benchClient is one Phoenix V2 client. seen, lat and repeats belong to
// its reader goroutine until the fleet is closed.
type benchClient struct {
	conn    *websocket.Conn
	wmu     sync.Mutex
	seen    map[int64]struct{}
	lat     []time.Duration
	repeats int
	err     error
}

// openFleet dials cfg.Clients clients, each joined to killmails:lobby
// with the systems and no preload, and starts their readers.
func openFleet(ctx context.Context, cfg PushConfig, systems []int64) (*fleet, error) {
	f := &fleet{firstID: cfg.FirstID, done: make(chan struct{})}
	u := "ws" + strings.TrimPrefix(cfg.BaseURL, "http") + "/socket/websocket?vsn=2.0.0"
	join, err := json.Marshal([]any{"1", "1", "killmails:lobby", "phx_join", map[string]any{"systems": systems, "preload": false}})
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	for i := range cfg.Clients {
		c, err := dialJoined(ctx, d, u, join)
		if err != nil {
			f.close()
			return nil, fmt.Errorf("bench: client %d: %w", i, err)
		}
		f.clients = append(f.clients, c)
		f.wg.Go(func() { f.read(c) })
		f.wg.Go(func() { f.heartbeat(c) })
	}
	return f, nil
}

// dialJoined connects and joins, waiting for the ok reply.
func dialJoined(ctx context.Context, d websocket.Dialer, u string, join []byte) (*benchClient, error) {
	conn, res, err := d.DialContext(ctx, u, nil)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	res.Body.Close()
	c := &benchClient{conn: conn, seen: map[int64]struct{}{}}
	if err := conn.WriteMessage(websocket.TextMessage, join); err != nil {
		conn.Close()
		return nil, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("join: %w", err)
		}
		var frame [5]json.RawMessage
		if json.Unmarshal(b, &frame) != nil || string(frame[3]) != `"phx_reply"` || string(frame[1]) != `"1"` {
			continue
		}
		if !bytes.Contains(frame[4], []byte(`"status":"ok"`)) {
			conn.Close()
			return nil, fmt.Errorf("join refused: %s", frame[4])
		}
		return c, nil
	}
}

// updatePayload is the part of a killmail_update the bench reads.
type updatePayload struct {
	Preload   bool `json:"preload"`
	Killmails []struct {
		ID  int64 `json:"killmail_id"`
		ZKB *struct {
			Labels []string `json:"labels"`
		} `json:"zkb"`
	} `json:"killmails"`
}

// read records the deliveries of this run's killmails until the
// connection ends.
func (f *fleet) read(c *benchClient) {
	var buf bytes.Buffer
	for {
		err := readFrame(c.conn, &buf)
		now := time.Now()
		if err != nil {
			select {
			case <-f.done:
			default:
				c.err = err
			}
			return
		}
		for _, d := range deliveries(buf.Bytes()) {
			if d.id < f.firstID {
				continue
			}
			if _, dup := c.seen[d.id]; dup {
				c.repeats++
				continue
			}
			c.seen[d.id] = struct{}{}
			c.lat = append(c.lat, now.Sub(time.Unix(0, d.sent)))
			f.delivered.Add(1)
		}
	}
}

// readFrame reads the next message into buf, reusing its memory.
func readFrame(conn *websocket.Conn, buf *bytes.Buffer) error {
	_, r, err := conn.NextReader()
	if err != nil {
		return err
	}
	buf.Reset()
	_, err = buf.ReadFrom(r)
	return err
}

// delivery is one stamped killmail of a frame.
type delivery struct{ id, sent int64 }

// Markers the frame scan looks for.
var (
	markUpdate  = []byte(`"killmail_update"`)
	markPreload = []byte(`"preload":true`)
	markID      = []byte(`"killmail_id":`)
	markSent    = []byte(`"` + SentLabelPrefix)
)

// deliveries returns the stamped killmails of a live killmail_update
// frame. Readers must keep up with the server, so it scans the bytes for
// the ids and stamps, which come in pairs, in order, in bench frames
// (killmail_id opens each killmail, the stamp is in its zkb); a frame
// where they do not pair up is decoded.
func deliveries(b []byte) []delivery {
	if !bytes.Contains(b, markUpdate) || bytes.Contains(b, markPreload) || !bytes.Contains(b, markSent) {
		return nil
	}
	ids, sents := scanInts(b, markID), scanInts(b, markSent)
	if len(ids) != len(sents) {
		return decodeDeliveries(b)
	}
	out := make([]delivery, len(ids))
	for i := range ids {
		out[i] = delivery{id: ids[i], sent: sents[i]}
	}
	return out
}

// scanInts returns the integers that follow each occurrence of mark.
func scanInts(b, mark []byte) []int64 {
	var out []int64
	for {
		i := bytes.Index(b, mark)
		if i < 0 {
			return out
		}
		b = b[i+len(mark):]
		j := 0
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		if n, err := strconv.ParseInt(string(b[:j]), 10, 64); err == nil {
			out = append(out, n)
		}
	}
}

// decodeDeliveries is the slow path of deliveries.
func decodeDeliveries(b []byte) []delivery {
	var frame [5]json.RawMessage
	var p updatePayload
	if json.Unmarshal(b, &frame) != nil || string(frame[3]) != `"killmail_update"` ||
		json.Unmarshal(frame[4], &p) != nil || p.Preload {
		return nil
	}
	var out []delivery
	for _, km := range p.Killmails {
		if km.ZKB == nil {
			continue
		}
		if ns, ok := sentStamp(km.ZKB.Labels); ok {
			out = append(out, delivery{id: km.ID, sent: ns})
		}
	}
	return out
}

// heartbeat sends Phoenix heartbeats until the fleet closes.
func (f *fleet) heartbeat(c *benchClient) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for ref := 2; ; ref++ {
		select {
		case <-f.done:
			return
		case <-t.C:
		}
		frame := fmt.Sprintf(`[null,"%d","phoenix","heartbeat",{}]`, ref)
		c.wmu.Lock()
		err := c.conn.WriteMessage(websocket.TextMessage, []byte(frame))
		c.wmu.Unlock()
		if err != nil {
			return
		}
	}
}

// await waits until expected deliveries arrived, drain passed or ctx
// ended (the only error).
func (f *fleet) await(ctx context.Context, expected int, drain time.Duration) error {
	deadline := time.Now().Add(drain)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for f.delivered.Load() < int64(expected) && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// close says goodbye on every connection and waits for the goroutines.
func (f *fleet) close() {
	f.closeOnce.Do(func() {
		close(f.done)
		for _, c := range f.clients {
			c.wmu.Lock()
			_ = c.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			c.wmu.Unlock()
			_ = c.conn.Close()
		}
		f.wg.Wait()
	})
}

// summary merges the clients' records; call it after close.
func (f *fleet) summary() (delivered, repeats int, lat Latency) {
	var all []time.Duration
	for _, c := range f.clients {
		delivered += len(c.lat)
		repeats += c.repeats
		all = append(all, c.lat...)
	}
	return delivered, repeats, summarize(all)
}

// errors lists the clients the server disconnected; call it after close.
func (f *fleet) errors() []string {
	var out []string
	for i, c := range f.clients {
		if c.err != nil {
			out = append(out, fmt.Sprintf("client %d disconnected: %v", i, c.err))
		}
	}
	return out
}

// summarize computes nearest-rank percentiles.
func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Latency{Count: len(s), P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1]}
}
