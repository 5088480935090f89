package esi

import (
	"errors"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

const metricPrefix = "wanderer_kills_esi_"

// metrics are the client's Prometheus collectors and plain counters.
type metrics struct {
	requests *prometheus.CounterVec
	lookups  *prometheus.CounterVec
	remain   prometheus.Gauge
	breaker  prometheus.Gauge

	hits, misses atomic.Uint64
	// cacheHit and cacheMiss are resolved once: the warm path must not
	// build label sets.
	cacheHit, cacheMiss map[string]prometheus.Counter
}

// caches are the lookup kinds counted by wanderer_kills_esi_cache_lookups_total.
var caches = [...]string{"name", "entity", "system", "killmail"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "requests_total",
			Help: "ESI requests by route and status class (2xx, 3xx, 4xx, 5xx, error).",
		}, []string{"route", "class"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "cache_lookups_total",
			Help: "ESI cache lookups by cache and result (hit, miss).",
		}, []string{"cache", "result"}),
		remain: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricPrefix + "error_limit_remain",
			Help: "Last X-ESI-Error-Limit-Remain seen; -1 before any.",
		}),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricPrefix + "breaker_state",
			Help: "ESI circuit breaker: 0 closed, 1 half open, 2 open.",
		}),
		cacheHit:  map[string]prometheus.Counter{},
		cacheMiss: map[string]prometheus.Counter{},
	}
	m.remain.Set(-1)
	for _, c := range caches {
		m.cacheHit[c] = m.lookups.WithLabelValues(c, "hit")
		m.cacheMiss[c] = m.lookups.WithLabelValues(c, "miss")
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.requests, m.lookups, m.remain, m.breaker} {
		errs = append(errs, reg.Register(c))
	}
	return m, errors.Join(errs...)
}

func (m *metrics) lookup(cache string, hit bool) {
	if hit {
		m.hits.Add(1)
		m.cacheHit[cache].Inc()
		return
	}
	m.misses.Add(1)
	m.cacheMiss[cache].Inc()
}

// lookupMany counts many lookups at once.
func (m *metrics) lookupMany(cache string, hits, misses int) {
	if hits > 0 {
		m.hits.Add(uint64(hits))
		m.cacheHit[cache].Add(float64(hits))
	}
	if misses > 0 {
		m.misses.Add(uint64(misses))
		m.cacheMiss[cache].Add(float64(misses))
	}
}

func (m *metrics) request(route string, status int) {
	class := "error"
	if status > 0 {
		class = strconv.Itoa(status/100) + "xx"
	}
	m.requests.WithLabelValues(route, class).Inc()
}

func (m *metrics) breakerState(state string) {
	v := 0.0
	switch state {
	case StateHalfOpen:
		v = 1
	case StateOpen:
		v = 2
	}
	m.breaker.Set(v)
}
