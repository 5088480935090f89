package fakeupstream

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /r2z2/ephemeral/{file}", s.withFaults(R2Z2, true, s.serveR2Z2))
	mux.HandleFunc("GET /redisq/listen.php", s.withFaults(RedisQ, false, s.serveListen))
	mux.HandleFunc("GET /redisq/object.php", s.serveObject)
	mux.HandleFunc("GET /zkb/api/", s.withFaults(ZKB, true, s.serveZKB))
	s.esiRoutes(mux)
	return mux
}

// serveR2Z2 answers sequence.json and {seq}.json.
func (s *Server) serveR2Z2(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	if file == "sequence.json" {
		writeJSON(w, http.StatusOK, map[string]int64{"sequence": s.sequence()})
		return
	}
	seq, err := strconv.ParseInt(strings.TrimSuffix(file, ".json"), 10, 64)
	if err != nil || !strings.HasSuffix(file, ".json") {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	i := seq - s.opts.FirstSequence
	var doc []byte
	if i >= 0 && i < int64(len(s.r2z2)) {
		doc = s.r2z2[i]
	}
	s.mu.Unlock()
	if doc == nil {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code></Error>`))
		return
	}
	writeRaw(w, http.StatusOK, doc)
}

// sequence is what sequence.json says: the newest published sequence,
// lagging by SequenceStep, or the first sequence when nothing is
// published (a client starting there waits for the first release).
func (s *Server) sequence() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := int64(len(s.r2z2))
	if n == 0 {
		return s.opts.FirstSequence
	}
	return s.opts.FirstSequence + (n-1)/s.opts.SequenceStep*s.opts.SequenceStep
}

// serveListen is listen.php: one call per queue at a time, a wait of up
// to ttw seconds, then a 302 to object.php.
func (s *Server) serveListen(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("queueID")
	if id == "" {
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "queueID required"})
		return
	}
	q, ok := s.enter(id)
	if !ok {
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "one request at a time per queueID"})
		return
	}
	defer s.leave(q)
	deadline := time.NewTimer(s.ttw(r))
	defer deadline.Stop()
	for {
		obj, wake := s.pop(q)
		if obj != "" {
			http.Redirect(w, r, "/redisq/object.php?objectID="+obj, http.StatusFound)
			return
		}
		select {
		case <-wake:
		case <-deadline.C:
			http.Redirect(w, r, "/redisq/object.php?objectID=null", http.StatusFound)
			return
		case <-r.Context().Done():
			return
		case <-s.closing:
			return
		}
	}
}

func (s *Server) ttw(r *http.Request) time.Duration {
	ttw, err := strconv.Atoi(r.URL.Query().Get("ttw"))
	if err != nil || ttw < 1 || ttw > 10 {
		ttw = 10
	}
	d := time.Duration(ttw) * time.Second
	if s.opts.RedisQWait > 0 && s.opts.RedisQWait < d {
		d = s.opts.RedisQWait
	}
	return d
}

func (s *Server) enter(id string) (*queue, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[id]
	if q == nil {
		q = new(queue)
		s.queues[id] = q
	}
	if q.inFlight {
		s.conflicts++
		return nil, false
	}
	q.inFlight = true
	return q, true
}

func (s *Server) leave(q *queue) {
	s.mu.Lock()
	q.inFlight = false
	s.mu.Unlock()
}

// pop takes the queue's next package into a new object, or returns the
// channel that wakes on the next publication.
func (s *Server) pop(q *queue) (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q.next >= len(s.redisq) {
		return "", s.published
	}
	s.objectN++
	id := strconv.Itoa(s.objectN)
	s.objects[id] = s.redisq[q.next]
	q.next++
	return id, nil
}

// serveObject is object.php: the package of an object, {"package":null}
// for "null", 404 for an unknown object.
func (s *Server) serveObject(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("objectID")
	if id == "null" {
		writeRaw(w, http.StatusOK, []byte(`{"package":null}`))
		return
	}
	s.mu.Lock()
	body, ok := s.objects[id]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=10800")
	writeRaw(w, http.StatusOK, body)
}
