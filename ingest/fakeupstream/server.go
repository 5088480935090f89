// Package fakeupstream plays zKillboard (R2Z2, RedisQ, the API) and ESI
// over real HTTP, from the project's real fixtures, for tests of ingest,
// the HTTP API, the live feeds and the binary itself.
//
// One Server answers every upstream under its own path prefix:
//
//	/r2z2/ephemeral/sequence.json, /r2z2/ephemeral/{seq}.json
//	/redisq/listen.php (302 to /redisq/object.php?objectID=…)
//	/zkb/api/history/YYYYMMDD.json, /zkb/api/killID/{id}/,
//	/zkb/api/systemID/{id}/pastSeconds/{n}/
//	/esi/killmails/{id}/{hash}/, POST /esi/universe/names/,
//	/esi/corporations/{id}/, /esi/alliances/{id}/, /esi/characters/{id}/,
//	/esi/universe/types/{id}/, /esi/universe/systems/{id}/
//
// Killmails are published to the live feeds only when released (Release,
// ReleaseAll, PushR2Z2, PushRedisQ): until then R2Z2 answers 404 for their
// sequences and RedisQ queues stay empty. ESI and the zKillboard API know
// every killmail of the catalog whether released or not. Each upstream has
// fault knobs (SetFaults).
//
// This package is for tests only; it imports nothing of the project.
package fakeupstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Options configure a Server. The zero value serves the project fixtures
// with healthy upstreams and nothing released.
type Options struct {
	// Fixtures is the fixtures tree (killmails.jsonl, killmails-index.csv,
	// zkb/…). Nil means DefaultFixtures() on disk.
	Fixtures fs.FS
	// FirstSequence is the R2Z2 sequence of the first released killmail.
	// Zero means 900001.
	FirstSequence int64
	// SequenceStep makes sequence.json lag: it answers the newest released
	// sequence rounded down to a multiple of this step past FirstSequence,
	// like the real file that is rewritten every ~50 kills. Zero means 1.
	SequenceStep int64
	// R2Z2NoBodyEvery drops the esi body from every Nth released R2Z2
	// document (counted from 1), so the client must fetch it from ESI.
	// Zero means never.
	R2Z2NoBodyEvery int
	// RedisQBodyEvery embeds the killmail in every Nth released RedisQ
	// package (the pre-2025-12 shape); the others carry id and hash only.
	// Zero means never.
	RedisQBodyEvery int
	// ZKBFullBodies makes the zKillboard API answer the post-2026-06 shape
	// (ESI body plus zkb) instead of {killmail_id, zkb}.
	ZKBFullBodies bool
	// RedisQWait caps how long listen.php waits for a package (ttw).
	// Zero means ttw seconds as asked, up to 10 s.
	RedisQWait time.Duration
	// ErrorLimitReset is X-ESI-Error-Limit-Reset when ESI is error
	// limited. Zero means 1 s.
	ErrorLimitReset time.Duration
	// Now is the clock of pastSeconds queries. Nil means time.Now.
	Now func() time.Time
	// Seed seeds the fault dice. Zero means 1.
	Seed uint64
}

func (o *Options) defaults() {
	if o.Fixtures == nil {
		o.Fixtures = osFS(DefaultFixtures())
	}
	if o.FirstSequence <= 0 {
		o.FirstSequence = 900001
	}
	if o.SequenceStep <= 0 {
		o.SequenceStep = 1
	}
	if o.ErrorLimitReset < time.Second {
		o.ErrorLimitReset = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
}

// Server is a fake of zKillboard and ESI. All methods are safe for
// concurrent use.
type Server struct {
	opts    Options
	mux     *http.ServeMux
	closing chan struct{}
	stop    sync.Once

	mu        sync.Mutex
	url       string
	rng       *rand.Rand
	faults    map[Upstream]Faults
	catalog   []Killmail
	byID      map[int64]int
	cats      categories
	zkbFiles  map[int64][]byte
	pending   int      // index in catalog of the next killmail to release
	r2z2      [][]byte // published documents; r2z2[i] is FirstSequence+i
	redisq    [][]byte // published packages
	queues    map[string]*queue
	objects   map[string][]byte
	objectN   int
	published chan struct{} // closed and replaced on every publication
	requests  map[Upstream]int
	conflicts int
	garbage   int
	garbageN  int // cycles the garbage kinds
}

type queue struct {
	next     int
	inFlight bool
}

// NewServer loads the fixtures and builds a Server without a listener: use
// Handler, Serve or ListenAndServe.
func NewServer(opts Options) (*Server, error) {
	opts.defaults()
	kms, err := LoadKillmails(opts.Fixtures)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:      opts,
		closing:   make(chan struct{}),
		rng:       rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		faults:    make(map[Upstream]Faults),
		byID:      make(map[int64]int),
		cats:      make(categories),
		zkbFiles:  make(map[int64][]byte),
		queues:    make(map[string]*queue),
		objects:   make(map[string][]byte),
		published: make(chan struct{}),
		requests:  make(map[Upstream]int),
	}
	for _, km := range kms {
		s.addLocked(km)
	}
	if err := s.loadZKBFiles(); err != nil {
		return nil, err
	}
	s.mux = s.routes()
	return s, nil
}

