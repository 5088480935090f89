package fakeupstream

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serveZKB is the zKillboard API: the URL grammar of FORMATS.md §3 (a
// trailing slash, no query string), errors as {"error":…} with 200.
func (s *Server) serveZKB(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawQuery != "" {
		writeJSON(w, http.StatusForbidden, map[string]string{"error": "Do not include a query string to evade cache"})
		return
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/zkb/api/"), "/")
	if len(parts) == 2 && parts[0] == "history" {
		s.serveHistory(w, parts[1])
		return
	}
	if len(parts) < 2 || parts[len(parts)-1] != "" {
		writeJSON(w, http.StatusOK, map[string]string{"error": "Invalid URL: a trailing slash is required"})
		return
	}
	parts = parts[:len(parts)-1]
	switch {
	case len(parts) == 2 && parts[0] == "killID":
		s.serveKillID(w, parts[1])
	case len(parts) == 4 && parts[0] == "systemID" && parts[2] == "pastSeconds":
		s.serveSystem(w, parts[1], parts[3])
	default:
		writeJSON(w, http.StatusOK, map[string]string{"error": "Invalid or unsupported modifier"})
	}
}

func (s *Server) serveHistory(w http.ResponseWriter, file string) {
	day, err := time.Parse("20060102.json", file)
	if err != nil {
		http.NotFound(w, nil)
		return
	}
	out := make(map[string]string)
	for _, km := range s.Killmails() {
		if km.Time.Truncate(24 * time.Hour).Equal(day) {
			out[strconv.FormatInt(km.ID, 10)] = km.Hash
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) serveKillID(w http.ResponseWriter, raw string) {
	id, err := positiveID(raw)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]string{"error": "Invalid killID"})
		return
	}
	km, ok := s.Killmail(id)
	if !ok || !s.opts.ZKBFullBodies {
		if file, ok := s.zkbFiles[id]; ok {
			writeRaw(w, http.StatusOK, file)
			return
		}
	}
	if !ok {
		writeRaw(w, http.StatusOK, []byte("[]"))
		return
	}
	writeRaw(w, http.StatusOK, s.zkbArray([]Killmail{km}))
}

func (s *Server) serveSystem(w http.ResponseWriter, rawID, rawSeconds string) {
	system, err := positiveID(rawID)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]string{"error": "Invalid systemID"})
		return
	}
	secs, err := positiveID(rawSeconds)
	if err != nil || secs%3600 != 0 || secs > 604800 {
		writeJSON(w, http.StatusOK, map[string]string{"error": "pastSeconds must be a multiple of 3600 and at most 604800"})
		return
	}
	since := s.opts.Now().Add(-time.Duration(secs) * time.Second)
	var hits []Killmail
	for _, km := range s.Killmails() {
		if km.SystemID == system && !km.Time.Before(since) {
			hits = append(hits, km)
		}
	}
	writeRaw(w, http.StatusOK, s.zkbArray(hits))
}

// zkbArray renders killmails in the shape the options ask for.
func (s *Server) zkbArray(kms []Killmail) []byte {
	out := make([]json.RawMessage, 0, len(kms))
	for _, km := range kms {
		zkb := zkbBlock(km, "")
		if !s.opts.ZKBFullBodies {
			out = append(out, mustJSON(map[string]any{"killmail_id": km.ID, "zkb": zkb}))
			continue
		}
		var body map[string]json.RawMessage
		if err := json.Unmarshal(km.ESI, &body); err != nil {
			continue
		}
		body["zkb"] = mustJSON(zkb)
		out = append(out, mustJSON(body))
	}
	return mustJSON(out)
}

func positiveID(raw string) (int64, error) {
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 || strings.HasPrefix(raw, "0") {
		return 0, strconv.ErrSyntax
	}
	return id, nil
}

func (s *Server) esiRoutes(mux *http.ServeMux) {
	for _, route := range []struct {
		pattern string
		h       http.HandlerFunc
	}{
		{"GET /esi/killmails/{id}/{hash}", s.serveESIKillmail},
		{"POST /esi/universe/names", s.serveNames},
		{"GET /esi/corporations/{id}", s.serveCorporation},
		{"GET /esi/alliances/{id}", s.serveAlliance},
		{"GET /esi/characters/{id}", s.serveCharacter},
		{"GET /esi/universe/types/{id}", s.serveType},
		{"GET /esi/universe/systems/{id}", s.serveSystemInfo},
	} {
		h := s.withFaults(ESI, true, s.esiHeaders(route.h))
		mux.HandleFunc(route.pattern+"/{$}", h)
		mux.HandleFunc(route.pattern, h)
	}
}

