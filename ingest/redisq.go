package ingest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// DefaultRedisQURL is the last RedisQ listen endpoint.
const DefaultRedisQURL = "https://zkillredisq.stream/listen.php"

// RedisQConfig configures a RedisQ feed. Zero values mean the defaults.
type RedisQConfig struct {
	// URL is the listen endpoint. Zero means DefaultRedisQURL.
	URL string
	// Queue is the queueID. Zero means one id made once per data
	// directory and kept in the store (KeyRedisQQueue).
	Queue string
	// TTW is how long the server may hold a poll waiting for a kill, in
	// seconds (1..10). Zero means 10.
	TTW int
	// RatePerSecond paces polls (RedisQ allows 2/s per IP). Zero means 1.
	RatePerSecond float64
	// BackoffMin and BackoffMax bound the doubling pause after errors and
	// garbage. Zero means 1s and 30s.
	BackoffMin, BackoffMax time.Duration
	// BlockedWait is the pause after 403, 420 or 429. Zero means 30s.
	BlockedWait time.Duration
	// Timeout bounds one poll, redirect included. Zero means TTW + 35s.
	Timeout time.Duration
	// MaxBodyBytes caps a package. Zero means 16 MiB.
	MaxBodyBytes int64
	// UserAgent is sent on every request. Zero means DefaultUserAgent.
	UserAgent string
	// Registerer receives the feed's collectors. Nil means none.
	Registerer prometheus.Registerer
}

func (c *RedisQConfig) defaults() {
	setDefault(&c.URL, DefaultRedisQURL)
	setDefault(&c.TTW, 10)
	c.TTW = min(max(c.TTW, 1), 10)
	setDefault(&c.RatePerSecond, 1)
	setDefault(&c.BackoffMin, time.Second)
	setDefault(&c.BackoffMax, 30*time.Second)
	setDefault(&c.BlockedWait, 30*time.Second)
	setDefault(&c.Timeout, time.Duration(c.TTW)*time.Second+35*time.Second)
	setDefault(&c.MaxBodyBytes, 16<<20)
	setDefault(&c.UserAgent, DefaultUserAgent)
}

// Validate reports the first field that cannot work.
func (c RedisQConfig) Validate() error {
	if err := validateURL("RedisQ URL", c.URL); err != nil {
		return err
	}
	switch {
	case c.TTW < 0 || c.TTW > 10:
		return fmt.Errorf("ingest: RedisQ ttw %d must be 1..10", c.TTW)
	case c.RatePerSecond < 0 || c.RatePerSecond > 2:
		return fmt.Errorf("ingest: RedisQ rate %.1f/s must be at most 2/s", c.RatePerSecond)
	case c.BackoffMin < 0 || c.BackoffMax < 0 || c.BlockedWait < 0 || c.Timeout < 0:
		return errors.New("ingest: RedisQ durations must not be negative")
	}
	return nil
}

// RedisQ long-polls a zKillboard RedisQ queue (FORMATS.md §1), one request
// in flight, following the 302 to object.php. A package taken from the
// queue is retried locally until it is stored: the queue cannot replay it.
type RedisQ struct {
	feed
	cfg RedisQConfig
}

// NewRedisQ builds a RedisQ feed that hands what it reads to proc and
// keeps its queue id in kv.
func NewRedisQ(cfg RedisQConfig, hc *http.Client, proc Processor, kv KV, log *slog.Logger) *RedisQ {
	cfg.defaults()
	return &RedisQ{cfg: cfg, feed: newFeed(feedParams{
		source: "redisq", userAgent: cfg.UserAgent, timeout: cfg.Timeout, maxBody: cfg.MaxBodyBytes,
		ratePerSecond: cfg.RatePerSecond, backoffMin: cfg.BackoffMin, backoffMax: cfg.BackoffMax,
		registerer: cfg.Registerer,
	}, hc, proc, kv, log)}
}

