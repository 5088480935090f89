package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/wanderer-industries/wanderer-kills-go/ingest"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// pushPath is the push ingest route: killmails POSTed by their holders
// go through the same pipeline as the live feeds.
const pushPath = "/api/v1/killmails"

// PushConfig configures POST /api/v1/killmails (push ingest). Zero values
// are defaults.
type PushConfig struct {
	// MaxBodyBytes caps a push body (413 beyond); it replaces
	// Config.MaxBodyBytes for this route only. Zero means 8 MiB.
	MaxBodyBytes int64
	// MaxItems caps the killmails of one request (400 beyond). Zero means
	// 1000.
	MaxItems int
	// RatePerSecond and Burst limit the requests of one API key (429 with
	// Retry-After beyond). Zero means 20/s with a burst of 40; a negative
	// rate means no limit.
	RatePerSecond float64
	Burst         int
	// MaxConcurrent caps the pushes decoded and stored at once, which
	// bounds their memory; more wait their turn. Zero means 4.
	MaxConcurrent int
}

// withDefaults returns c with its zero values replaced.
func (c PushConfig) withDefaults() PushConfig {
	setDefault(&c.MaxBodyBytes, 8<<20)
	setDefault(&c.MaxItems, 1000)
	if c.RatePerSecond == 0 {
		c.RatePerSecond = 20
	}
	setDefault(&c.Burst, 40)
	setDefault(&c.MaxConcurrent, 4)
	return c
}

// pushEnabled reports whether push ingest is on: it needs an API key and
// a processor. Off, the route answers the /api/v1 404.
func (s *Server) pushEnabled() bool { return s.cfg.APIKey != "" && s.deps.Push != nil }

// bodyLimit is the body cap of a request: the push route's own when it is
// enabled, Config.MaxBodyBytes for every other route.
func (s *Server) bodyLimit(r *http.Request) int64 {
	if r.Method == http.MethodPost && r.URL.Path == pushPath && s.pushEnabled() {
		return s.cfg.Push.withDefaults().MaxBodyBytes
	}
	return s.cfg.MaxBodyBytes
}

// pushRoute builds the handler of POST /api/v1/killmails: 404 when push
// ingest is off, else the key check, the per-key rate limit, then
// pushKillmails.
func (s *Server) pushRoute() httprouter.Handle {
	if !s.pushEnabled() {
		return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) { notFound(w, r) }
	}
	cfg := s.cfg.Push.withDefaults()
	limits := newKeyLimits(cfg.RatePerSecond, cfg.Burst)
	slots := make(chan struct{}, cfg.MaxConcurrent)
	return s.requireKey(func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		token, _ := bearer(r.Header.Get("Authorization"))
		if wait := limits.reserve(token, time.Now()); wait > 0 {
			tooManyRequests(w, wait)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-r.Context().Done():
			return
		}
		s.pushKillmails(w, r, cfg)
	})
}

// pushReply is the 200 answer of a push: counts, and why each refused
// killmail was refused.
type pushReply struct {
	// Accepted counts the killmails stored: new ones, and known ones this
	// copy made richer (a zkb block or names the stored copy lacked).
	Accepted int `json:"accepted"`
	// Duplicates counts the killmails already stored (or earlier in the
	// same request) that this copy adds nothing to.
	Duplicates int            `json:"duplicates"`
	Rejected   []pushRejected `json:"rejected"`
}

// pushRejected is one refused killmail.
type pushRejected struct {
	// Index is the killmail's 0-based position in the request (array
	// element or non-blank line).
	Index int `json:"index"`
	// KillmailID is null when the item did not carry a readable one.
	KillmailID *int64 `json:"killmail_id"`
	Error      string `json:"error"`
}

// pushKillmails serves an authorized push: read and split the body,
// decode each killmail, store the decodable ones through the pipeline,
// and answer once they are durable.
func (s *Server) pushKillmails(w http.ResponseWriter, r *http.Request, cfg PushConfig) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		badBody(w, err, cfg.MaxBodyBytes)
		return
	}
	raws, err := splitPush(body, isNDJSON(r.Header.Get("Content-Type")))
	switch {
	case err != nil:
		badBody(w, err, cfg.MaxBodyBytes)
		return
	case len(raws) > cfg.MaxItems:
		writeError(w, http.StatusBadRequest, "TOO_MANY_KILLMAILS", "Too many killmails",
			map[string]any{"field": "body", "reason": fmt.Sprintf("%d killmails, at most %d allowed", len(raws), cfg.MaxItems)})
		return
	}
	reply, err := s.ingestPush(r.Context(), raws)
	if err != nil {
		if r.Context().Err() == nil {
			s.log.ErrorContext(r.Context(), "push ingest failed", "killmails", len(raws), "err", err)
		}
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "UNAVAILABLE",
			"Killmails could not be stored; nothing was written, retry", nil)
		return
	}
	s.log.DebugContext(r.Context(), "push ingested", "killmails", len(raws),
		"accepted", reply.Accepted, "duplicates", reply.Duplicates, "rejected", len(reply.Rejected))
	writeJSON(w, http.StatusOK, reply)
}