// New starts a Server on a loopback httptest listener and closes it when
// the test ends. It fails the test if the fixtures cannot be loaded.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := NewServer(opts)
	if err != nil {
		t.Fatalf("fakeupstream: %v", err)
	}
	ts := httptest.NewUnstartedServer(s.mux)
	ts.Start()
	s.setURL(ts.URL)
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s
}

// Handler serves every upstream.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve answers on ln until ctx ends; then it wakes pending long polls and
// shuts down. It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.setURL("http://" + ln.Addr().String())
	hs := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("fakeupstream: shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Listen opens a listener on addr (for example "127.0.0.1:0") and sets
// URL from it, so a caller knows the address before Serve runs.
func (s *Server) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("fakeupstream: %w", err)
	}
	s.setURL("http://" + ln.Addr().String())
	return ln, nil
}

// ListenAndServe listens on addr and serves until ctx ends. Use Listen
// and Serve instead when the caller needs URL before serving starts.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	ln, err := s.Listen(addr)
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Close wakes every pending long poll; the listener is the caller's (or
// New's cleanup).
func (s *Server) Close() { s.stop.Do(func() { close(s.closing) }) }

func (s *Server) setURL(u string) {
	s.mu.Lock()
	s.url = u
	s.mu.Unlock()
}

// URL is the server's base URL ("http://127.0.0.1:port"), empty until it
// listens.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.url
}

// R2Z2URL is the R2Z2 base (WK_R2Z2_URL): /ephemeral/… is appended.
func (s *Server) R2Z2URL() string { return s.URL() + "/r2z2" }

// RedisQURL is the RedisQ listen endpoint (WK_REDISQ_URL).
func (s *Server) RedisQURL() string { return s.URL() + "/redisq/listen.php" }

// ZKBURL is the zKillboard API base (WK_ZKB_URL).
func (s *Server) ZKBURL() string { return s.URL() + "/zkb/api" }

// ESIURL is the ESI base (WK_ESI_URL).
func (s *Server) ESIURL() string { return s.URL() + "/esi" }

// FirstSequence is the R2Z2 sequence of the first released killmail.
func (s *Server) FirstSequence() int64 { return s.opts.FirstSequence }

// SetFaults replaces the faults of one upstream. The zero Faults heals it.
func (s *Server) SetFaults(u Upstream, f Faults) {
	s.mu.Lock()
	s.faults[u] = f
	s.mu.Unlock()
}

// ClearFaults heals every upstream.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	clear(s.faults)
	s.mu.Unlock()
}

// Stats are counts of what the fake saw.
type Stats struct {
	// Requests by upstream, faults included.
	Requests map[Upstream]int
	// RedisQConflicts counts listen calls refused with 429 because the
	// same queue already had one in flight.
	RedisQConflicts int
	// Garbage counts garbage answers sent.
	Garbage int
	// Released is how many catalog killmails were released.
	Released int
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := make(map[Upstream]int, len(s.requests))
	for k, v := range s.requests {
		req[k] = v
	}
	return Stats{Requests: req, RedisQConflicts: s.conflicts, Garbage: s.garbage, Released: s.pending}
}

func (s *Server) count(u Upstream) {
	s.mu.Lock()
	s.requests[u]++
	s.mu.Unlock()
}

