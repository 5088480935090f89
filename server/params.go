package server

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// maxListIDs caps every id list a request may carry (query lists, the
// bulk body): more is a 400 naming the field.
const maxListIDs = 1000

// Parsing rules shared by every route (API.md §2.5, §9 item 15): an
// integer is base-10 ASCII digits with an optional sign, the whole string
// ("000123" is 123; "123abc", "", "café", "1２３" are not), within int64.
var (
	errNotInteger = errors.New("is not a valid integer")
	errOverflow   = errors.New("is out of range")
	errNotPos     = errors.New("must be a positive integer")
)

// parseInt parses a base-10 ASCII integer with an optional sign.
func parseInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	var ne *strconv.NumError
	switch {
	case err == nil:
		return n, nil
	case errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange):
		return 0, errOverflow
	default:
		return 0, errNotInteger
	}
}

// parsePositive parses an id or count: an integer > 0.
func parsePositive(s string) (int64, error) {
	n, err := parseInt(s)
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, errNotPos
	}
	return n, nil
}

// parseIDList parses a comma list of positive ids ("1, 2,3"); blanks
// around elements are ignored, empty elements are not. At most
// maxListIDs elements.
func parseIDList(s string) ([]int64, error) {
	if n := strings.Count(s, ",") + 1; n > maxListIDs {
		return nil, fmt.Errorf("more than %d ids (got %d)", maxListIDs, n)
	}
	parts := strings.Split(s, ",")
	out := make([]int64, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		id, err := parsePositive(p)
		if err != nil {
			return nil, fmt.Errorf("%s %w", quoteInput(p), err)
		}
		out = append(out, id)
	}
	return out, nil
}

// parseNonNegFloat parses a finite number >= 0 (min_value).
func parseNonNegFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is not a valid number", quoteInput(s))
	}
	if f < 0 {
		return 0, fmt.Errorf("must be non-negative, got %s", s)
	}
	return f, nil
}

// quoteInput quotes user input for an error message, cut short and with
// invalid UTF-8 escaped, so a message never echoes kilobytes or garbage.
func quoteInput(s string) string { return strconv.Quote(shortInput(s)) }

// shortInput cuts user input to 40 bytes for a message.
func shortInput(s string) string {
	const max = 40
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
