package esi

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

var (
	// ErrNotFound is matched by errors for ids ESI does not know: 404, and
	// 422 (and 400 on the killmail route) for a bad killmail id or hash.
	ErrNotFound = errors.New("esi: not found")
	// ErrCircuitOpen is returned without calling ESI while the circuit
	// breaker is open.
	ErrCircuitOpen = errors.New("esi: circuit open")
	// ErrBadResponse wraps answers that are not what the route promises:
	// HTML, truncated or oversized bodies, JSON of the wrong shape.
	ErrBadResponse = errors.New("esi: bad response")
	// ErrIncomplete is wrapped by Enricher errors when some names could not
	// be fetched; the killmail holds every name that was found and can be
	// enriched again later.
	ErrIncomplete = errors.New("esi: enrichment incomplete")
	// ErrClosed is returned by calls made after Run has returned.
	ErrClosed = errors.New("esi: client closed")
)

// StatusError is an ESI answer with an error status.
type StatusError struct {
	// Route names the endpoint ("killmail", "names", "corporation", …).
	Route string
	// Code is the HTTP status.
	Code int
	// Body is ESI's error message ({"error": "…"}), or the start of the
	// raw body when it is not that shape.
	Body string
	// RetryAfter is how long ESI asked to wait (429 Retry-After, or the
	// error-limit reset for 420); zero when it did not say.
	RetryAfter time.Duration
}

// Error implements error.
func (e *StatusError) Error() string {
	msg := fmt.Sprintf("esi: %s: %d %s", e.Route, e.Code, http.StatusText(e.Code))
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Is makes errors.Is(err, ErrNotFound) true for 404 and 422.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && (e.Code == http.StatusNotFound || e.Code == http.StatusUnprocessableEntity)
}

// retryable reports whether another attempt may succeed: server errors
// and the two "slow down" statuses.
func (e *StatusError) retryable() bool {
	return e.Code >= 500 || e.Code == 420 || e.Code == http.StatusTooManyRequests
}
