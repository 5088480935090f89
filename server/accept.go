package server

import (
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// Media types a route can serve, for the Accept check of API.md §1.
const (
	mediaJSON = "application/json"
	mediaText = "text/plain"
)

// Accept sets of the route table.
var (
	// acceptsJSON is what /api routes serve (the original's "json").
	acceptsJSON = []string{mediaJSON}
	// acceptsInfra is what the infra routes serve ("json" and "text").
	acceptsInfra = []string{mediaJSON, mediaText}
	// acceptsMetrics adds OpenMetrics, which Prometheus asks for first.
	acceptsMetrics = []string{mediaJSON, mediaText, "application/openmetrics-text"}
)

// acceptable reports whether an Accept header admits one of the offered
// media types, as Phoenix's accepts plug decides: no header, */*, a
// matching type/* or an exact match admit; entries that do not parse are
// skipped; q=0 refuses an entry.
func acceptable(header string, offered []string) bool {
	if strings.TrimSpace(header) == "" || len(offered) == 0 {
		return true
	}
	for _, entry := range strings.Split(header, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(entry))
		if err != nil || quality(params) <= 0 {
			continue
		}
		for _, o := range offered {
			if mediaMatches(mt, o) {
				return true
			}
		}
	}
	return false
}

// preferred returns which of a and b the Accept header ranks higher by
// q-value, counting only entries that name the type exactly; "" when
// neither is named. Ties go to a.
func preferred(header, a, b string) string {
	qa, qb := -1.0, -1.0
	for _, entry := range strings.Split(header, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(entry))
		if err != nil {
			continue
		}
		q := quality(params)
		switch mt {
		case a:
			qa = max(qa, q)
		case b:
			qb = max(qb, q)
		}
	}
	switch {
	case qa <= 0 && qb <= 0:
		return ""
	case qa >= qb:
		return a
	default:
		return b
	}
}

func mediaMatches(pattern, offered string) bool {
	if pattern == "*/*" || pattern == offered {
		return true
	}
	typ, sub, ok := strings.Cut(pattern, "/")
	return ok && sub == "*" && strings.HasPrefix(offered, typ+"/")
}

func quality(params map[string]string) float64 {
	v, ok := params["q"]
	if !ok {
		return 1
	}
	q, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0
	}
	return q
}

// notAcceptable answers 406 in the original's ErrorJSON shape.
func notAcceptable(w http.ResponseWriter) {
	writeJSON(w, http.StatusNotAcceptable, map[string]string{"error": "Not Acceptable", "status": "406"})
}
