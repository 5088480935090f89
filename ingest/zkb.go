package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// DefaultZKBURL is zKillboard's API base.
const DefaultZKBURL = "https://zkillboard.com/api"

// ZKBConfig configures a ZKB client. Zero values mean the defaults.
type ZKBConfig struct {
	// URL is the API base. Zero means DefaultZKBURL.
	URL string
	// RatePerSecond paces requests. Zero means 1 (zKillboard's polite
	// rate); Burst is the bucket size, zero means 1.
	RatePerSecond float64
	Burst         int
	// Timeout bounds one request. Zero means 60s (history days are big).
	Timeout time.Duration
	// MaxBodyBytes caps an answer. Zero means 64 MiB.
	MaxBodyBytes int64
	// UserAgent is sent on every request. Zero means DefaultUserAgent.
	UserAgent string
	// Registerer receives the client's collectors. Nil means none.
	Registerer prometheus.Registerer
}

func (c *ZKBConfig) defaults() {
	setDefault(&c.URL, DefaultZKBURL)
	c.URL = strings.TrimRight(c.URL, "/")
	setDefault(&c.RatePerSecond, 1)
	setDefault(&c.Burst, 1)
	setDefault(&c.Timeout, 60*time.Second)
	setDefault(&c.MaxBodyBytes, 64<<20)
	setDefault(&c.UserAgent, DefaultUserAgent)
}

// Validate reports the first field that cannot work.
func (c ZKBConfig) Validate() error {
	if err := validateURL("zKillboard URL", c.URL); err != nil {
		return err
	}
	if c.RatePerSecond < 0 || c.Burst < 0 || c.Timeout < 0 || c.MaxBodyBytes < 0 {
		return errors.New("ingest: zKillboard rate, burst, timeout and body cap must not be negative")
	}
	return nil
}

// ZKB is a client of the zKillboard API (FORMATS.md §3): the daily
// history and killmails by id or by system. It accepts both answer
// shapes: {killmail_id, zkb} only, or the full ESI body with zkb. It is
// safe for concurrent use; requests share one rate limiter.
type ZKB struct {
	cfg ZKBConfig
	get getter
	lim *rate.Limiter
	log *slog.Logger
	m   *zkbMetrics
}

// NewZKB builds a zKillboard client.
func NewZKB(cfg ZKBConfig, hc *http.Client, log *slog.Logger) *ZKB {
	cfg.defaults()
	if hc == nil {
		hc = http.DefaultClient
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &ZKB{
		cfg: cfg,
		get: getter{hc: hc, userAgent: cfg.UserAgent, timeout: cfg.Timeout, maxBody: cfg.MaxBodyBytes},
		lim: rate.NewLimiter(rate.Limit(cfg.RatePerSecond), cfg.Burst),
		log: log.With("component", "zkb"),
		m:   newZKBMetrics(cfg.Registerer),
	}
}

// Entry is one killmail of a zKillboard answer.
type Entry struct {
	ID  int64
	ZKB *store.ZKB
	// Killmail is the ESI body when the answer carried it (mapped, not
	// validated); nil when only the zkb block came.
	Killmail *store.Killmail
}

// Item turns the entry into a pipeline item.
func (e Entry) Item() Item {
	it := Item{KillmailID: e.ID, ZKB: e.ZKB, Killmail: e.Killmail}
	if e.ZKB != nil {
		it.Hash = e.ZKB.Hash
	}
	return it
}

// History returns the id → hash map of every killmail of a UTC day.
func (z *ZKB) History(ctx context.Context, day time.Time) (map[int64]string, error) {
	body, err := z.call(ctx, "history", z.cfg.URL+"/history/"+day.UTC().Format("20060102")+".json")
	if err != nil {
		return nil, err
	}
	if err := expectObject(body); err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, classify(body, err)
	}
	if msg, ok := raw["error"]; ok {
		return nil, fmt.Errorf("ingest: zkillboard history: %s", msg)
	}
	out := make(map[int64]string, len(raw))
	for k, v := range raw {
		id, err := strconv.ParseInt(k, 10, 64)
		var hash string
		if err != nil || id <= 0 || json.Unmarshal(v, &hash) != nil || !validHash(hash) {
			return nil, garbage(ReasonWrongType, fmt.Sprintf("history entry %q: %s", k, snippet(v, 48)))
		}
		out[id] = hash
	}
	return out, nil
}

