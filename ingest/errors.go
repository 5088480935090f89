package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

var (
	// ErrGarbage is matched by every *GarbageError: an upstream answer
	// that is not what the route promises.
	ErrGarbage = errors.New("ingest: garbage from upstream")
	// ErrBlocked is matched by a *StatusError for 403, 420 and 429: the
	// upstream asks us to slow down or go away.
	ErrBlocked = errors.New("ingest: blocked by upstream")
	// ErrNotFound is returned when zKillboard does not know a killmail.
	ErrNotFound = errors.New("ingest: killmail not found upstream")
)

// Reasons a body is garbage; they label the garbage metric.
const (
	ReasonEmpty        = "empty"
	ReasonHTML         = "html"
	ReasonTruncated    = "truncated"
	ReasonSyntax       = "syntax"
	ReasonWrongType    = "wrong_type"
	ReasonMissingField = "missing_field"
	ReasonBadHash      = "bad_hash"
	ReasonIDMismatch   = "id_mismatch"
	ReasonLegacyCREST  = "legacy_crest"
	ReasonTooLarge     = "too_large"
	ReasonUpstreamErr  = "upstream_error"
)

// GarbageError says why an upstream body was refused.
type GarbageError struct {
	// Reason is one of the Reason… constants.
	Reason string
	// Detail says what was wrong, for logs.
	Detail string
	// Err is the decoding error, if any.
	Err error
}

// Error implements error.
func (e *GarbageError) Error() string {
	msg := "ingest: garbage (" + e.Reason + ")"
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the decoding error.
func (e *GarbageError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrGarbage) true.
func (e *GarbageError) Is(target error) bool { return target == ErrGarbage }

func garbage(reason, detail string) *GarbageError {
	return &GarbageError{Reason: reason, Detail: detail}
}

// classify names what is wrong with a body that failed to decode.
func classify(body []byte, err error) *GarbageError {
	var ge *GarbageError
	if errors.As(err, &ge) {
		return ge
	}
	t := bytes.TrimSpace(body)
	g := &GarbageError{Err: err}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case len(t) == 0:
		g.Reason = ReasonEmpty
	case t[0] == '<':
		g.Reason, g.Detail = ReasonHTML, "starts "+snippet(t, 24)
	case errors.As(err, &te):
		g.Reason = ReasonWrongType
	case errors.As(err, &se) && strings.Contains(se.Error(), "unexpected end"):
		g.Reason = ReasonTruncated
	case errors.As(err, &se):
		g.Reason = ReasonSyntax
	default:
		g.Reason = ReasonWrongType
	}
	return g
}

// expectObject refuses bodies that are not a JSON object before decoding.
func expectObject(body []byte) error { return expectJSON(body, '{', "object") }

// expectArray refuses bodies that are not a JSON array before decoding.
func expectArray(body []byte) error { return expectJSON(body, '[', "array") }

func expectJSON(body []byte, open byte, kind string) error {
	t := bytes.TrimSpace(body)
	switch {
	case len(t) == 0:
		return garbage(ReasonEmpty, "")
	case t[0] == '<':
		return garbage(ReasonHTML, "starts "+snippet(t, 24))
	case t[0] != open:
		return garbage(ReasonWrongType, "not a JSON "+kind+": starts "+snippet(t, 16))
	}
	return nil
}

// validHash reports whether h looks like a killmail hash: hex, 1..64
// characters. It keeps odd strings out of ESI URLs.
func validHash(h string) bool {
	if h == "" || len(h) > 64 {
		return false
	}
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func snippet(b []byte, n int) string {
	if len(b) > n {
		return fmt.Sprintf("%q…", b[:n])
	}
	return fmt.Sprintf("%q", b)
}

// StatusError is an upstream answer with an unexpected HTTP status.
type StatusError struct {
	URL  string
	Code int
	// RetryAfter is what Retry-After asked for; zero when absent.
	RetryAfter time.Duration
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("ingest: %s: %d %s", e.URL, e.Code, http.StatusText(e.Code))
}

// Is makes errors.Is(err, ErrBlocked) true for 403, 420 and 429.
func (e *StatusError) Is(target error) bool {
	return target == ErrBlocked && blocked(e.Code)
}

func blocked(code int) bool {
	return code == http.StatusForbidden || code == 420 || code == http.StatusTooManyRequests
}
