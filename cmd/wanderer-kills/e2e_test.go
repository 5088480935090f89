package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wanderer-industries/wanderer-kills-go/ingest/fakeupstream"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the real wanderer-kills once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wk-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "wanderer-kills")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a running `wanderer-kills serve`.
type proc struct {
	cmd  *exec.Cmd
	base string
	logs *syncBuffer
	done chan struct{}
}

func startServe(t *testing.T, dataDir string, up *fakeupstream.Server, extra ...string) *proc {
	t.Helper()
	// freePort's port is free when it returns, not necessarily when serve
	// binds it (another test may take it in between): such a serve exits
	// at once, and a new port is tried.
	for try := 1; ; try++ {
		p := launchServe(t, freePort(t), dataDir, up, extra...)
		ok, exited := p.waitUp(t)
		if ok {
			return p
		}
		if exited && strings.Contains(p.logs.String(), "address already in use") && try < 5 {
			t.Logf("port taken before serve bound it; trying another")
			continue
		}
		t.Fatalf("serve did not come up (exited: %v)", exited)
	}
}

// launchServe starts serve on port; its logs are shown if the test fails.
func launchServe(t *testing.T, port int, dataDir string, up *fakeupstream.Server, extra ...string) *proc {
	t.Helper()
	args := append([]string{"serve",
		"--port", strconv.Itoa(port),
		"--data-dir", dataDir,
		"--source", "r2z2",
		"--r2z2-url", up.R2Z2URL(),
		"--r2z2-rate", "19",
		"--r2z2-idle", "100ms",
		"--esi-url", up.ESIURL(),
		"--zkb-url", up.ZKBURL(),
		"--log-level", "debug",
	}, extra...)
	cmd := exec.Command(binary(t), args...)
	logs := &syncBuffer{}
	cmd.Stdout = logs
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	p := &proc{cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port), logs: logs, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("serve logs:\n%s", logs.String())
		}
	})
	return p
}

// waitUp waits for serve to answer /ping (up) or to exit, for at most 30 s.
func (p *proc) waitUp(t *testing.T) (up, exited bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return false, true
		default:
		}
		if resp, err := http.Get(p.base + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true, false
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false, false
}

// syncBuffer is a bytes.Buffer safe for a child's output copier and the
// test reading it at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (p *proc) getJSON(t *testing.T, path string, v any) int {
	t.Helper()
	resp, err := http.Get(p.base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if v != nil {
		require.NoError(t, json.Unmarshal(body, v), "body: %s", body)
	}
	return resp.StatusCode
}

// stored reads the killmail count from /status.
func (p *proc) stored(t *testing.T) int {
	var st struct {
		Summary struct {
			KillmailsStored int `json:"killmails_stored"`
		} `json:"summary"`
	}
	require.Equal(t, http.StatusOK, p.getJSON(t, "/status", &st))
	return st.Summary.KillmailsStored
}

// TestServeKill9ResumesR2Z2 runs the real binary against the fake R2Z2,
// kills it with SIGKILL midway, restarts it and checks that every
// killmail is stored exactly once, enriched, and that the cursor resumed
// where the acknowledged writes stopped.
func TestServeKill9ResumesR2Z2(t *testing.T) {
	up := fakeupstream.New(t, fakeupstream.Options{})
	total := len(up.Killmails())
	require.Equal(t, 88, total)
	dataDir := filepath.Join(t.TempDir(), "store")

	up.Release(40)
	// sequence.json points at the newest document; start at the first.
	p := startServe(t, dataDir, up, "--r2z2-start", strconv.FormatInt(up.FirstSequence(), 10))
	require.Eventually(t, func() bool { return p.stored(t) >= 20 }, 60*time.Second, 50*time.Millisecond)
	// Kill it while it is still ingesting.
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGKILL))
	<-p.done

	up.ReleaseAll()
	p2 := startServe(t, dataDir, up)
	require.Eventually(t, func() bool { return p2.stored(t) == total }, 90*time.Second, 100*time.Millisecond,
		"all %d killmails stored after the restart", total)

	// Each killmail once, enriched, served from the store.
	for _, km := range up.Killmails() {
		var resp struct {
			Data store.Killmail `json:"data"`
		}
		require.Equal(t, http.StatusOK, p2.getJSON(t, fmt.Sprintf("/api/v1/killmail/%d", km.ID), &resp), "killmail %d", km.ID)
		assert.Equal(t, km.ID, resp.Data.KillmailID)
		assert.NotEmpty(t, resp.Data.Victim.ShipName, "killmail %d has its ship name", km.ID)
	}
	// Graceful stop: SIGTERM ends it with status 0, and the store holds
	// exactly one copy of each (offsets dense: head == count).
	require.NoError(t, p2.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p2.done:
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop on SIGTERM")
	}
	assert.Equal(t, 0, p2.cmd.ProcessState.ExitCode(), "logs: %s", p2.logs.String())
	st, err := store.Open(context.Background(), store.Config{Dir: dataDir})
	require.NoError(t, err)
	defer st.Close()
	assert.EqualValues(t, total, st.Count())
	assert.EqualValues(t, total, st.Head(), "no duplicate took an offset")
	seq, err := st.GetKV(context.Background(), "ingest/r2z2/sequence")
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatInt(up.FirstSequence()+int64(total)-1, 10), string(seq))
}

func TestServeHelpListsEnvironment(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve", "--help"}, func(string) string { return "" }, &out, &out)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, env := range []string{"PORT", "WK_DATA_DIR", "WK_SOURCE", "WK_R2Z2_URL", "WK_R2Z2_START", "WK_REDISQ_URL",
		"WK_REDISQ_QUEUE", "WK_ZKB_URL", "WK_ESI_URL", "WK_USER_AGENT", "KILLMAIL_RETENTION_DAYS", "WK_LOG_LEVEL",
		"WK_LOG_FORMAT", "WK_API_KEY", "WK_MAX_CONN_PER_IP", "WK_CACHE_MB", "WK_RECENT_MB"} {
		assert.Contains(t, out.String(), "["+env+"]")
	}
}

func TestServeRejectsBadConfiguration(t *testing.T) {
	cases := map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"port":       {args: []string{"--port", "70000"}, want: "--port"},
		"source":     {args: []string{"--source", "websocket"}, want: "--source"},
		"env number": {env: map[string]string{"PORT": "abc"}, want: "PORT"},
		"log level":  {args: []string{"--log-level", "loud"}, want: "--log-level"},
		"cache":      {args: []string{"--cache-mb", "0"}, want: "--cache-mb"},
		"recent":     {env: map[string]string{"WK_RECENT_MB": "-5"}, want: "--recent-mb"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			args := append([]string{"serve", "--data-dir", t.TempDir()}, c.args...)
			err := run(context.Background(), args, func(k string) string { return c.env[k] }, &out, &out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

// TestServePortTaken: a serve that cannot listen exits with the reason
// instead of hanging (the ESI client's cache janitors used to keep it
// waiting forever when it stopped right after starting).
func TestServePortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", ":0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	up := fakeupstream.New(t, fakeupstream.Options{})
	p := launchServe(t, port, filepath.Join(t.TempDir(), "store"), up, "--source", "none")
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatal("serve kept running on a port it could not listen on")
	}
	assert.NotEqual(t, 0, p.cmd.ProcessState.ExitCode())
	assert.Contains(t, p.logs.String(), "address already in use")
}