// Run polls until ctx ends, then returns nil. It returns an error only
// when the queue id cannot be read or kept at start.
func (q *RedisQ) Run(ctx context.Context) error {
	defer q.st.set(StateStopped)
	queue, err := q.queueID(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	listen, err := q.listenURL(queue)
	if err != nil {
		return err
	}
	q.log.InfoContext(ctx, "listening to RedisQ", "url", q.cfg.URL, "queue", queue)
	for {
		if sleep(ctx, q.poll(ctx, listen)) != nil {
			return nil
		}
	}
}

// queueID returns the configured queue id, or the one kept in the store,
// making and keeping one the first time.
func (q *RedisQ) queueID(ctx context.Context) (string, error) {
	if q.cfg.Queue != "" {
		return q.cfg.Queue, nil
	}
	b, err := q.kv.GetKV(ctx, KeyRedisQQueue)
	if err == nil && len(b) > 0 {
		return string(b), nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("ingest: read RedisQ queue id: %w", err)
	}
	id := "wanderer_kills_" + rand.Text()[:16]
	if err := q.kv.PutKV(ctx, map[string][]byte{KeyRedisQQueue: []byte(id)}); err != nil {
		return "", fmt.Errorf("ingest: keep RedisQ queue id: %w", err)
	}
	return id, nil
}

func (q *RedisQ) listenURL(queue string) (string, error) {
	u, err := url.Parse(q.cfg.URL)
	if err != nil {
		return "", fmt.Errorf("ingest: RedisQ URL: %w", err)
	}
	v := u.Query()
	v.Set("queueID", queue)
	v.Set("ttw", strconv.Itoa(q.cfg.TTW))
	u.RawQuery = v.Encode()
	return u.String(), nil
}

// poll makes one long poll and returns the pause before the next.
func (q *RedisQ) poll(ctx context.Context, listen string) time.Duration {
	if q.lim.Wait(ctx) != nil {
		return 0
	}
	rep, err := q.get.get(ctx, listen)
	q.m.requests.WithLabelValues("redisq", statusLabel(rep, err)).Inc()
	switch {
	case err != nil:
		return q.failed(ctx, err)
	case rep.status == http.StatusOK:
		return q.handle(ctx, rep.body)
	case blocked(rep.status):
		se := rep.statusError()
		q.st.fail(se)
		q.log.WarnContext(ctx, "RedisQ refuses us; waiting", "status", rep.status)
		return max(q.cfg.BlockedWait, se.RetryAfter)
	default:
		return q.failed(ctx, rep.statusError())
	}
}

// handle decodes one answer and stores its killmail, if any.
func (q *RedisQ) handle(ctx context.Context, body []byte) time.Duration {
	item, err := DecodeRedisQ(body)
	if err != nil {
		return q.failed(ctx, err)
	}
	q.bo.reset()
	if item == nil {
		q.st.ok(StateCaughtUp)
		return 0
	}
	for {
		res, err := q.proc.Process(ctx, []Item{*item}, nil)
		if err == nil {
			q.count(ctx, item.KillmailID, res)
			return 0
		}
		if sleep(ctx, q.failed(ctx, err)) != nil {
			return 0
		}
	}
}

func (q *RedisQ) count(ctx context.Context, id int64, res []store.Result) {
	var stored uint64
	for _, x := range res {
		q.m.killmails.WithLabelValues("redisq", x.Status.String()).Inc()
		switch x.Status {
		case store.Added, store.Updated:
			stored++
		case store.Rejected:
			q.log.WarnContext(ctx, "killmail rejected", "killmail_id", id, "err", x.Err)
		}
	}
	q.bo.reset()
	q.st.update(func(s *State) {
		s.State = StateRunning
		s.LastSuccess = time.Now()
		s.ConsecutiveErrors = 0
		s.Killmails += stored
	})
}

// failed records a failure and returns the backoff pause.
func (q *RedisQ) failed(ctx context.Context, err error) time.Duration {
	if ctx.Err() != nil {
		return 0
	}
	var ge *GarbageError
	if errors.As(err, &ge) {
		q.m.garbage.WithLabelValues("redisq", ge.Reason).Inc()
	}
	q.st.fail(err)
	d := q.bo.next()
	q.log.WarnContext(ctx, "RedisQ poll failed; backing off", "retry_in", d, "err", err)
	return d
}
