package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// nowStamp prints a server-generated timestamp as the original does:
// ISO-8601 UTC with six fractional digits.
func nowStamp() string {
	return time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
}

// writeJSON writes v as JSON with the original's content type.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"Internal Server Error","status":"500"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeData writes the success envelope of the KillsController routes:
// {"data": …, "timestamp": …}.
func writeData(w http.ResponseWriter, status int, data any) {
	writeJSON(w, status, map[string]any{"data": data, "timestamp": nowStamp()})
}

// apiError is the error envelope of the KillsController routes (API.md
// §1): {"error", "code", "details", "timestamp"}. code is stable.
type apiError struct {
	Error     string         `json:"error"`
	Code      string         `json:"code"`
	Details   map[string]any `json:"details"`
	Timestamp string         `json:"timestamp"`
}

// writeError writes the envelope error with a stable code.
func writeError(w http.ResponseWriter, status int, code, msg string, details map[string]any) {
	writeJSON(w, status, apiError{Error: msg, Code: code, Details: details, Timestamp: nowStamp()})
}

// errorMap is the original's Error.to_map shape, used by SSE and health.
type errorMap struct {
	Domain    string         `json:"domain"`
	Type      string         `json:"type"`
	Message   string         `json:"message"`
	Details   map[string]any `json:"details"`
	Retryable bool           `json:"retryable"`
}

// writeErrorMap writes {"error": <Error map>}.
func writeErrorMap(w http.ResponseWriter, status int, e errorMap) {
	writeJSON(w, status, map[string]any{"error": e})
}

// writeSubError writes the subscription controller's error shape:
// {"error": {"message": M, "details": M}}.
func writeSubError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "details": msg}})
}

// notFound serves unknown paths: the envelope under /api/v1, the
// Phoenix ErrorJSON shape elsewhere (API.md §1).
func notFound(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/api/v1/") || strings.HasPrefix(r.URL.Path, "/api/v2/") {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Not Found", nil)
		return
	}
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "Not Found", "status": "404"})
}

// bodyTooLarge answers 413 for a body past the limit.
func bodyTooLarge(w http.ResponseWriter, limit int64) {
	writeError(w, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE",
		"Request body too large", map[string]any{"max_bytes": limit})
}