// ingestPush decodes the items and stores the good ones in one pipeline
// call. Its error means nothing was stored.
func (s *Server) ingestPush(ctx context.Context, raws []json.RawMessage) (pushReply, error) {
	reply := pushReply{Rejected: []pushRejected{}}
	items := make([]ingest.Item, 0, len(raws))
	at := make([]int, 0, len(raws))
	for i, raw := range raws {
		it, err := decodePush(raw)
		if err != nil {
			reply.Rejected = append(reply.Rejected, rejectedItem(i, it.KillmailID, raw, err))
			continue
		}
		items = append(items, it)
		at = append(at, i)
	}
	if len(items) == 0 {
		return reply, nil
	}
	res, err := s.deps.Push.Process(ctx, items, nil)
	if err != nil {
		return pushReply{}, err
	}
	for j, rs := range res {
		switch rs.Status {
		case store.Added, store.Updated:
			reply.Accepted++
		case store.Duplicate:
			reply.Duplicates++
		default:
			err := rs.Err
			if err == nil {
				err = errors.New("refused without a reason")
			}
			reply.Rejected = append(reply.Rejected, rejectedItem(at[j], items[j].KillmailID, raws[at[j]], err))
		}
	}
	sortRejected(reply.Rejected)
	return reply, nil
}

// sortRejected orders the refusals by index (decode refusals come before
// the pipeline's); insertion sort, the list is mostly sorted.
func sortRejected(rs []pushRejected) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && rs[j].Index < rs[j-1].Index; j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// decodePush decodes one pushed killmail: an ESI killmail carrying its
// killmail_hash or a zkb block, or an R2Z2 document. A killmail without
// its body (id and hash only) is refused: push ingest never fetches from
// ESI.
func decodePush(raw json.RawMessage) (ingest.Item, error) {
	it, err := ingest.DecodeRecord(raw)
	switch {
	case err != nil:
		return it, err
	case it.Killmail == nil:
		return it, &store.ValidationError{Field: "victim", Reason: "is required (push the killmail body, not only its id and hash)"}
	case it.Hash == "" && it.ZKB == nil:
		return it, &store.ValidationError{Field: "killmail_hash", Reason: "is required (or a zkb block)"}
	}
	return it, nil
}

// rejectedItem describes a refused killmail, reading its id from the raw
// item when decoding did not get that far.
func rejectedItem(index int, id int64, raw json.RawMessage, err error) pushRejected {
	if id <= 0 {
		var probe struct {
			KillmailID int64 `json:"killmail_id"`
		}
		_ = json.Unmarshal(raw, &probe)
		id = probe.KillmailID
	}
	rj := pushRejected{Index: index, Error: pushError(err)}
	if id > 0 {
		rj.KillmailID = &id
	}
	return rj
}

// pushError words a refusal: a validation error as everywhere else
// (field and reason), a body that does not decode by what is wrong.
func pushError(err error) string {
	var ve *store.ValidationError
	var ge *ingest.GarbageError
	switch {
	case errors.As(err, &ve):
		return ve.Error()
	case errors.As(err, &ge):
		return strings.TrimPrefix(ge.Error(), "ingest: ")
	}
	return err.Error()
}

// isNDJSON reports whether a Content-Type announces JSON lines.
func isNDJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/x-ndjson" || mt == "application/jsonl")
}

// splitPush splits a push body into its items: JSON lines (blank lines
// skipped), or one JSON object, or a JSON array of them. A body that is
// none of these, or holds no item, is an error.
func splitPush(body []byte, ndjson bool) ([]json.RawMessage, error) {
	var out []json.RawMessage
	if ndjson {
		for line := range bytes.Lines(body) {
			if line = bytes.TrimSpace(line); len(line) > 0 {
				out = append(out, json.RawMessage(line))
			}
		}
	} else {
		t := bytes.TrimSpace(body)
		switch {
		case len(t) == 0:
		case t[0] == '[':
			if err := json.Unmarshal(t, &out); err != nil {
				return nil, fmt.Errorf("malformed JSON: %w", err)
			}
		case t[0] == '{' && json.Valid(t):
			out = []json.RawMessage{t}
		case t[0] == '{':
			return nil, errors.New("malformed JSON")
		default:
			return nil, errors.New("the body must be a killmail object, an array of them, or JSON lines (application/x-ndjson)")
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the body holds no killmail")
	}
	return out, nil
}
