package server

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShutdownFinishesInFlight: when the context ends, a request already
// being served runs to completion and its client gets the whole answer;
// new connections are refused; Serve returns nil.
func TestShutdownFinishesInFlight(t *testing.T) {
	s := openTestServer(t, Config{ShutdownTimeout: 30 * time.Second})
	started, release := make(chan struct{}), make(chan struct{})
	s.router.GET("/test/slow", func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		res, err := http.Get("http://" + addr + "/test/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		got <- result{res.StatusCode, string(b), err}
	}()
	<-started
	cancel()
	// Shutdown closes the listener first: once a dial fails, it is under way.
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned before the in-flight request finished: %v", err)
	default:
	}
	assert.True(t, s.draining.Load(), "readiness drops during shutdown")
	close(release)
	r := <-got
	require.NoError(t, r.err)
	assert.Equal(t, http.StatusOK, r.status)
	assert.Equal(t, "finished", r.body)
	require.NoError(t, <-served)
}
