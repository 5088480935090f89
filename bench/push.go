package bench

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// SentLabelPrefix starts the zkb label PushLoad stamps on every killmail:
// the prefix, then the Unix nanoseconds at which the batch was sent.
const SentLabelPrefix = "wkbench:sent:"

// PushConfig configures PushLoad. Zero values are defaults, except
// BaseURL and APIKey, which are required.
type PushConfig struct {
	// BaseURL is the running service, e.g. "http://127.0.0.1:4004".
	BaseURL string
	// APIKey is the service's WK_API_KEY.
	APIKey string
	// Clients is the number of WebSocket clients (Phoenix V2), each
	// subscribed to every pushed system. Zero means 10.
	Clients int
	// Systems is the number of distinct systems pushed to. Zero means 50.
	Systems int
	// Rate is the target of killmails pushed per second. Zero means 200.
	Rate float64
	// BatchSize is the killmails of one POST. Zero means 50.
	BatchSize int
	// Senders is the POSTs in flight at most. Zero means 4.
	Senders int
	// Duration is how long to push. Zero means 10s unless Total is set.
	Duration time.Duration
	// Total, when set, stops after this many killmails (or Duration,
	// when also set, whichever comes first).
	Total int
	// Drain is how long to wait for deliveries after the last push.
	// Zero means 10s.
	Drain time.Duration
	// FirstID is the first killmail id. Zero means one derived from the
	// clock, so that runs against the same store do not collide.
	FirstID int64
	// Seed makes the generated killmails repeatable; when set it replaces
	// Gen.Seed.
	Seed uint64
	// Gen shapes the generated killmails (id pools, fleet fights).
	// PushLoad sets its Systems and FirstID from the fields above and,
	// when Start is zero, places kill times in the hour before the run.
	// Small pools mean fewer names for the service to look up.
	Gen GenConfig
	// HTTPClient posts the batches. Nil means a client with a 60s timeout.
	HTTPClient *http.Client
	// Logger receives progress. Nil discards it.
	Logger *slog.Logger
}

