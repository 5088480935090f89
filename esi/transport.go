package esi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// request is one ESI call. route labels metrics and errors; path is
// appended to the base URL.
type request struct {
	route  string
	method string
	path   string
	body   []byte
}

// call performs r, retrying retryable failures with a doubling backoff,
// and hands a 2xx body to decode. decode errors make the answer a bad
// response (and count as a breaker failure).
func (c *Client) call(ctx context.Context, r request, decode func([]byte) error) error {
	backoff := c.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		err := c.once(ctx, r, decode)
		if err == nil || attempt >= c.cfg.Retries || !c.retryable(ctx, err) {
			return err
		}
		c.log.DebugContext(ctx, "retrying", "route", r.route, "path", r.path, "attempt", attempt+1, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff *= 2
	}
}

func (c *Client) retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil || errors.Is(err, ErrCircuitOpen) || errors.Is(err, ErrClosed) {
		return false
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.retryable()
	}
	return true // timeouts, transport errors, bad bodies
}

// once performs one attempt: breaker, hold, rate limit, then the HTTP
// exchange under the per-call timeout.
func (c *Client) once(ctx context.Context, r request, decode func([]byte) error) error {
	probe, err := c.breaker.allow()
	if err != nil {
		return fmt.Errorf("esi: %s %s: %w", r.method, r.path, err)
	}
	if err := c.gate.wait(ctx); err != nil {
		c.breaker.abandon(probe)
		return err
	}
	if err := c.limiter.Wait(ctx); err != nil {
		c.breaker.abandon(probe)
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	res, err := c.exchange(cctx, r)
	status, body := res.status, res.body
	c.metrics.request(r.route, status)
	switch {
	case err != nil && ctx.Err() != nil:
		c.breaker.abandon(probe) // our caller left; says nothing about ESI
		return err
	case err != nil:
		c.fail(probe, err)
		return err
	case status >= 200 && status < 300:
		if derr := decode(body); derr != nil {
			c.fail(probe, derr)
			return fmt.Errorf("%w: %s %s: %w (body starts %s)", ErrBadResponse, r.method, r.path, derr, snippet(body, 64))
		}
	case status >= 500:
		c.fail(probe, nil)
		return statusError(r, res)
	default:
		c.succeed(probe)
		return statusError(r, res)
	}
	c.succeed(probe)
	return nil
}

func (c *Client) succeed(probe bool) {
	c.timeouts.Store(0)
	c.breaker.success(probe)
}

func (c *Client) fail(probe bool, err error) {
	if errors.Is(err, context.DeadlineExceeded) {
		c.timeouts.Add(1)
	}
	c.breaker.failure(probe)
}

// response is what exchange read: the status (0 if no answer came), the
// body and how long ESI asked us to wait.
type response struct {
	status int
	body   []byte
	wait   time.Duration
}

// exchange sends the request, observes the error-limit headers and reads
// the capped body.
func (c *Client) exchange(ctx context.Context, r request) (response, error) {
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.cfg.BaseURL+r.path, body)
	if err != nil {
		return response{}, fmt.Errorf("esi: %s %s: %w", r.method, r.path, err)
	}
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("esi: %s %s: %w", r.method, r.path, err)
	}
	defer resp.Body.Close()
	res := response{status: resp.StatusCode, wait: c.gate.observe(resp.Header, resp.StatusCode)}
	if remain, _, _ := c.gate.budget(); remain >= 0 {
		c.metrics.remain.Set(float64(remain))
	}
	res.body, err = io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBodyBytes+1))
	if err != nil {
		return response{status: res.status}, fmt.Errorf("%w: %s %s: reading body: %w", ErrBadResponse, r.method, r.path, err)
	}
	if int64(len(res.body)) > c.cfg.MaxBodyBytes {
		return response{status: res.status}, fmt.Errorf("%w: %s %s: body larger than %d bytes", ErrBadResponse, r.method, r.path, c.cfg.MaxBodyBytes)
	}
	return res, nil
}

// statusError builds the typed error of a non-2xx answer, keeping ESI's
// own message ({"error": "…"}) when the body has one.
func statusError(r request, res response) *StatusError {
	se := &StatusError{Route: r.route, Code: res.status, Body: truncate(bytes.TrimSpace(res.body), 200), RetryAfter: res.wait}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(res.body, &e) == nil && e.Error != "" {
		se.Body = e.Error
	}
	return se
}

// truncate returns at most n bytes of b as a string.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
