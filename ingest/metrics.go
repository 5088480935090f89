package ingest

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metricPrefix starts every metric name this package registers.
const metricPrefix = "wanderer_kills_ingest_"

// feedMetrics are a live feed's collectors, labelled by source.
type feedMetrics struct {
	requests  *prometheus.CounterVec
	killmails *prometheus.CounterVec
	garbage   *prometheus.CounterVec
	sequence  *prometheus.GaugeVec
	lag       *prometheus.GaugeVec
}

func newFeedMetrics(reg prometheus.Registerer) *feedMetrics {
	return &feedMetrics{
		requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "feed_requests_total",
			Help: "Live-feed HTTP requests by source and status (or error, garbage).",
		}, []string{"source", "status"})),
		killmails: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "killmails_total",
			Help: "Killmails handled by source and result (added, duplicate, updated, rejected).",
		}, []string{"source", "result"})),
		garbage: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "garbage_total",
			Help: "Upstream answers refused, by source and reason.",
		}, []string{"source", "reason"})),
		sequence: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "sequence",
			Help: "Last live-feed sequence handled.",
		}, []string{"source"})),
		lag: register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "lag_sequences",
			Help: "Sequences between the last one handled and the newest known upstream.",
		}, []string{"source"})),
	}
}

// pipelineMetrics are the pipeline's collectors.
type pipelineMetrics struct {
	fetches    *prometheus.CounterVec
	enrich     *prometheus.CounterVec
	unenriched prometheus.Gauge
}

func newPipelineMetrics(reg prometheus.Registerer) *pipelineMetrics {
	return &pipelineMetrics{
		fetches: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "esi_fetches_total",
			Help: "Killmail bodies fetched from ESI by result (ok, rejected, failed).",
		}, []string{"result"})),
		enrich: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "enrichments_total",
			Help: "Enrichments by result (complete, incomplete; later: filled, retry, given_up).",
		}, []string{"result"})),
		unenriched: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: metricPrefix + "unenriched",
			Help: "Killmails waiting for names, as of the last enrichment pass.",
		})),
	}
}

// zkbMetrics are the zKillboard client's collectors.
type zkbMetrics struct {
	requests *prometheus.CounterVec
}

func newZKBMetrics(reg prometheus.Registerer) *zkbMetrics {
	return &zkbMetrics{requests: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricPrefix + "zkb_requests_total",
		Help: "zKillboard API requests by route and status (or error, garbage).",
	}, []string{"route", "status"}))}
}

// register registers c on reg (nil: nowhere) and returns it, or the
// collector already registered under the same name, so that two
// components sharing a registry share the series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	return c
}