func (c *PushConfig) defaults() {
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	c.Clients = cmp.Or(c.Clients, 10)
	c.Systems = cmp.Or(c.Systems, 50)
	c.Rate = cmp.Or(c.Rate, 200)
	c.BatchSize = cmp.Or(c.BatchSize, 50)
	c.Senders = cmp.Or(c.Senders, 4)
	if c.Duration == 0 && c.Total == 0 {
		c.Duration = 10 * time.Second
	}
	c.Drain = cmp.Or(c.Drain, 10*time.Second)
	if c.FirstID == 0 {
		// Microseconds since 2020: fresh ids for every run.
		c.FirstID = time.Since(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds()
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 60 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// validate reports the first field that cannot work.
func (c *PushConfig) validate() error {
	switch {
	case !strings.HasPrefix(c.BaseURL, "http://") && !strings.HasPrefix(c.BaseURL, "https://"):
		return fmt.Errorf("bench: push base URL %q must be http(s)://host:port", c.BaseURL)
	case c.APIKey == "":
		return errors.New("bench: push needs the service's API key")
	case c.Clients < 0 || c.Systems < 0 || c.BatchSize < 0 || c.Senders < 0 || c.Total < 0:
		return errors.New("bench: push counts must not be negative")
	case c.Rate < 0 || c.Duration < 0 || c.Drain < 0:
		return errors.New("bench: push rate and durations must not be negative")
	case c.Systems > 10000:
		return errors.New("bench: at most 10000 systems (one channel's subscription limit)")
	}
	return nil
}

// Latency summarizes durations.
type Latency struct {
	// Count is the durations measured.
	Count int
	// P50 and P99 are nearest-rank percentiles; Max is the largest.
	P50, P99, Max time.Duration
}

// String prints the summary in milliseconds.
func (l Latency) String() string {
	milli := func(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }
	return fmt.Sprintf("n=%d p50=%sms p99=%sms max=%sms", l.Count, milli(l.P50), milli(l.P99), milli(l.Max))
}

// PushReport is what PushLoad measured.
type PushReport struct {
	// Requests counts the POSTs answered 200; RateLimited those answered
	// 429 (their killmails are dropped, not retried); Failed the others.
	Requests, RateLimited, Failed int
	// Errors holds the first distinct failures.
	Errors []string
	// Sent counts the killmails of the POSTs answered 200, and Accepted,
	// Duplicates and Rejected what the service said of them.
	Sent, Accepted, Duplicates, Rejected int
	// Clients is the WebSocket clients; Expected is Accepted × Clients,
	// Delivered the distinct (client, killmail) deliveries seen, and
	// Redelivered the repeats.
	Clients, Expected, Delivered, Redelivered int
	// Elapsed runs from the first POST to the last answer; Throughput is
	// Accepted per second over it.
	Elapsed    time.Duration
	Throughput float64
	// Commit is sent stamp → 200 received, per POST: the killmails were
	// durable by then.
	Commit Latency
	// Delivery is sent stamp → WebSocket client received, per delivery.
	Delivery Latency
}

// Lost is the expected deliveries that did not arrive within the drain.
func (r PushReport) Lost() int { return max(0, r.Expected-r.Delivered) }

// String prints the report on a few lines.
func (r PushReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "push: %d requests (%d rate-limited, %d failed), %d killmails sent: %d accepted, %d duplicates, %d rejected, %.0f/s over %s\n",
		r.Requests, r.RateLimited, r.Failed, r.Sent, r.Accepted, r.Duplicates, r.Rejected, r.Throughput, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(&b, "commit (sent → 200): %s\n", r.Commit)
	fmt.Fprintf(&b, "delivery to %d clients (sent → received): %s; %d/%d delivered, %d lost, %d repeats",
		r.Clients, r.Delivery, r.Delivered, r.Expected, r.Lost(), r.Redelivered)
	for _, e := range r.Errors {
		fmt.Fprintf(&b, "\nerror: %s", e)
	}
	return b.String()
}

// PushLoad drives a running service from outside: it opens cfg.Clients
// WebSocket clients subscribed to the pushed systems, POSTs generated
// killmails to /api/v1/killmails at cfg.Rate in batches, each killmail's
// zkb.labels stamped with SentLabelPrefix and the send time, and
// measures commit and delivery latency. It returns when pushing is done
// and every expected delivery arrived or cfg.Drain passed. An error means
// the run could not start (bad config, a client could not join) or ctx
// ended; the report then holds what was measured.
func PushLoad(ctx context.Context, cfg PushConfig) (PushReport, error) {
	cfg.defaults()
	if err := cfg.validate(); err != nil {
		return PushReport{}, err
	}
	templates, err := Templates()
	if err != nil {
		return PushReport{}, err
	}
	systems := make([]int64, cfg.Systems)
	for i := range systems {
		systems[i] = SystemID(uint64(i))
	}
	fleet, err := openFleet(ctx, cfg, systems)
	if err != nil {
		return PushReport{}, err
	}
	defer fleet.close()
	gc := cfg.Gen
	gc.Systems, gc.FirstID = cfg.Systems, cfg.FirstID
	if cfg.Seed != 0 {
		gc.Seed = cfg.Seed
	}
	if gc.Start.IsZero() {
		gc.Start, gc.Span = time.Now().Add(-time.Hour), time.Hour
	}
	gen := NewGenerator(templates, gc)
	p := &pusher{cfg: cfg, fleet: fleet}
	err = p.run(ctx, gen)
	rep := p.report()
	rep.Clients = cfg.Clients
	rep.Expected = rep.Accepted * cfg.Clients
	if err == nil {
		err = fleet.await(ctx, rep.Expected, cfg.Drain)
	}
	fleet.close()
	rep.Delivered, rep.Redelivered, rep.Delivery = fleet.summary()
	for _, e := range fleet.errors() {
		if len(rep.Errors) < 10 {
			rep.Errors = append(rep.Errors, e)
		}
	}
	cfg.Logger.Info("push load done", "report", rep.String())
	return rep, err
}

// pushResult is the 200 answer of POST /api/v1/killmails.
type pushResult struct {
	Accepted   int               `json:"accepted"`
	Duplicates int               `json:"duplicates"`
	Rejected   []json.RawMessage `json:"rejected"`
}

// pusher posts batches on a schedule and tallies the answers.
type pusher struct {
	cfg   PushConfig
	fleet *fleet

	mu      sync.Mutex
	rep     PushReport
	commits []time.Duration
	first   time.Time
	last    time.Time
}

// run generates batches at the target rate and posts them with up to
// cfg.Senders in flight. It returns when every batch is answered.
func (p *pusher) run(ctx context.Context, gen *Generator) error {
	batches := make(chan []*store.Killmail)
	var wg sync.WaitGroup
	for range p.cfg.Senders {
		wg.Go(func() {
			for b := range batches {
				p.post(ctx, b)
			}
		})
	}
	err := p.schedule(ctx, gen, batches)
	close(batches)
	wg.Wait()
	return err
}

// schedule hands batch k to the senders at start + k × BatchSize / Rate.
func (p *pusher) schedule(ctx context.Context, gen *Generator, out chan<- []*store.Killmail) error {
	start := time.Now()
	every := time.Duration(float64(p.cfg.BatchSize) / p.cfg.Rate * float64(time.Second))
	sent := 0
	for k := 0; ; k++ {
		at := start.Add(time.Duration(k) * every)
		if p.cfg.Duration > 0 && at.Sub(start) >= p.cfg.Duration || p.cfg.Total > 0 && sent >= p.cfg.Total {
			return nil
		}
		n := p.cfg.BatchSize
		if p.cfg.Total > 0 {
			n = min(n, p.cfg.Total-sent)
		}
		batch := make([]*store.Killmail, n)
		for i := range batch {
			batch[i] = gen.Next()
		}
		sent += n
		t := time.NewTimer(time.Until(at))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		select {
		case out <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// post stamps, encodes and sends one batch, and tallies the answer.
func (p *pusher) post(ctx context.Context, batch []*store.Killmail) {
	sent := time.Now()
	body, err := encodeBatch(batch, sent)
	if err == nil {
		var code int
		var res pushResult
		code, res, err = p.send(ctx, body)
		done := time.Now()
		p.tally(sent, done, len(batch), code, res, err)
		return
	}
	p.tally(sent, time.Now(), len(batch), 0, pushResult{}, err)
}

// send POSTs a body and decodes a 200 answer.
func (p *pusher) send(ctx context.Context, body []byte) (int, pushResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.cfg.BaseURL+"/api/v1/killmails", bytes.NewReader(body))
	if err != nil {
		return 0, pushResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+p.cfg.APIKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := p.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, pushResult{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return res.StatusCode, pushResult{}, err
	}
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, pushResult{}, fmt.Errorf("POST /api/v1/killmails: %d: %.200s", res.StatusCode, b)
	}
	var out pushResult
	if err := json.Unmarshal(b, &out); err != nil {
		return res.StatusCode, pushResult{}, fmt.Errorf("POST /api/v1/killmails: answer: %w", err)
	}
	return res.StatusCode, out, nil
}

// tally records one answered POST.
func (p *pusher) tally(sent, done time.Time, n, code int, res pushResult, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.first.IsZero() || sent.Before(p.first) {
		p.first = sent
	}
	if done.After(p.last) {
		p.last = done
	}
	switch {
	case err == nil:
		p.rep.Requests++
		p.rep.Sent += n
		p.rep.Accepted += res.Accepted
		p.rep.Duplicates += res.Duplicates
		p.rep.Rejected += len(res.Rejected)
		p.commits = append(p.commits, done.Sub(sent))
		if len(res.Rejected) > 0 {
			p.noteError(fmt.Sprintf("rejected: %.300s", res.Rejected[0]))
		}
	case code == http.StatusTooManyRequests:
		p.rep.RateLimited++
	default:
		p.rep.Failed++
		p.noteError(err.Error())
	}
}

// noteError keeps the first distinct errors (up to 10).
func (p *pusher) noteError(msg string) {
	for _, e := range p.rep.Errors {
		if e == msg {
			return
		}
	}
	if len(p.rep.Errors) < 10 {
		p.rep.Errors = append(p.rep.Errors, msg)
	}
}

// report returns the tallies with the commit summary.
func (p *pusher) report() PushReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	rep := p.rep
	rep.Errors = append([]string(nil), p.rep.Errors...)
	rep.Commit = summarize(p.commits)
	if !p.first.IsZero() {
		rep.Elapsed = p.last.Sub(p.first)
	}
	if rep.Elapsed > 0 {
		rep.Throughput = float64(rep.Accepted) / rep.Elapsed.Seconds()
	}
	return rep
}
