package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// requireKey guards a write route with Config.APIKey: when a key is set,
// the request needs "Authorization: Bearer <key>" (compared in constant
// time) or gets 401. Without a key every request passes. Reads stay
// public: wrap only the routes that change state.
func (s *Server) requireKey(next httprouter.Handle) httprouter.Handle {
	if s.cfg.APIKey == "" {
		return next
	}
	want := sha256.Sum256([]byte(s.cfg.APIKey))
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		token, ok := bearer(r.Header.Get("Authorization"))
		got := sha256.Sum256([]byte(token))
		// Hashing first makes the compare constant-time in the key's
		// length as well.
		if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="wanderer-kills"`)
			writeError(w, http.StatusUnauthorized, "UNAUTHORIZED", "Missing or invalid API key", nil)
			return
		}
		next(w, r, ps)
	}
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
