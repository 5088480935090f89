package server

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// phoenixClientDir holds the official Phoenix JavaScript client (npm
// "phoenix", pinned in package.json) and the script that drives it.
var phoenixClientDir = filepath.Join("testdata", "phoenix-client")

// jsClient runs testdata/phoenix-client/client.js under Node.
type jsClient struct {
	t     *testing.T
	stdin *json.Encoder
	lines chan map[string]any
}

func startJSClient(t *testing.T, socketURL string) *jsClient {
	t.Helper()
	if _, err := os.Stat(filepath.Join(phoenixClientDir, "node_modules", "phoenix", "package.json")); err != nil {
		t.Fatalf("the Phoenix JS client is not installed (%v): run `make test`, or `npm ci --prefix server/testdata/phoenix-client`", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is required for the Phoenix JS client test: %v", err)
	}
	cmd := exec.Command(node, "client.js", socketURL)
	cmd.Dir = phoenixClientDir
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &jsClient{t: t, stdin: json.NewEncoder(in), lines: make(chan map[string]any, 256)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				c.lines <- m
			}
		}
	}()
	t.Cleanup(func() {
		_ = in.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return c
}

func (c *jsClient) send(cmd map[string]any) {
	c.t.Helper()
	require.NoError(c.t, c.stdin.Encode(cmd))
}

// expect waits for the next line matching; other lines are skipped.
func (c *jsClient) expect(what string, match func(map[string]any) bool) map[string]any {
	c.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-c.lines:
			require.True(c.t, ok, "node exited while waiting for %s", what)
			if match(m) {
				return m
			}
		case <-timeout:
			c.t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (c *jsClient) expectType(typ string) map[string]any {
	c.t.Helper()
	return c.expect(typ, func(m map[string]any) bool { return m["type"] == typ })
}

func (c *jsClient) expectEvent(event string, match func(payload map[string]any) bool) map[string]any {
	c.t.Helper()
	m := c.expect(event, func(m map[string]any) bool {
		p, _ := m["payload"].(map[string]any)
		return m["type"] == "event" && m["event"] == event && (match == nil || match(p))
	})
	return m["payload"].(map[string]any)
}

func (c *jsClient) push(id int, event string, payload any) map[string]any {
	c.t.Helper()
	c.send(map[string]any{"cmd": "push", "id": id, "event": event, "payload": payload})
	return c.expect("reply to "+event, func(m map[string]any) bool { return m["type"] == "reply" && m["id"] == float64(id) })
}

func firstKillID(p map[string]any) float64 {
	kms, _ := p["killmails"].([]any)
	if len(kms) == 0 {
		return 0
	}
	return kms[0].(map[string]any)["killmail_id"].(float64)
}

// TestPhoenixJSClient drives the endpoint with the official Phoenix
// JavaScript client (V2 serializer, permessage-deflate via the ws
// package): join with preload, live kills, subscription events, leave.
func TestPhoenixJSClient(t *testing.T) {
	e := newLiveEnv(t, "", "")
	kms := liveFixtures(t)
	now := time.Now()
	e.add(killIn(kms[0], 930001, 30000142, now.Add(-time.Hour)))
	e.settle()
	victim := kms[1].Victim.CharacterID

	js := startJSClient(t, "ws://"+e.addr+"/socket")
	js.expectType("open")
	js.send(map[string]any{"cmd": "join", "topic": lobbyTopic, "params": map[string]any{
		"systems": []int{30000142}, "character_ids": []int64{victim}, "client_identifier": "wanderer_app",
		"preload": map[string]any{"enabled": true, "limit_per_system": 20, "since_hours": 12},
	}})
	join := js.expectType("join")
	require.Equal(t, "ok", join["status"], join)
	resp := join["response"].(map[string]any)
	assert.Equal(t, []any{float64(30000142)}, resp["subscribed_systems"])
	assert.Equal(t, []any{float64(victim)}, resp["subscribed_characters"])

	pre := js.expectEvent("killmail_update", func(p map[string]any) bool { return p["preload"] == true })
	assert.EqualValues(t, 930001, firstKillID(pre))
	js.expectEvent("preload_complete", nil)

	e.add(killIn(kms[1], 930002, 30002187, now)) // by character
	e.add(killIn(kms[2], 930003, 30000142, now)) // by system
	live := js.expectEvent("killmail_update", func(p map[string]any) bool { return p["preload"] == false })
	assert.EqualValues(t, 930002, firstKillID(live))
	live = js.expectEvent("killmail_update", func(p map[string]any) bool { return p["preload"] == false })
	assert.EqualValues(t, 930003, firstKillID(live))
	cnt := js.expectEvent("kill_count_update", nil)
	assert.EqualValues(t, 30000142, cnt["system_id"])
	assert.EqualValues(t, 2, cnt["count"])

	r := js.push(1, "subscribe_systems", map[string]any{"systems": []int{30000144}})
	assert.Equal(t, "ok", r["status"])
	assert.Equal(t, map[string]any{"subscribed_systems": []any{float64(30000142), float64(30000144)}}, r["response"])
	r = js.push(2, "subscribe_systems", map[string]any{"systems": []any{"nope"}})
	assert.Equal(t, "error", r["status"])
	assert.Equal(t, map[string]any{"reason": "[validation:non_integer_system_ids] System IDs must be integers"}, r["response"])
	r = js.push(3, "get_status", map[string]any{})
	assert.Equal(t, "ok", r["status"])
	status := r["response"].(map[string]any)
	assert.Equal(t, resp["subscription_id"], status["subscription_id"])
	assert.Regexp(t, `^phoenix-js-test_\d+_[A-Za-z0-9_-]{11}$`, status["user_id"])

	js.send(map[string]any{"cmd": "leave"})
	js.expectType("left")
	js.send(map[string]any{"cmd": "exit"})
}
