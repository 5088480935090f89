package server

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/wanderer-industries/wanderer-kills-go/index"
)

// Bounds of /api/v2/killmails.
const (
	defaultQueryLimit = 100
	maxQueryLimit     = 1000
)

// paramError is a query parameter that failed validation.
type paramError struct {
	field  string
	reason string
}

func (e *paramError) Error() string { return "Invalid " + e.field + ": " + e.reason }

// queryKillmails serves GET /api/v2/killmails: killmails matching every
// given filter (a comma list matches any of its ids), newest first, one
// page per request with a cursor to the next. Pages stay stable while new
// killmails arrive: a cursor points into the order, not at an offset.
func (s *Server) queryKillmails(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		var pe *paramError
		if errors.As(err, &pe) && pe.field == "cursor" {
			writeError(w, http.StatusBadRequest, "INVALID_CURSOR", pe.Error(), map[string]any{"field": "cursor"})
			return
		}
		if errors.As(err, &pe) {
			writeError(w, http.StatusBadRequest, "INVALID_PARAMETER", pe.Error(), map[string]any{"field": pe.field})
			return
		}
		writeError(w, http.StatusBadRequest, "INVALID_PARAMETER", err.Error(), nil)
		return
	}
	entries, c, err := s.deps.Store.Search(r.Context(), q)
	if err != nil {
		s.fetchFailed(w, r, "Failed to query killmails", err)
		return
	}
	var next string
	if c != nil {
		next = encodeCursor(*c)
	}
	writeQueryPage(w, rawKills(entries), next)
}

// queryParams are the parameters /api/v2/killmails knows; any other is a
// 400 naming it, so a typo never widens a query silently.
var queryParams = map[string]func(q *index.Query, v string) error{
	"system_id":      idList(func(q *index.Query) *[]int64 { return &q.Systems }),
	"character_id":   idList(func(q *index.Query) *[]int64 { return &q.Characters }),
	"corporation_id": idList(func(q *index.Query) *[]int64 { return &q.Corporations }),
	"alliance_id":    idList(func(q *index.Query) *[]int64 { return &q.Alliances }),
	"ship_type_id":   idList(func(q *index.Query) *[]int64 { return &q.ShipTypes }),
	"since":          func(q *index.Query, v string) (err error) { q.Since, err = parseBound(v); return err },
	"until":          func(q *index.Query, v string) (err error) { q.Until, err = parseBound(v); return err },
	"min_value":      func(q *index.Query, v string) (err error) { q.MinValue, err = parseNonNegFloat(v); return err },
	"limit":          parseQueryLimit,
	"cursor":         parseCursorParam,
}

// parseQuery validates the raw query string into an index query. Each
// failure is a *paramError naming the field.
func parseQuery(raw string) (index.Query, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return index.Query{}, &paramError{field: "query", reason: "malformed query string"}
	}
	q := index.Query{Limit: defaultQueryLimit}
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		parse, ok := queryParams[name]
		if name == "" {
			return index.Query{}, &paramError{field: "query", reason: "empty parameter name"}
		}
		if !ok {
			return index.Query{}, &paramError{field: shortInput(name), reason: "unknown parameter"}
		}
		v := strings.Join(vals[name], ",")
		if strings.TrimSpace(v) == "" {
			continue // an empty value means "unset"
		}
		if err := parse(&q, v); err != nil {
			return index.Query{}, &paramError{field: name, reason: err.Error()}
		}
	}
	if q.Since != 0 && q.Until != 0 && q.Until <= q.Since {
		return index.Query{}, &paramError{field: "until", reason: "must be after since"}
	}
	return q, nil
}

func idList(field func(*index.Query) *[]int64) func(*index.Query, string) error {
	return func(q *index.Query, v string) error {
		ids, err := parseIDList(v)
		if err != nil {
			return err
		}
		*field(q) = ids
		return nil
	}
}

// parseBound parses an RFC 3339 time into the index's Unix seconds,
// rounded up: kill times are whole seconds, so "since 10.5" and "until
// 10.5" both mean the second 11 (inclusive since, exclusive until).
func parseBound(v string) (int64, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return 0, fmt.Errorf("%s is not an RFC 3339 time", quoteInput(v))
	}
	sec := t.Unix()
	if t.Nanosecond() > 0 {
		sec++
	}
	if sec <= 0 {
		// Before any killmail; 1 keeps "until" a real bound (0 is none).
		sec = 1
	}
	return sec, nil
}

func parseQueryLimit(q *index.Query, v string) error {
	n, err := parseInt(v)
	if err != nil {
		return fmt.Errorf("%s %w", quoteInput(v), err)
	}
	if n < 1 || n > maxQueryLimit {
		return fmt.Errorf("must be between 1 and %d, got %d", maxQueryLimit, n)
	}
	q.Limit = int(n)
	return nil
}

func parseCursorParam(q *index.Query, v string) error {
	c, err := decodeCursor(v)
	if err != nil {
		return err
	}
	q.After = &c
	return nil
}