// Killmail returns one killmail by id, or ErrNotFound.
func (z *ZKB) Killmail(ctx context.Context, id int64) (Entry, error) {
	if id <= 0 {
		return Entry{}, fmt.Errorf("ingest: killmail id %d: %w", id, ErrNotFound)
	}
	es, err := z.entries(ctx, "killID", fmt.Sprintf("%s/killID/%d/", z.cfg.URL, id))
	if err != nil {
		return Entry{}, err
	}
	for _, e := range es {
		if e.ID == id {
			return e, nil
		}
	}
	return Entry{}, fmt.Errorf("ingest: zkillboard killmail %d: %w", id, ErrNotFound)
}

// SystemKills returns the killmails of a system in the last pastSeconds,
// which zKillboard wants a multiple of 3600 up to 604800 (7 days).
func (z *ZKB) SystemKills(ctx context.Context, systemID int64, pastSeconds int) ([]Entry, error) {
	if systemID <= 0 || pastSeconds <= 0 || pastSeconds%3600 != 0 || pastSeconds > 604800 {
		return nil, fmt.Errorf("ingest: zkillboard system %d past %ds: want a positive id and a multiple of 3600 up to 604800",
			systemID, pastSeconds)
	}
	return z.entries(ctx, "systemID", fmt.Sprintf("%s/systemID/%d/pastSeconds/%d/", z.cfg.URL, systemID, pastSeconds))
}

// call makes one paced request and returns a 200 body.
func (z *ZKB) call(ctx context.Context, route, url string) ([]byte, error) {
	if err := z.lim.Wait(ctx); err != nil {
		return nil, err
	}
	rep, err := z.get.get(ctx, url)
	z.m.requests.WithLabelValues(route, statusLabel(rep, err)).Inc()
	switch {
	case err != nil:
		return nil, err
	case strings.Contains(rep.url, "/blocked.json"):
		return nil, fmt.Errorf("ingest: zkillboard %s: redirected to blocked.json: %w", route, ErrBlocked)
	case rep.status != http.StatusOK:
		return nil, rep.statusError()
	}
	return rep.body, nil
}

// entryWire is one element of an answer, in either shape.
type entryWire struct {
	KillmailID int64           `json:"killmail_id"`
	ZKB        *store.ZKB      `json:"zkb"`
	Victim     json.RawMessage `json:"victim"`
	Attackers  json.RawMessage `json:"attackers"`
}

func (z *ZKB) entries(ctx context.Context, route, url string) ([]Entry, error) {
	body, err := z.call(ctx, route, url)
	if err != nil {
		return nil, err
	}
	return DecodeZKB(body)
}

// DecodeZKB decodes a zKillboard API answer: an array of {killmail_id,
// zkb} or of full ESI bodies with zkb. An {"error": …} object is returned
// as an error; anything else malformed is a *GarbageError.
func DecodeZKB(body []byte) ([]Entry, error) {
	t := bytes.TrimSpace(body)
	if len(t) > 0 && t[0] == '{' {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(t, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("ingest: zkillboard: %s", e.Error)
		}
	}
	if err := expectArray(t); err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(t, &raws); err != nil {
		return nil, classify(body, err)
	}
	out := make([]Entry, 0, len(raws))
	for _, raw := range raws {
		e, err := decodeEntry(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

func decodeEntry(raw json.RawMessage) (Entry, error) {
	if err := expectObject(raw); err != nil {
		return Entry{}, err
	}
	var w entryWire
	if err := json.Unmarshal(raw, &w); err != nil {
		return Entry{}, classify(raw, err)
	}
	if w.KillmailID <= 0 {
		return Entry{}, garbage(ReasonMissingField, "entry without a positive killmail_id")
	}
	if w.ZKB != nil && w.ZKB.Hash != "" && !validHash(w.ZKB.Hash) {
		return Entry{}, garbage(ReasonBadHash, fmt.Sprintf("killmail %d", w.KillmailID))
	}
	e := Entry{ID: w.KillmailID, ZKB: w.ZKB}
	if w.Victim == nil || w.Attackers == nil {
		if w.ZKB == nil || w.ZKB.Hash == "" {
			return Entry{}, garbage(ReasonMissingField, fmt.Sprintf("killmail %d: neither a body nor a hash", w.KillmailID))
		}
		return e, nil
	}
	km, err := decodeBody(raw)
	if err != nil {
		return Entry{}, err
	}
	km.ZKB = w.ZKB
	km.Normalize()
	e.Killmail = km
	return e, nil
}
