package server

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/julienschmidt/httprouter"
)

// bulkRequest is the body of POST /api/v1/kills/systems after validation.
type bulkRequest struct {
	systems []int64 // distinct, in request order
	since   int64   // Unix time, 0 = no bound
	limit   int
}

// bulkSystemKills serves POST /api/v1/kills/systems (API.md §2.6): for
// each system its stored kills, as /kills/system would answer them, in a
// map keyed by the system id as a string. The answer is streamed system
// by system, so its memory stays that of one system's page.
func (s *Server) bulkSystemKills(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	req, ok := s.readBulk(w, r)
	if !ok {
		return
	}
	// Read the first system before committing to 200, so a broken store
	// still gets an error status.
	first, err := s.systemPage(r.Context(), req.systems[0], req.since, req.limit)
	if err != nil {
		s.fetchFailed(w, r, "Failed to fetch system kills", err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	_, _ = bw.WriteString(`{"data":{"systems_kills":{`)
	for i, id := range req.systems {
		kills := first
		if i > 0 {
			if kills, err = s.systemPage(r.Context(), id, req.since, req.limit); err != nil {
				// Too late for a status: end the body short; the client
				// sees invalid JSON rather than a silent gap.
				s.log.ErrorContext(r.Context(), "bulk kills aborted", "system_id", id, "err", err)
				_ = bw.Flush()
				return
			}
			_ = bw.WriteByte(',')
		}
		writeSystemKills(bw, id, kills)
	}
	ts := nowStamp()
	fmt.Fprintf(bw, `},"timestamp":%q},"timestamp":%q}`, ts, ts)
	_ = bw.Flush()
}

func writeSystemKills(w *bufio.Writer, id int64, kills []json.RawMessage) {
	_, _ = w.WriteString(`"` + strconv.FormatInt(id, 10) + `":[`)
	for j, k := range kills {
		if j > 0 {
			_ = w.WriteByte(',')
		}
		_, _ = w.Write(k)
	}
	_ = w.WriteByte(']')
}

// readBulk decodes and validates the bulk body, answering the error
// itself when it is not valid.
func (s *Server) readBulk(w http.ResponseWriter, r *http.Request) (bulkRequest, bool) {
	var body map[string]json.RawMessage
	if err := decodeBody(r, &body); err != nil {
		badBody(w, err, s.cfg.MaxBodyBytes)
		return bulkRequest{}, false
	}
	systems, err := bulkSystems(body["system_ids"])
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_SYSTEM_IDS", "Invalid system IDs",
			map[string]any{"field": "system_ids", "reason": err.Error()})
		return bulkRequest{}, false
	}
	hours, err := bulkInt(body["since_hours"], defaultSinceHours, 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_PARAMETERS", "Invalid parameters",
			map[string]any{"field": "since_hours", "reason": err.Error()})
		return bulkRequest{}, false
	}
	limit, err := bulkInt(body["limit"], defaultKillLimit, maxKillLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_PARAMETERS", "Invalid parameters",
			map[string]any{"field": "limit", "reason": err.Error()})
		return bulkRequest{}, false
	}
	return bulkRequest{systems: systems, since: sinceHours(time.Now(), hours), limit: int(limit)}, true
}

// bulkSystems validates system_ids: a non-empty JSON array of at most
// maxListIDs positive JSON integers. Duplicates are dropped.
func bulkSystems(raw json.RawMessage) ([]int64, error) {
	var items []json.RawMessage
	if len(raw) == 0 || isNull(raw) {
		return nil, errors.New("system_ids is required")
	}
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, errors.New("system_ids must be an array of positive integers")
	}
	switch {
	case len(items) == 0:
		return nil, errors.New("system_ids must not be empty")
	case len(items) > maxListIDs:
		return nil, fmt.Errorf("system_ids has %d elements, at most %d allowed", len(items), maxListIDs)
	}
	seen := make(map[int64]bool, len(items))
	out := make([]int64, 0, len(items))
	for i, it := range items {
		id, err := parsePositive(string(it)) // a JSON string or float does not parse
		if err != nil {
			return nil, fmt.Errorf("system_ids[%d] %w", i, err)
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// bulkInt reads since_hours or limit: a JSON integer or a string holding
// one, positive, at most max when max > 0; absent or null is def.
func bulkInt(raw json.RawMessage, def, max int64) (int64, error) {
	if len(raw) == 0 || isNull(raw) {
		return def, nil
	}
	text := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, errNotInteger
		}
	}
	n, err := parsePositive(text)
	if err != nil {
		return 0, err
	}
	if max > 0 && n > max {
		return 0, fmt.Errorf("must be at most %d", max)
	}
	return n, nil
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

// errNotObject is a body that is JSON but not an object.
var errNotObject = errors.New("the body must be a JSON object")

// decodeBody decodes a JSON object body into v. An empty body decodes to
// nothing; trailing data after the object is an error.
func decodeBody(r *http.Request, v any) error {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil
	}
	if data[0] != '{' {
		if json.Valid(data) {
			return errNotObject
		}
		return fmt.Errorf("malformed JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("malformed JSON: data after the object")
	}
	return nil
}

// badBody answers a body that could not be read: 413 past the limit,
// else 400 with the original's {"error":"Bad Request","status":"400"}
// plus a code and the field.
func badBody(w http.ResponseWriter, err error, limit int64) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		bodyTooLarge(w, limit)
		return
	}
	reason := err.Error()
	if len(reason) > 200 {
		reason = reason[:200]
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{
		"error": "Bad Request", "status": "400", "code": "INVALID_JSON",
		"details": map[string]any{"field": "body", "reason": reason}, "timestamp": nowStamp(),
	})
}
