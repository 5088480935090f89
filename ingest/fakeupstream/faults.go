package fakeupstream

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"
)

// Upstream names one of the services the fake plays.
type Upstream int

// The upstreams the fake plays.
const (
	R2Z2 Upstream = iota + 1
	RedisQ
	ZKB
	ESI
)

// String names the upstream.
func (u Upstream) String() string {
	switch u {
	case R2Z2:
		return "r2z2"
	case RedisQ:
		return "redisq"
	case ZKB:
		return "zkb"
	case ESI:
		return "esi"
	}
	return "unknown"
}

// Faults are the misbehaviours injected into one upstream's answers. The
// zero value is a healthy upstream.
type Faults struct {
	// FailRate is the share of requests (0..1) answered 502 with an HTML
	// error page.
	FailRate float64
	// GarbageRate is the share of requests answered 200 with garbage: an
	// HTML page, a truncated body, JSON of the wrong types, or nothing.
	GarbageRate float64
	// Delay holds every answer this long (or until the client leaves).
	Delay time.Duration
	// Blocked answers every request 429 (R2Z2, RedisQ, zKillboard) as a
	// rate-limited client would get.
	Blocked bool
	// ErrorLimited answers every ESI request 420 with
	// X-ESI-Error-Limit-Remain: 0 and a reset of Options.ErrorLimitReset.
	ErrorLimited bool
}

// Garbage bodies, in the order the fake cycles through them.
const (
	htmlPage  = "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>\n"
	wrongType = `{"killmail_id":"not-a-number","sequence":"x","package":"yes","name":42,"ticker":42,"esi":[],"zkb":7}`
)

type garbageKind int

const (
	garbageHTML garbageKind = iota
	garbageTruncated
	garbageWrongType
	garbageEmpty
	garbageKinds
)

// faultDecision is what the fault layer does with one request.
type faultDecision struct {
	fail    bool
	garbage bool
	kind    garbageKind
}

func (s *Server) decide(u Upstream) (Faults, faultDecision) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults[u]
	var d faultDecision
	switch {
	case f.FailRate > 0 && s.rng.Float64() < f.FailRate:
		d.fail = true
	case f.GarbageRate > 0 && s.rng.Float64() < f.GarbageRate:
		d.garbage = true
		d.kind = garbageKind(s.garbageN % int(garbageKinds))
		s.garbageN++
	}
	return f, d
}

// withFaults wraps one upstream's handler. Idempotent handlers have their
// real answer truncated for garbage; the others (RedisQ, whose listen
// pops the queue) never run when a fault is injected, so no package is
// lost to a fault.
func (s *Server) withFaults(u Upstream, idempotent bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.count(u)
		f, d := s.decide(u)
		if f.Delay > 0 && !s.wait(r, f.Delay) {
			return
		}
		switch {
		case f.ErrorLimited && u == ESI:
			w.Header().Set("X-ESI-Error-Limit-Remain", "0")
			w.Header().Set("X-ESI-Error-Limit-Reset", strconv.Itoa(int(s.opts.ErrorLimitReset.Seconds())))
			writeJSON(w, 420, map[string]string{"error": "Error limited message"})
		case f.Blocked && u == ESI:
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "Too many requests"})
		case f.Blocked:
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "rate limited"})
		case d.fail:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(htmlPage))
		case d.garbage:
			s.writeGarbage(w, r, d.kind, idempotent, h)
		default:
			h(w, r)
		}
	}
}

func (s *Server) writeGarbage(w http.ResponseWriter, r *http.Request, kind garbageKind, idempotent bool, h http.HandlerFunc) {
	s.mu.Lock()
	s.garbage++
	s.mu.Unlock()
	switch kind {
	case garbageHTML:
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(htmlPage))
	case garbageTruncated:
		body := []byte(`{"package":{"killID":12`)
		if idempotent {
			rec := httptest.NewRecorder()
			h(rec, r)
			if b := rec.Body.Bytes(); len(b) > 2 {
				body = b[:len(b)/2]
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	case garbageWrongType:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(wrongType))
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
	}
}

// wait sleeps d unless the request or the server ends first; it reports
// whether the full time passed.
func (s *Server) wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
	case <-s.closing:
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := newEncoder(&buf)
	if err := enc.Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeRaw(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
