package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/wanderer-industries/wanderer-kills-go/index"
	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// Defaults and bounds of the /api/v1 kills routes (API.md §2.5-2.7).
const (
	defaultSinceHours = 24
	defaultKillLimit  = 50
	maxKillLimit      = 1000
	// maxCachedKills caps /kills/cached, which upstream left unbounded.
	maxCachedKills = 1000
)

// systemKills serves GET /api/v1/kills/system/:system_id: the system's
// stored, enriched kills of the last since_hours, newest first, at most
// limit. Any invalid input is 400 INVALID_SYSTEM_ID (the original's
// quirk, API.md §2.5).
func (s *Server) systemKills(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	id, idErr := parsePositive(ps.ByName("system_id"))
	q := r.URL.Query()
	hours, hoursErr := optPositive(q, "since_hours", defaultSinceHours, 0)
	limit, limitErr := optPositive(q, "limit", defaultKillLimit, maxKillLimit)
	if err := errors.Join(idErr, hoursErr, limitErr); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_SYSTEM_ID", "Invalid system ID format", nil)
		return
	}
	kills, err := s.systemPage(r.Context(), id, sinceHours(time.Now(), hours), int(limit))
	if err != nil {
		s.fetchFailed(w, r, "Failed to fetch system kills", err)
		return
	}
	writeKillList(w, kills, false)
}

// cachedKills serves GET /api/v1/kills/cached/:system_id: the system's
// stored kills, newest first, capped at maxCachedKills.
func (s *Server) cachedKills(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	id, err := parsePositive(ps.ByName("system_id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_SYSTEM_ID", "Invalid system ID format", nil)
		return
	}
	kills, err := s.systemPage(r.Context(), id, 0, maxCachedKills)
	if err != nil {
		s.fetchFailed(w, r, "Failed to fetch cached kills", err)
		return
	}
	writeKillList(w, kills, true)
}

// killCount serves GET /api/v1/kills/count/:system_id: the number of
// stored kills of the system.
func (s *Server) killCount(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	id, err := parsePositive(ps.ByName("system_id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_SYSTEM_ID", "Invalid system ID format", nil)
		return
	}
	writeData(w, http.StatusOK, map[string]any{
		"system_id": id, "count": s.deps.Store.CountSystem(id), "timestamp": nowStamp(),
	})
}

// killmail serves GET /api/v1/killmail/:killmail_id from the store; a
// killmail the store lacks is fetched upstream, stored and served.
func (s *Server) killmail(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	id, err := parsePositive(ps.ByName("killmail_id"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_KILLMAIL_ID", "Invalid killmail ID format", nil)
		return
	}
	e, err := s.deps.Store.Get(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		e, err = s.fetch(r.Context(), id)
	}
	switch {
	case err == nil:
		writeRawData(w, e.JSON)
	case errors.Is(err, ErrUpstreamNotFound):
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Killmail not found", nil)
	default:
		s.fetchFailed(w, r, "Failed to fetch killmail", err)
	}
}

// fetch asks the Fetcher for a killmail the store lacks. Without a
// Fetcher the killmail is simply not found.
func (s *Server) fetch(ctx context.Context, id int64) (store.Entry, error) {
	if s.deps.Fetcher == nil {
		return store.Entry{}, ErrUpstreamNotFound
	}
	e, err := s.deps.Fetcher.FetchKillmail(ctx, id)
	if err != nil && isUpstreamNotFound(err) {
		return e, ErrUpstreamNotFound
	}
	return e, err
}

// systemPage returns the newest stored kills of a system since a Unix
// time (0: all), at most limit.
func (s *Server) systemPage(ctx context.Context, system, since int64, limit int) ([]json.RawMessage, error) {
	entries, _, err := s.deps.Store.Search(ctx, index.Query{Systems: []int64{system}, Since: since, Limit: limit})
	if err != nil {
		return nil, err
	}
	return rawKills(entries), nil
}

// rawKills returns the stored JSON of each entry, never nil.
func rawKills(entries []store.Entry) []json.RawMessage {
	out := make([]json.RawMessage, len(entries))
	for i, e := range entries {
		out[i] = e.JSON
	}
	return out
}

// sinceHours returns the Unix time hours before now, or 0 (no bound)
// when that reaches before the epoch.
func sinceHours(now time.Time, hours int64) int64 {
	if hours >= now.Unix()/3600 {
		return 0
	}
	return now.Unix() - hours*3600
}

// optPositive reads an optional positive integer query parameter with a
// default and, when max > 0, an upper bound. A present but empty value is
// invalid.
func optPositive(q url.Values, name string, def, max int64) (int64, error) {
	vs, ok := q[name]
	if !ok {
		return def, nil
	}
	n, err := parsePositive(vs[0])
	if err != nil {
		return 0, err
	}
	if max > 0 && n > max {
		return 0, errOverflow
	}
	return n, nil
}

// fetchFailed answers 500 for a failed read or upstream fetch, with the
// original's FETCH_ERROR code, and logs the cause.
func (s *Server) fetchFailed(w http.ResponseWriter, r *http.Request, msg string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the client left
	}
	s.log.ErrorContext(r.Context(), msg, "path", r.URL.Path, "err", err)
	code := http.StatusInternalServerError
	if errors.Is(err, context.DeadlineExceeded) {
		code = http.StatusGatewayTimeout
	}
	writeError(w, code, "FETCH_ERROR", msg, map[string]any{"reason": http.StatusText(code)})
}
