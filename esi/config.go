package esi

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultBaseURL is ESI's public base.
const DefaultBaseURL = "https://esi.evetech.net/latest"

// DefaultUserAgent names the project, as ESI asks of every client.
const DefaultUserAgent = "wanderer-kills-go/dev (+https://github.com/wanderer-industries/wanderer-kills-go)"

// Config configures a Client. Zero values mean the documented defaults.
type Config struct {
	// BaseURL is ESI's base; routes are appended ("/killmails/…").
	// Zero means DefaultBaseURL.
	BaseURL string
	// UserAgent is sent on every request. Zero means DefaultUserAgent.
	UserAgent string
	// Timeout bounds each HTTP call, body included. Zero means 10s.
	Timeout time.Duration
	// RatePerSecond and Burst shape outgoing requests. Zero means 50/s
	// with a burst of 50.
	RatePerSecond float64
	Burst         int
	// ErrorBudgetFloor holds new requests until X-ESI-Error-Limit-Reset
	// has elapsed once X-ESI-Error-Limit-Remain drops to it or below.
	// Zero means 10; negative means hold only on 420.
	ErrorBudgetFloor int
	// BreakerFailures consecutive failures (5xx, timeouts, transport
	// errors, garbage bodies) open the circuit. Zero means 10.
	BreakerFailures int
	// BreakerCooldown is how long the circuit stays open before one probe
	// request is let through. Zero means 30s.
	BreakerCooldown time.Duration
	// Retries is how many times a call is retried after a retryable
	// failure (5xx, 420, 429, timeout, garbage). Zero means 2; negative
	// means none.
	Retries int
	// RetryBackoff is the first pause between attempts; it doubles.
	// Zero means 500ms.
	RetryBackoff time.Duration
	// NameTTL is how long names and tickers are cached. Zero means 24h.
	NameTTL time.Duration
	// NegativeTTL is how long ids ESI does not know are remembered as
	// unknown. Zero means 1h.
	NegativeTTL time.Duration
	// KillmailTTL is how long fetched killmails are cached. Zero means 5m.
	KillmailTTL time.Duration
	// Concurrency bounds the parallel per-entity requests (tickers, types)
	// of one enrichment. Zero means 8.
	Concurrency int
	// MaxBodyBytes caps response bodies. Zero means 8 MiB.
	MaxBodyBytes int64
	// NameStore persists learned names and tickers so that a restart does
	// not ask ESI again. Nil means memory only.
	NameStore KV
	// FlushInterval is how often Run writes newly learned names to
	// NameStore. Zero means 5s.
	FlushInterval time.Duration
	// Registerer receives the client's Prometheus collectors. Nil means
	// they are not registered.
	Registerer prometheus.Registerer
}

func (c *Config) defaults() {
	setDefault(&c.BaseURL, DefaultBaseURL)
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	setDefault(&c.UserAgent, DefaultUserAgent)
	setDefault(&c.Timeout, 10*time.Second)
	setDefault(&c.RatePerSecond, 50)
	setDefault(&c.Burst, 50)
	setDefault(&c.ErrorBudgetFloor, 10)
	setDefault(&c.BreakerFailures, 10)
	setDefault(&c.BreakerCooldown, 30*time.Second)
	setDefault(&c.Retries, 2)
	if c.Retries < 0 {
		c.Retries = 0
	}
	setDefault(&c.RetryBackoff, 500*time.Millisecond)
	setDefault(&c.NameTTL, 24*time.Hour)
	setDefault(&c.NegativeTTL, time.Hour)
	setDefault(&c.KillmailTTL, 5*time.Minute)
	setDefault(&c.Concurrency, 8)
	setDefault(&c.MaxBodyBytes, 8<<20)
	setDefault(&c.FlushInterval, 5*time.Second)
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Validate reports the first field that cannot work. Zero values are
// valid (they mean defaults).
func (c Config) Validate() error {
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("esi: base URL %q: want an absolute http(s) URL", c.BaseURL)
		}
	}
	var errs []error
	neg := func(name string, bad bool) {
		if bad {
			errs = append(errs, fmt.Errorf("esi: %s must not be negative", name))
		}
	}
	neg("Timeout", c.Timeout < 0)
	neg("RatePerSecond", c.RatePerSecond < 0)
	neg("Burst", c.Burst < 0)
	neg("BreakerFailures", c.BreakerFailures < 0)
	neg("BreakerCooldown", c.BreakerCooldown < 0)
	neg("RetryBackoff", c.RetryBackoff < 0)
	neg("NameTTL", c.NameTTL < 0)
	neg("NegativeTTL", c.NegativeTTL < 0)
	neg("KillmailTTL", c.KillmailTTL < 0)
	neg("Concurrency", c.Concurrency < 0)
	neg("MaxBodyBytes", c.MaxBodyBytes < 0)
	neg("FlushInterval", c.FlushInterval < 0)
	return errors.Join(errs...)
}
