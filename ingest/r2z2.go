package ingest

import (
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

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// DefaultR2Z2URL is zKillboard's R2Z2 base.
const DefaultR2Z2URL = "https://r2z2.zkillboard.com"

// maxR2Z2Rate keeps the feed under R2Z2's 20 requests/s limit.
const maxR2Z2Rate = 19

// R2Z2Config configures an R2Z2 feed. Zero values mean the defaults.
type R2Z2Config struct {
	// URL is the R2Z2 base; /ephemeral/… is appended. Zero means
	// DefaultR2Z2URL.
	URL string
	// Start is the sequence to begin at when the store holds no cursor.
	// Zero means the value of sequence.json (that entry included).
	Start int64
	// RatePerSecond paces requests. Zero means 10. Validate refuses 20 or
	// more (R2Z2's limit); tests may go faster against a fake.
	RatePerSecond float64
	// NotFoundWait is the pause after a 404 (caught up) before the same
	// sequence is asked again. Zero means 6s.
	NotFoundWait time.Duration
	// BlockedWait is the pause after 403, 420 or 429. Zero means 30s.
	BlockedWait time.Duration
	// BackoffMin and BackoffMax bound the doubling pause after 5xx,
	// transport errors and garbage. Zero means 1s and 2m.
	BackoffMin, BackoffMax time.Duration
	// StallAfter is how long 404s on one sequence may last before
	// sequence.json is read again and, when it is ahead, the feed jumps
	// to it (R2Z2 can have gaps). Zero means 10m.
	StallAfter time.Duration
	// SequenceInterval is how often sequence.json is read to know the lag.
	// Zero means 5m.
	SequenceInterval time.Duration
	// PoisonAfter is how many times a document may decode to a wrong
	// shape, without ever decoding, before it is skipped (retrying cannot
	// fix it). HTML, truncated and empty bodies never count. Zero means 20.
	PoisonAfter int
	// Timeout bounds one request. Zero means 30s.
	Timeout time.Duration
	// MaxBodyBytes caps a document. Zero means 16 MiB.
	MaxBodyBytes int64
	// UserAgent is sent on every request. Zero means DefaultUserAgent.
	UserAgent string
	// Registerer receives the feed's collectors. Nil means none.
	Registerer prometheus.Registerer
}

func (c *R2Z2Config) defaults() {
	setDefault(&c.URL, DefaultR2Z2URL)
	c.URL = strings.TrimRight(c.URL, "/")
	setDefault(&c.RatePerSecond, 10)
	setDefault(&c.NotFoundWait, 6*time.Second)
	setDefault(&c.BlockedWait, 30*time.Second)
	setDefault(&c.BackoffMin, time.Second)
	setDefault(&c.BackoffMax, 2*time.Minute)
	setDefault(&c.StallAfter, 10*time.Minute)
	setDefault(&c.SequenceInterval, 5*time.Minute)
	setDefault(&c.PoisonAfter, 20)
	setDefault(&c.Timeout, 30*time.Second)
	setDefault(&c.MaxBodyBytes, 16<<20)
	setDefault(&c.UserAgent, DefaultUserAgent)
}

// Validate reports the first field that cannot work.
func (c R2Z2Config) Validate() error {
	if err := validateURL("R2Z2 URL", c.URL); err != nil {
		return err
	}
	switch {
	case c.Start < 0:
		return fmt.Errorf("ingest: R2Z2 start %d must not be negative", c.Start)
	case c.RatePerSecond < 0 || c.RatePerSecond > maxR2Z2Rate:
		return fmt.Errorf("ingest: R2Z2 rate %.1f/s must be under 20/s", c.RatePerSecond)
	case c.NotFoundWait < 0 || c.BlockedWait < 0 || c.BackoffMin < 0 || c.BackoffMax < 0 ||
		c.StallAfter < 0 || c.SequenceInterval < 0 || c.Timeout < 0:
		return errors.New("ingest: R2Z2 durations must not be negative")
	}
	return nil
}

// R2Z2 follows zKillboard's R2Z2 feed (FORMATS.md §2): it walks the
// sequence numbers one by one, stores each killmail with the sequence in
// the same commit, and never advances past a sequence it failed to handle.
type R2Z2 struct {
	feed
	cfg R2Z2Config

	// Owned by Run.
	next       int64
	upstream   int64
	stallSince time.Time
	seqReadAt  time.Time
	poison     int
}

// NewR2Z2 builds an R2Z2 feed that hands what it reads to proc and keeps
// its cursor in kv (the same store proc writes to).
func NewR2Z2(cfg R2Z2Config, hc *http.Client, proc Processor, kv KV, log *slog.Logger) *R2Z2 {
	cfg.defaults()
	return &R2Z2{cfg: cfg, feed: newFeed(feedParams{
		source: "r2z2", userAgent: cfg.UserAgent, timeout: cfg.Timeout, maxBody: cfg.MaxBodyBytes,
		ratePerSecond: cfg.RatePerSecond, backoffMin: cfg.BackoffMin, backoffMax: cfg.BackoffMax,
		registerer: cfg.Registerer,
	}, hc, proc, kv, log)}
}

// Run follows the feed until ctx ends, then returns nil. It returns an
// error only when the store cannot be read at start.
func (r *R2Z2) Run(ctx context.Context) error {
	defer r.st.set(StateStopped)
	next, err := r.resume(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	r.next = next
	r.log.InfoContext(ctx, "following R2Z2", "url", r.cfg.URL, "next_sequence", next)
	for {
		if sleep(ctx, r.step(ctx)) != nil {
			return nil
		}
	}
}

// resume finds the first sequence to ask for: after the stored cursor,
// else Start, else sequence.json (asked until it answers).
func (r *R2Z2) resume(ctx context.Context) (int64, error) {
	b, err := r.kv.GetKV(ctx, KeyR2Z2Sequence)
	switch {
	case err == nil:
		if seq, perr := strconv.ParseInt(string(b), 10, 64); perr == nil && seq > 0 {
			r.setHandled(seq)
			return seq + 1, nil
		}
		r.log.ErrorContext(ctx, "stored R2Z2 cursor is unreadable; starting afresh", "value", string(b))
	case !errors.Is(err, store.ErrNotFound):
		return 0, fmt.Errorf("ingest: read R2Z2 cursor: %w", err)
	}
	if r.cfg.Start > 0 {
		return r.cfg.Start, nil
	}
	for {
		seq, err := r.readSequence(ctx)
		if err == nil {
			return seq, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err := sleep(ctx, r.failed(ctx, fmt.Errorf("read sequence.json: %w", err))); err != nil {
			return 0, err
		}
	}
}

// step asks for the next sequence once and returns the pause to take.
func (r *R2Z2) step(ctx context.Context) time.Duration {
	if time.Since(r.seqReadAt) >= r.cfg.SequenceInterval {
		if _, err := r.readSequence(ctx); err != nil && ctx.Err() == nil {
			r.log.DebugContext(ctx, "sequence.json unavailable", "err", err)
		}
	}
	if r.lim.Wait(ctx) != nil {
		return 0
	}
	rep, err := r.get.get(ctx, fmt.Sprintf("%s/ephemeral/%d.json", r.cfg.URL, r.next))
	r.m.requests.WithLabelValues("r2z2", statusLabel(rep, err)).Inc()
	switch {
	case err != nil:
		return r.failed(ctx, err)
	case rep.status == http.StatusOK:
		return r.handle(ctx, rep.body)
	case rep.status == http.StatusNotFound:
		return r.caughtUp(ctx)
	case blocked(rep.status):
		se := rep.statusError()
		r.st.fail(se)
		r.log.WarnContext(ctx, "R2Z2 asks us to slow down", "status", rep.status, "sequence", r.next)
		return max(r.cfg.BlockedWait, se.RetryAfter)
	default:
		return r.failed(ctx, rep.statusError())
	}
}

// handle decodes and stores one document, advancing only on success.
func (r *R2Z2) handle(ctx context.Context, body []byte) time.Duration {
	doc, err := DecodeR2Z2(body)
	if err != nil {
		return r.refuse(ctx, err)
	}
	r.poison = 0 // it decoded once: not poison, whatever comes next
	if doc.Sequence != 0 && doc.Sequence != r.next {
		r.log.WarnContext(ctx, "R2Z2 document carries another sequence_id", "asked", r.next, "sequence_id", doc.Sequence)
	}
	res, err := r.proc.Process(ctx, []Item{doc.Item}, cursorKV(r.next))
	if err != nil {
		return r.failed(ctx, err)
	}
	stored := r.count(ctx, res)
	r.advance(doc.UploadedAt, stored)
	return 0
}

// refuse handles a garbage document: back off and ask again, unless the
// same sequence keeps coming back in a wrong shape; then skip it.
func (r *R2Z2) refuse(ctx context.Context, err error) time.Duration {
	ge := classify(nil, err)
	if ge.Reason == ReasonHTML || ge.Reason == ReasonTruncated || ge.Reason == ReasonEmpty {
		return r.failed(ctx, err)
	}
	if r.poison++; r.poison < r.cfg.PoisonAfter {
		return r.failed(ctx, err)
	}
	r.m.garbage.WithLabelValues("r2z2", ge.Reason).Inc()
	r.log.ErrorContext(ctx, "skipping an R2Z2 document that never decodes", "sequence", r.next,
		"attempts", r.poison, "reason", ge.Reason, "err", err)
	if _, perr := r.proc.Process(ctx, nil, cursorKV(r.next)); perr != nil {
		return r.failed(ctx, perr)
	}
	r.advance(time.Time{}, 0)
	return 0
}

// count records the results and logs the rejected killmails; it returns
// how many were stored (added or updated).
func (r *R2Z2) count(ctx context.Context, res []store.Result) uint64 {
	var stored uint64
	for _, x := range res {
		r.m.killmails.WithLabelValues("r2z2", x.Status.String()).Inc()
		switch x.Status {
		case store.Added, store.Updated:
			stored++
		case store.Rejected:
			r.log.WarnContext(ctx, "killmail rejected; skipping its sequence", "sequence", r.next, "err", x.Err)
		}
	}
	return stored
}

// advance moves past the sequence just handled.
func (r *R2Z2) advance(uploaded time.Time, stored uint64) {
	handled := r.next
	r.next++
	r.poison = 0
	r.stallSince = time.Time{}
	r.bo.reset()
	r.setHandled(handled)
	r.st.update(func(s *State) {
		s.State = StateRunning
		s.LastSuccess = time.Now()
		s.ConsecutiveErrors = 0
		s.Killmails += stored
		if !uploaded.IsZero() {
			s.Lag = max(time.Since(uploaded), 0)
		}
	})
}

// setHandled records the last sequence handled and the lag behind the
// newest upstream sequence known.
func (r *R2Z2) setHandled(seq int64) {
	r.upstream = max(r.upstream, seq)
	lag := r.upstream - seq
	r.m.sequence.WithLabelValues("r2z2").Set(float64(seq))
	r.m.lag.WithLabelValues("r2z2").Set(float64(lag))
	r.st.update(func(s *State) {
		s.LastSequence = seq
		s.UpstreamSequence = r.upstream
		s.LagSequences = lag
	})
}

// caughtUp handles a 404: wait and ask again, or jump ahead after a long
// stall when sequence.json is past the missing sequence.
func (r *R2Z2) caughtUp(ctx context.Context) time.Duration {
	now := time.Now()
	if r.stallSince.IsZero() {
		r.stallSince = now
	}
	r.bo.reset()
	r.st.ok(StateCaughtUp)
	r.st.update(func(s *State) { s.Lag = 0 })
	if now.Sub(r.stallSince) < r.cfg.StallAfter {
		return r.cfg.NotFoundWait
	}
	r.stallSince = now
	seq, err := r.readSequence(ctx)
	if err != nil || seq <= r.next {
		return r.cfg.NotFoundWait
	}
	r.log.WarnContext(ctx, "R2Z2 sequence missing for long; jumping ahead to sequence.json",
		"missing", r.next, "jump_to", seq, "skipped", seq-r.next)
	r.next = seq
	return 0
}

// failed records a failure and returns the backoff pause.
func (r *R2Z2) failed(ctx context.Context, err error) time.Duration {
	if ctx.Err() != nil {
		return 0
	}
	var ge *GarbageError
	if errors.As(err, &ge) {
		r.m.garbage.WithLabelValues("r2z2", ge.Reason).Inc()
	}
	r.st.fail(err)
	d := r.bo.next()
	r.log.WarnContext(ctx, "R2Z2 request failed; backing off", "sequence", r.next, "retry_in", d, "err", err)
	return d
}

// readSequence reads sequence.json and remembers it as the newest
// upstream sequence known.
func (r *R2Z2) readSequence(ctx context.Context) (int64, error) {
	if err := r.lim.Wait(ctx); err != nil {
		return 0, err
	}
	r.seqReadAt = time.Now()
	rep, err := r.get.get(ctx, r.cfg.URL+"/ephemeral/sequence.json")
	r.m.requests.WithLabelValues("r2z2", statusLabel(rep, err)).Inc()
	if err != nil {
		return 0, err
	}
	if rep.status != http.StatusOK {
		return 0, rep.statusError()
	}
	seq, err := decodeSequence(rep.body)
	if err != nil {
		return 0, err
	}
	r.upstream = max(r.upstream, seq)
	r.st.update(func(s *State) {
		s.UpstreamSequence = r.upstream
		if s.LastSequence > 0 {
			s.LagSequences = max(r.upstream-s.LastSequence, 0)
			r.m.lag.WithLabelValues("r2z2").Set(float64(s.LagSequences))
		}
	})
	return seq, nil
}

// decodeSequence decodes sequence.json: {"sequence": N}.
func decodeSequence(body []byte) (int64, error) {
	if err := expectObject(body); err != nil {
		return 0, err
	}
	var v struct {
		Sequence *int64 `json:"sequence"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return 0, classify(body, err)
	}
	if v.Sequence == nil || *v.Sequence <= 0 {
		return 0, garbage(ReasonMissingField, "sequence.json without a positive sequence")
	}
	return *v.Sequence, nil
}

func cursorKV(seq int64) map[string][]byte {
	return map[string][]byte{KeyR2Z2Sequence: []byte(strconv.FormatInt(seq, 10))}
}