// Killmails returns the catalog: the fixture killmails in release order,
// then the ones added with Add.
func (s *Server) Killmails() []Killmail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Killmail(nil), s.catalog...)
}

// Killmail returns one catalog killmail by id.
func (s *Server) Killmail(id int64) (Killmail, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.byID[id]
	if !ok {
		return Killmail{}, false
	}
	return s.catalog[i], true
}

// Add appends a killmail to the catalog: ESI and the zKillboard API know
// it at once, the live feeds once it is released in its turn.
func (s *Server) Add(km Killmail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addLocked(km)
}

func (s *Server) addLocked(km Killmail) {
	if i, ok := s.byID[km.ID]; ok {
		s.catalog[i] = km
	} else {
		s.byID[km.ID] = len(s.catalog)
		s.catalog = append(s.catalog, km)
	}
	s.cats.addKillmail(km.ESI)
}

// Release publishes the next n catalog killmails to R2Z2 and RedisQ and
// returns how many it published (fewer at the end of the catalog).
func (s *Server) Release(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	done := 0
	for ; done < n && s.pending < len(s.catalog); done++ {
		km := s.catalog[s.pending]
		s.pending++
		s.r2z2 = append(s.r2z2, s.r2z2Doc(km, s.pending))
		s.redisq = append(s.redisq, s.redisqPackage(km, s.pending))
	}
	if done > 0 {
		s.wakeLocked()
	}
	return done
}

// ReleaseAll publishes every catalog killmail not yet released.
func (s *Server) ReleaseAll() int { return s.Release(len(s.Killmails())) }

// Released returns how many catalog killmails were released.
func (s *Server) Released() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending
}

// PushR2Z2 publishes a raw document at the next R2Z2 sequence (garbage and
// odd shapes included) and returns that sequence.
func (s *Server) PushR2Z2(raw []byte) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.r2z2 = append(s.r2z2, append([]byte(nil), raw...))
	s.wakeLocked()
	return s.opts.FirstSequence + int64(len(s.r2z2)) - 1
}

// PushRedisQ queues a raw package body (the whole {"package":…} object)
// for every RedisQ queue.
func (s *Server) PushRedisQ(raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.redisq = append(s.redisq, append([]byte(nil), raw...))
	s.wakeLocked()
}

// R2Z2Document returns the R2Z2 document the fake publishes for a catalog
// killmail at a sequence, esi body included.
func (s *Server) R2Z2Document(id, sequence int64) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	return s.r2z2DocAt(s.catalog[i], sequence, true), true
}

func (s *Server) wakeLocked() {
	close(s.published)
	s.published = make(chan struct{})
}

func (s *Server) r2z2Doc(km Killmail, n int) []byte {
	withBody := s.opts.R2Z2NoBodyEvery <= 0 || n%s.opts.R2Z2NoBodyEvery != 0
	return s.r2z2DocAt(km, s.opts.FirstSequence+int64(len(s.r2z2)), withBody)
}

func (s *Server) r2z2DocAt(km Killmail, seq int64, withBody bool) []byte {
	doc := map[string]any{
		"killmail_id": km.ID,
		"hash":        km.Hash,
		"zkb":         zkbBlock(km, s.url+"/esi"),
		"uploaded_at": s.opts.Now().Unix(),
		"sequence_id": seq,
	}
	if withBody {
		doc["esi"] = km.ESI
	}
	return mustJSON(doc)
}

func (s *Server) redisqPackage(km Killmail, n int) []byte {
	pkg := map[string]any{"killID": km.ID, "zkb": zkbBlock(km, s.url+"/esi")}
	if s.opts.RedisQBodyEvery > 0 && n%s.opts.RedisQBodyEvery == 0 {
		pkg["killmail"] = km.ESI
	}
	return mustJSON(map[string]any{"package": pkg})
}

func (s *Server) loadZKBFiles() error {
	for _, id := range []int64{92805575, 131632081} {
		b, err := readFixture(s.opts.Fixtures, fmt.Sprintf("zkb/api-killID-%d.json", id))
		if err != nil {
			return err
		}
		s.zkbFiles[id] = b
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakeupstream: encode: %v", err))
	}
	return b
}

func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}
