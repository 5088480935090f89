package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// channelError is an error reply of the channel: {"reason": "[<domain>:<type>] <message>"}.
type channelError struct {
	domain, typ, msg string
}

func (e *channelError) Error() string { return "[" + e.domain + ":" + e.typ + "] " + e.msg }

func validationErr(typ, msg string) *channelError {
	return &channelError{domain: "validation", typ: typ, msg: msg}
}

// idRule describes one id list of the channel (API.md §4.2).
type idRule struct {
	field   string // payload key
	kind    string // "system" or "character", for error types
	noun    string // "System" or "Character", for messages
	lo, hi  int64
	maxFrom func(*HubConfig) int
}

var (
	systemRule = idRule{field: "systems", kind: "system", noun: "System", lo: 1, hi: 50_000_000,
		maxFrom: func(c *HubConfig) int { return c.MaxSystems }}
	characterRule = idRule{field: "character_ids", kind: "character", noun: "Character", lo: 90_000_000, hi: 3_000_000_000,
		maxFrom: func(c *HubConfig) int { return c.MaxCharacters }}
)

func (r idRule) tooMany(max int) *channelError {
	return validationErr("too_many_"+r.kind+"s", fmt.Sprintf("Too many %ss (max: %d)", r.kind, max))
}

// parse validates a JSON list of ids: at most max, all integers, all in
// range; duplicates are dropped, order kept. present is false when raw is
// not a list (the field is then ignored, as upstream does).
func (r idRule) parse(raw json.RawMessage, max int) (ids []int64, present bool, err *channelError) {
	var arr []json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &arr) != nil || arr == nil {
		return nil, false, nil
	}
	if len(arr) > max {
		return nil, true, r.tooMany(max)
	}
	vals := make([]int64, 0, len(arr))
	inRange := true
	for _, el := range arr {
		n, isInt, fits := jsonInt(el)
		if !isInt {
			return nil, true, validationErr("non_integer_"+r.kind+"_ids", r.noun+" IDs must be integers")
		}
		if !fits || n < r.lo || n > r.hi {
			inRange = false
		}
		vals = append(vals, n)
	}
	if !inRange {
		return nil, true, validationErr("invalid_"+r.kind+"_ids", "Invalid "+r.kind+" IDs")
	}
	seen := make(map[int64]struct{}, len(vals))
	for _, v := range vals {
		if _, dup := seen[v]; !dup {
			seen[v] = struct{}{}
			ids = append(ids, v)
		}
	}
	return ids, true, nil
}

// jsonInt reads a JSON integer literal: isInt is false for strings,
// floats (1.0 included, as Elixir sees them) and anything else; fits is
// false for an integer beyond int64.
func jsonInt(raw json.RawMessage) (n int64, isInt, fits bool) {
	s := bytes.TrimSpace(raw)
	if len(s) == 0 {
		return 0, false, false
	}
	digits := s
	if digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 {
		return 0, false, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false, false
		}
	}
	n, err := strconv.ParseInt(string(s), 10, 64)
	return n, true, err == nil
}

// preloadOpts is the join's preload object (API.md §4.2), honoured.
type preloadOpts struct {
	enabled    bool
	limit      int // per system
	sinceHours int
	// batchSize > 0 delivers the kills as preload_batch events of that
	// many kills instead of one killmail_update per system.
	batchSize int
	interval  int // ms between batches
}

// Preload bounds: defaults are upstream's (5 kills per system from the
// last 24 h); the caps keep one join from reading the whole store.
const (
	preloadDefaultLimit = 5
	preloadMaxLimit     = 100
	preloadDefaultHours = 24
	preloadMaxHours     = 168
	preloadMaxBatch     = 500
	preloadMaxInterval  = 5000
)

func defaultPreload() preloadOpts {
	return preloadOpts{enabled: true, limit: preloadDefaultLimit, sinceHours: preloadDefaultHours}
}

// parsePreload reads the preload object; fields of the wrong type keep
// their defaults, numbers are clamped to their bounds. false disables.
func parsePreload(raw json.RawMessage) preloadOpts {
	p := defaultPreload()
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		p.enabled = b
		return p
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil {
		return p
	}
	if json.Unmarshal(obj["enabled"], &b) == nil {
		p.enabled = b
	}
	p.limit = clampField(obj["limit_per_system"], p.limit, 1, preloadMaxLimit)
	p.sinceHours = clampField(obj["since_hours"], p.sinceHours, 1, preloadMaxHours)
	p.batchSize = clampField(obj["delivery_batch_size"], 0, 0, preloadMaxBatch)
	p.interval = clampField(obj["delivery_interval_ms"], 0, 0, preloadMaxInterval)
	return p
}

func clampField(raw json.RawMessage, def, lo, hi int) int {
	n, isInt, fits := jsonInt(raw)
	if !isInt || !fits {
		return def
	}
	return int(min(max(n, int64(lo)), int64(hi)))
}

// joinRequest is a validated phx_join payload.
type joinRequest struct {
	systems, chars []int64
	preload        preloadOpts
	// resume: since_offset was given; every matching killmail after
	// since is sent before live ones. epoch, when given, must be the
	// store's.
	resume bool
	since  uint64
	epoch  string
}

// parseJoin validates a join payload. Lists that are not lists are
// ignored; an absent or non-object payload is an empty join.
func parseJoin(payload json.RawMessage, cfg *HubConfig) (joinRequest, *channelError) {
	req := joinRequest{preload: defaultPreload()}
	var obj map[string]json.RawMessage
	_ = json.Unmarshal(payload, &obj)
	var err *channelError
	if req.systems, _, err = systemRule.parse(obj["systems"], cfg.MaxSystems); err != nil {
		return req, err
	}
	if req.chars, _, err = characterRule.parse(obj["character_ids"], cfg.MaxCharacters); err != nil {
		return req, err
	}
	if raw, ok := obj["preload"]; ok {
		req.preload = parsePreload(raw)
	}
	if raw, ok := obj["since_offset"]; ok && !bytes.Equal(bytes.TrimSpace(raw), jsonNull) {
		n, isInt, fits := jsonInt(raw)
		if !isInt || !fits || n < 0 {
			return req, validationErr("invalid_since_offset", "since_offset must be a non-negative integer")
		}
		req.resume, req.since = true, uint64(n)
	}
	if raw, ok := obj["epoch"]; ok {
		_ = json.Unmarshal(raw, &req.epoch)
	}
	return req, nil
}

// sortedIDs returns a sorted copy (replies list ids ascending).
func sortedIDs(ids []int64) []int64 {
	out := append(make([]int64, 0, len(ids)), ids...)
	slices.Sort(out)
	return out
}

// missing returns the ids of want that have lacks (order of want).
func missing(want, have []int64) []int64 {
	var out []int64
	for _, id := range want {
		if _, found := slices.BinarySearch(have, id); !found {
			out = append(out, id)
		}
	}
	return out
}

// present returns the ids of want that have has.
func present(want, have []int64) []int64 {
	var out []int64
	for _, id := range want {
		if _, found := slices.BinarySearch(have, id); found {
			out = append(out, id)
		}
	}
	return out
}