// esiHeaders adds the error-budget headers every ESI answer carries.
func (s *Server) esiHeaders(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-ESI-Error-Limit-Remain", "100")
		w.Header().Set("X-ESI-Error-Limit-Reset", "60")
		h(w, r)
	}
}

func esiError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (s *Server) serveESIKillmail(w http.ResponseWriter, r *http.Request) {
	id, err := positiveID(r.PathValue("id"))
	if err != nil {
		esiError(w, http.StatusBadRequest, "Invalid killmail_id")
		return
	}
	km, ok := s.Killmail(id)
	if !ok || km.Hash != r.PathValue("hash") {
		esiError(w, http.StatusUnprocessableEntity, "Invalid killmail_id and/or killmail_hash")
		return
	}
	writeRaw(w, http.StatusOK, km.ESI)
}

func (s *Server) serveNames(w http.ResponseWriter, r *http.Request) {
	var ids []int64
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&ids); err != nil {
		esiError(w, http.StatusBadRequest, "Invalid body: "+err.Error())
		return
	}
	if len(ids) == 0 || len(ids) > 1000 {
		esiError(w, http.StatusBadRequest, "ids must hold 1 to 1000 ids")
		return
	}
	type name struct {
		Category string `json:"category"`
		ID       int64  `json:"id"`
		Name     string `json:"name"`
	}
	seen := make(map[int64]bool, len(ids))
	out := make([]name, 0, len(ids))
	for _, id := range ids {
		if id <= 0 {
			esiError(w, http.StatusNotFound, "Ensure all IDs are valid before resolving")
			return
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		cat := s.category(id)
		out = append(out, name{Category: cat, ID: id, Name: Name(cat, id)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) category(id int64) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cats.of(id)
}

// entity parses {id} and answers 404 unless the id is of the category.
func (s *Server) entity(w http.ResponseWriter, r *http.Request, category string) (int64, bool) {
	id, err := positiveID(r.PathValue("id"))
	if err != nil {
		esiError(w, http.StatusBadRequest, "Invalid id")
		return 0, false
	}
	if s.category(id) != category {
		esiError(w, http.StatusNotFound, category+" not found")
		return 0, false
	}
	return id, true
}

func (s *Server) serveCorporation(w http.ResponseWriter, r *http.Request) {
	if id, ok := s.entity(w, r, CategoryCorporation); ok {
		writeJSON(w, http.StatusOK, map[string]any{
			"name": Name(CategoryCorporation, id), "ticker": Ticker(CategoryCorporation, id),
			"member_count": 10, "ceo_id": 1, "tax_rate": 0.1,
		})
	}
}

func (s *Server) serveAlliance(w http.ResponseWriter, r *http.Request) {
	if id, ok := s.entity(w, r, CategoryAlliance); ok {
		writeJSON(w, http.StatusOK, map[string]any{
			"name": Name(CategoryAlliance, id), "ticker": Ticker(CategoryAlliance, id),
			"creator_id": 1, "creator_corporation_id": 1, "date_founded": "2016-06-26T21:00:00Z",
		})
	}
}

func (s *Server) serveCharacter(w http.ResponseWriter, r *http.Request) {
	if id, ok := s.entity(w, r, CategoryCharacter); ok {
		writeJSON(w, http.StatusOK, map[string]any{
			"name": Name(CategoryCharacter, id), "corporation_id": 1000001,
			"birthday": "2015-03-24T11:37:00Z", "gender": "female", "race_id": 1, "bloodline_id": 1,
		})
	}
}

func (s *Server) serveType(w http.ResponseWriter, r *http.Request) {
	if id, ok := s.entity(w, r, CategoryType); ok {
		writeJSON(w, http.StatusOK, map[string]any{
			"type_id": id, "name": Name(CategoryType, id), "group_id": 25, "published": true,
			"description": "A fake type.",
		})
	}
}

func (s *Server) serveSystemInfo(w http.ResponseWriter, r *http.Request) {
	if id, ok := s.entity(w, r, CategorySystem); ok {
		writeJSON(w, http.StatusOK, map[string]any{
			"system_id": id, "name": Name(CategorySystem, id), "constellation_id": 20000001,
			"security_status": 0.5,
		})
	}
}
