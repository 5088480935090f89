package server

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/esi"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// liveEnv is a real store in a temp dir behind a real server listening on
// loopback, with the hub's tail running (Serve, not just Handler).
type liveEnv struct {
	t    testing.TB
	dir  string
	st   *store.Store
	srv  *Server
	addr string
	stop func()
}

// newLiveEnv opens a store in dir (a new temp dir when empty) and serves
// it on addr ("127.0.0.1:0" when empty). mut adjusts the config.
func newLiveEnv(t testing.TB, dir, addr string, mut ...func(*Config)) *liveEnv {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	st, err := store.Open(context.Background(), store.Config{Dir: dir})
	require.NoError(t, err)
	cfg := Config{Version: "test", ShutdownTimeout: 5 * time.Second}
	for _, m := range mut {
		m(&cfg)
	}
	srv, err := New(cfg, Deps{Store: st})
	require.NoError(t, err)
	var ln net.Listener
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond) // the previous server's port
	}
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	e := &liveEnv{t: t, dir: dir, st: st, srv: srv, addr: ln.Addr().String()}
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-served)
			require.NoError(t, st.Close())
		})
	}
	t.Cleanup(e.stop)
	return e
}

func (e *liveEnv) httpURL(path string) string { return "http://" + e.addr + path }

// liveFixtures are the real ESI killmails of testdata, made recent (one
// minute apart, newest first) and given a zkb block with a value.
func liveFixtures(t testing.TB) []*store.Killmail {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "fixtures", "killmails.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	var out []*store.Killmail
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	now := time.Now().UTC().Truncate(time.Second)
	for sc.Scan() {
		km, err := esi.DecodeKillmail(sc.Bytes())
		require.NoError(t, err)
		km.KillTime = store.Time{Time: now.Add(-time.Duration(len(out)+1) * time.Minute)}
		km.ZKB = &store.ZKB{Hash: "abcdef" + strconv.Itoa(len(out)), TotalValue: float64(len(out)+1) * 1e6, Points: 1}
		out = append(out, km)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, out)
	return out
}

// killIn returns a copy of km with a new id in a system, killed at.
func killIn(km *store.Killmail, id, system int64, at time.Time) *store.Killmail {
	c := *km
	c.KillmailID, c.SystemID = id, system
	c.KillTime = store.Time{Time: at.UTC().Truncate(time.Second)}
	c.Attackers = append([]store.Attacker(nil), km.Attackers...)
	if km.ZKB != nil {
		z := *km.ZKB
		c.ZKB = &z
	}
	return &c
}

// add appends killmails and returns their offsets.
func (e *liveEnv) add(kms ...*store.Killmail) []uint64 {
	e.t.Helper()
	res, err := e.st.Append(context.Background(), store.Batch{Killmails: kms})
	require.NoError(e.t, err)
	offs := make([]uint64, len(res))
	for i, r := range res {
		require.Equal(e.t, store.Added, r.Status, "killmail %d: %v", kms[i].KillmailID, r.Err)
		offs[i] = r.Offset
	}
	return offs
}

// settle waits until the hub's tail has delivered everything stored, so
// that what a test stored before connecting counts as history.
func (e *liveEnv) settle() {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.srv.hub.pos.Load() == e.st.Head() }, 10*time.Second, time.Millisecond)
}

// phxFrame is a decoded server frame of either serializer.
type phxFrame struct {
	JoinRef json.RawMessage
	Ref     json.RawMessage
	Topic   string
	Event   string
	Payload json.RawMessage
}

// status and response of a phx_reply.
func (f phxFrame) reply(t testing.TB) (string, map[string]any) {
	t.Helper()
	var r struct {
		Status   string         `json:"status"`
		Response map[string]any `json:"response"`
	}
	require.NoError(t, json.Unmarshal(f.Payload, &r), "%s", f.Payload)
	return r.Status, r.Response
}

func (f phxFrame) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(f.Payload, &m), "%s", f.Payload)
	return m
}

// wsClient is a gorilla client speaking one serializer.
type wsClient struct {
	t    testing.TB
	c    *websocket.Conn
	vsn  string
	ref  int
	join string
}

