package server

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wanderer-industries/wanderer-kills-go/store"
)

// metricPrefix starts every metric name the server registers.
const metricPrefix = "wanderer_kills_"

// httpMetrics are the request figures, labelled by route pattern (never
// the raw path), method and status.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	perMin   *rateWindow
}

func newHTTPMetrics() *httpMetrics {
	return &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "http_requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    metricPrefix + "http_request_duration_seconds",
			Help:    "HTTP request durations by route pattern and method (streams excluded).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
		}, []string{"route", "method"}),
		perMin: newRateWindow(time.Minute),
	}
}

// observe records one finished request.
func (s *Server) observe(rec *recorder, method string, info *routeInfo, start time.Time) {
	status := rec.status
	if !rec.wrote {
		status = http.StatusOK
	}
	method = methodLabel(method)
	s.http.requests.WithLabelValues(info.pattern, method, strconv.Itoa(status)).Inc()
	if !info.stream && !rec.hijacked {
		s.http.duration.WithLabelValues(info.pattern, method).Observe(time.Since(start).Seconds())
	}
	s.http.perMin.add(time.Now())
}

// methodLabel keeps the method label to the known verbs.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// registerMetrics registers the server's collectors on the registry.
func (s *Server) registerMetrics(reg *prometheus.Registry, private bool) error {
	cs := []prometheus.Collector{
		s.http.requests, s.http.duration,
		storeCollector{st: s.deps.Store},
		hubCollector{hub: s.hub},
	}
	if private {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("server: register metrics: %w", err)
		}
	}
	return nil
}

var (
	descStoreKillmails = prometheus.NewDesc(metricPrefix+"store_killmails", "Killmails stored.", nil, nil)
	descStoreHead      = prometheus.NewDesc(metricPrefix+"store_head_offset", "Highest accepted write-log offset.", nil, nil)
	descStoreTrimmed   = prometheus.NewDesc(metricPrefix+"store_trimmed_offset", "Highest offset removed by retention.", nil, nil)
	descStoreDisk      = prometheus.NewDesc(metricPrefix+"store_disk_bytes", "Disk space used by the store.", nil, nil)
	descStoreRecent    = prometheus.NewDesc(metricPrefix+"store_recent_bytes", "Memory holding the newest records.", nil, nil)
)

// storeCollector reads store.Stats at scrape time.
type storeCollector struct{ st *store.Store }

// Describe implements prometheus.Collector.
func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descStoreKillmails
	ch <- descStoreHead
	ch <- descStoreTrimmed
	ch <- descStoreDisk
	ch <- descStoreRecent
}

// Collect implements prometheus.Collector.
func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.st.Stats()
	ch <- prometheus.MustNewConstMetric(descStoreKillmails, prometheus.GaugeValue, float64(st.Killmails))
	ch <- prometheus.MustNewConstMetric(descStoreHead, prometheus.GaugeValue, float64(st.Head))
	ch <- prometheus.MustNewConstMetric(descStoreTrimmed, prometheus.GaugeValue, float64(st.Trimmed))
	ch <- prometheus.MustNewConstMetric(descStoreDisk, prometheus.GaugeValue, float64(st.DiskBytes))
	ch <- prometheus.MustNewConstMetric(descStoreRecent, prometheus.GaugeValue, float64(st.RecentBytes))
}

var (
	descConnections   = prometheus.NewDesc(metricPrefix+"live_connections", "Open live connections by kind.", []string{"kind"}, nil)
	descSubscriptions = prometheus.NewDesc(metricPrefix+"live_subscriptions", "Live channel and stream subscriptions.", nil, nil)
	descSubscribed    = prometheus.NewDesc(metricPrefix+"live_subscribed_ids", "Distinct ids live subscribers ask for, by kind.", []string{"kind"}, nil)
)

// hubCollector reads the hub's figures at scrape time. (The feed and the
// ESI client register their own collectors.)
type hubCollector struct{ hub *Hub }

// Describe implements prometheus.Collector.
func (c hubCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descConnections
	ch <- descSubscriptions
	ch <- descSubscribed
}

// Collect implements prometheus.Collector.
func (c hubCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	hs := c.hub.Stats()
	gauge(descConnections, hs.WebSocketConnections, "websocket")
	gauge(descConnections, hs.SSEConnections, "sse")
	gauge(descSubscriptions, hs.Subscriptions)
	gauge(descSubscribed, hs.Systems, "system")
	gauge(descSubscribed, hs.Characters, "character")
}

// metrics serves the Prometheus exposition, or the original's JSON
// (API.md §2.3) when the request prefers application/json.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if preferred(r.Header.Get("Accept"), mediaJSON, mediaText) == mediaJSON {
		writeJSON(w, http.StatusOK, s.metricsJSON())
		return
	}
	s.prom.ServeHTTP(w, r)
}

func (s *Server) promHandler() http.Handler {
	return promhttp.HandlerFor(s.cfg.Registry, promhttp.HandlerOpts{
		ErrorLog:      slogPrinter{s.log},
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// slogPrinter adapts the logger to promhttp's Logger.
type slogPrinter struct {
	log interface{ Error(string, ...any) }
}

// Println implements promhttp.Logger.
func (p slogPrinter) Println(v ...any) { p.log.Error(fmt.Sprint(v...)) }

// rateWindow counts events over a sliding window in one-second buckets.
type rateWindow struct {
	mu      sync.Mutex
	buckets []int64
	stamps  []int64
}

func newRateWindow(span time.Duration) *rateWindow {
	n := int(span / time.Second)
	return &rateWindow{buckets: make([]int64, n), stamps: make([]int64, n)}
}

func (rw *rateWindow) add(now time.Time) {
	sec := now.Unix()
	i := int(sec % int64(len(rw.buckets)))
	rw.mu.Lock()
	if rw.stamps[i] != sec {
		rw.stamps[i], rw.buckets[i] = sec, 0
	}
	rw.buckets[i]++
	rw.mu.Unlock()
}

// sum returns the events of the last window.
func (rw *rateWindow) sum(now time.Time) int64 {
	sec := now.Unix()
	span := int64(len(rw.buckets))
	var total int64
	rw.mu.Lock()
	for i, st := range rw.stamps {
		if sec-st < span {
			total += rw.buckets[i]
		}
	}
	rw.mu.Unlock()
	return total
}
