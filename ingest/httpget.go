package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// DefaultUserAgent names the project on every outbound request.
const DefaultUserAgent = "wanderer-kills-go (+https://github.com/wanderer-industries/wanderer-kills-go)"

// getter makes the GET requests of one upstream: user agent, Accept, a
// per-request timeout and a body cap.
type getter struct {
	hc        *http.Client
	userAgent string
	timeout   time.Duration
	maxBody   int64
}

// reply is a complete answer.
type reply struct {
	status int
	header http.Header
	body   []byte
	// url is the final URL, after redirects.
	url string
}

// get fetches url. Any status is a reply; the error is for the request
// itself (transport, timeout, a body over the cap).
func (g getter) get(ctx context.Context, url string) (reply, error) {
	if g.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return reply{}, fmt.Errorf("ingest: %w", err)
	}
	req.Header.Set("User-Agent", g.userAgent)
	req.Header.Set("Accept", "application/json")
	res, err := g.hc.Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("ingest: get: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, g.maxBody+1))
	if err != nil {
		return reply{}, fmt.Errorf("ingest: read %s: %w", url, err)
	}
	if int64(len(body)) > g.maxBody {
		return reply{}, garbage(ReasonTooLarge, fmt.Sprintf("%s: body over %d bytes", url, g.maxBody))
	}
	return reply{status: res.StatusCode, header: res.Header, body: body, url: res.Request.URL.String()}, nil
}

// statusError describes a reply with an unwanted status.
func (r reply) statusError() *StatusError {
	e := &StatusError{URL: r.url, Code: r.status}
	if s, err := strconv.Atoi(r.header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// statusLabel is the metrics label of a request outcome.
func statusLabel(r reply, err error) string {
	switch {
	case errors.Is(err, ErrGarbage):
		return "garbage"
	case err != nil:
		return "error"
	}
	return strconv.Itoa(r.status)
}

// backoff grows a pause from min to max by doubling, with jitter.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
}

// next returns the pause to take now and doubles the following one.
func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	d := b.cur
	if j := int64(d / 4); j > 0 {
		d -= time.Duration(rand.Int64N(j))
	}
	return d
}

// reset starts over from min after a success.
func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends, and returns ctx's error in that case.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// validateURL accepts an empty URL (the default) or an absolute http(s)
// URL.
func validateURL(name, raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("ingest: %s %q: want an absolute http(s) URL", name, raw)
	}
	return nil
}
