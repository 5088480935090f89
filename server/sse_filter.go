package server

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
)

// sseMaxIDs caps each id list of the SSE query (API.md §5.1).
const sseMaxIDs = 100

// sseMaxPreloadDays is where preload_days is capped.
const sseMaxPreloadDays = 90

// sseFilters are the parsed query filters shared by both SSE endpoints
// (upstream SSE.FilterParser, API.md §5.1).
type sseFilters struct {
	SystemIDs    []int64  `json:"system_ids"`
	CharacterIDs []int64  `json:"character_ids"`
	MinValue     *float64 `json:"min_value"`
	PreloadDays  int      `json:"preload_days"`
}

// filter is the matcher of the stream: no ids means every killmail.
func (f sseFilters) filter() Filter {
	fl := Filter{Systems: f.SystemIDs, Characters: f.CharacterIDs}
	if f.MinValue != nil {
		fl.MinValue = *f.MinValue
	}
	return fl
}

// sseFilterError is a filter the parser refused; Error is the exact
// upstream message.
type sseFilterError struct{ msg string }

func (e *sseFilterError) Error() string { return e.msg }

func filterErrorf(format string, args ...any) error {
	return &sseFilterError{msg: fmt.Sprintf(format, args...)}
}

// parseSSEFilters reads system_ids, character_ids, min_value and
// preload_days. Empty values mean unset.
func parseSSEFilters(q url.Values) (sseFilters, error) {
	f := sseFilters{SystemIDs: []int64{}, CharacterIDs: []int64{}}
	var err error
	if f.SystemIDs, err = parseSSEIDs(q.Get("system_ids"), "system_ids"); err != nil {
		return f, err
	}
	if f.CharacterIDs, err = parseSSEIDs(q.Get("character_ids"), "character_ids"); err != nil {
		return f, err
	}
	if f.MinValue, err = parseMinValue(q.Get("min_value")); err != nil {
		return f, err
	}
	f.PreloadDays, err = parsePreloadDays(q.Get("preload_days"))
	return f, err
}

// parseSSEIDs parses "1, 2,3": blanks trimmed, empty items skipped, at
// most sseMaxIDs ids, each a positive integer.
func parseSSEIDs(s, field string) ([]int64, error) {
	out := []int64{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		n, err := strconv.ParseInt(part, 10, 64)
		if err != nil || n <= 0 {
			return nil, filterErrorf("Invalid %s: '%s' is not a valid integer", field, cut(part))
		}
		out = append(out, n)
		if len(out) > sseMaxIDs {
			return nil, filterErrorf("Too many %s specified (max %d)", field, sseMaxIDs)
		}
	}
	return out, nil
}

func parseMinValue(s string) (*float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, filterErrorf("Invalid min_value: '%s' is not a valid number", cut(s))
	}
	if v < 0 {
		return nil, filterErrorf("min_value must be non-negative, got %s", elixirFloat(v))
	}
	return &v, nil
}

func parsePreloadDays(s string) (int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		if strings.HasPrefix(s, "-") && isDigits(s[1:]) {
			return 0, filterErrorf("preload_days must be non-negative")
		}
		return 0, filterErrorf("Invalid preload_days: '%s' is not a valid integer", cut(s))
	}
	if n < 0 {
		return 0, filterErrorf("preload_days must be non-negative")
	}
	return int(min(n, sseMaxPreloadDays)), nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// elixirFloat prints a float as Elixir does for these messages: always
// with a fractional part ("-100.0").
func elixirFloat(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// cut keeps echoed input short.
func cut(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