func dialWS(t testing.TB, addr, vsn string, query ...string) *wsClient {
	t.Helper()
	q := url.Values{}
	if vsn != "" {
		q.Set("vsn", vsn)
	}
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	u := "ws://" + addr + "/socket/websocket?" + q.Encode()
	c, res, err := websocket.DefaultDialer.Dial(u, nil)
	require.NoError(t, err)
	res.Body.Close()
	t.Cleanup(func() { _ = c.Close() })
	return &wsClient{t: t, c: c, vsn: vsn}
}

// send pushes an event and returns its ref.
func (w *wsClient) send(topic, event string, payload any) string {
	w.t.Helper()
	w.ref++
	ref := strconv.Itoa(w.ref)
	if event == evJoin {
		w.join = ref
	}
	var frame any
	if w.vsn == "2.0.0" {
		var jr any
		if w.join != "" {
			jr = w.join
		}
		frame = []any{jr, ref, topic, event, payload}
	} else {
		frame = map[string]any{"topic": topic, "event": event, "payload": payload, "ref": ref}
	}
	require.NoError(w.t, w.c.WriteJSON(frame))
	return ref
}

// next reads one frame (failing after timeout).
func (w *wsClient) next(timeout time.Duration) (phxFrame, error) {
	_ = w.c.SetReadDeadline(time.Now().Add(timeout))
	_, b, err := w.c.ReadMessage()
	if err != nil {
		return phxFrame{}, err
	}
	var f phxFrame
	if w.vsn == "2.0.0" {
		var arr []json.RawMessage
		require.NoError(w.t, json.Unmarshal(b, &arr), "%s", b)
		require.Len(w.t, arr, 5, "%s", b)
		f = phxFrame{JoinRef: arr[0], Ref: arr[1], Payload: arr[4]}
		require.NoError(w.t, json.Unmarshal(arr[2], &f.Topic))
		require.NoError(w.t, json.Unmarshal(arr[3], &f.Event))
	} else {
		var obj struct {
			Topic   string          `json:"topic"`
			Event   string          `json:"event"`
			Payload json.RawMessage `json:"payload"`
			Ref     json.RawMessage `json:"ref"`
		}
		require.NoError(w.t, json.Unmarshal(b, &obj), "%s", b)
		f = phxFrame{Ref: obj.Ref, Topic: obj.Topic, Event: obj.Event, Payload: obj.Payload}
	}
	return f, nil
}

// expect reads until a frame satisfies match, failing on anything else
// named in forbid; skipped frames are returned too.
func (w *wsClient) expect(what string, match func(phxFrame) bool) phxFrame {
	w.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := w.next(time.Until(deadline))
		require.NoError(w.t, err, "waiting for %s", what)
		if match(f) {
			return f
		}
	}
}

// reply waits for the reply to ref.
func (w *wsClient) reply(ref string) (string, map[string]any) {
	w.t.Helper()
	f := w.expect("reply "+ref, func(f phxFrame) bool { return f.Event == evReply && string(f.Ref) == strconv.Quote(ref) })
	return f.reply(w.t)
}

// call sends and waits for the reply.
func (w *wsClient) call(topic, event string, payload any) (string, map[string]any) {
	w.t.Helper()
	return w.reply(w.send(topic, event, payload))
}

// event waits for the next frame of an event.
func (w *wsClient) event(name string) phxFrame {
	w.t.Helper()
	return w.expect(name, func(f phxFrame) bool { return f.Event == name })
}

// killIDsOf returns the killmail ids of a killmail_update payload.
func killIDsOf(t testing.TB, f phxFrame) []int64 {
	t.Helper()
	var p struct {
		Killmails []struct {
			ID int64 `json:"killmail_id"`
		} `json:"killmails"`
	}
	require.NoError(t, json.Unmarshal(f.Payload, &p))
	ids := make([]int64, len(p.Killmails))
	for i, k := range p.Killmails {
		ids[i] = k.ID
	}
	return ids
}

// getJSON fetches a JSON object.
func getJSON(t testing.TB, u string) (int, map[string]any) {
	t.Helper()
	res, err := http.Get(u)
	require.NoError(t, err)
	defer res.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&m))
	return res.StatusCode, m
}
