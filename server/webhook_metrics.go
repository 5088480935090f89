package server

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// webhookMetrics are the delivery figures.
type webhookMetrics struct {
	deliveries *prometheus.CounterVec
	retries    prometheus.Counter
	killmails  prometheus.Counter
	latency    prometheus.Histogram
	subs       prometheus.GaugeFunc
	disabled   prometheus.GaugeFunc
}

func newWebhookMetrics(w *Webhooks) *webhookMetrics {
	m := &webhookMetrics{
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "webhook_deliveries_total",
			Help: "Webhook delivery attempts by result (success, http_error, gone, timeout, network_error, refused).",
		}, []string{"result"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricPrefix + "webhook_retries_total",
			Help: "Webhook delivery attempts that repeated a failed batch.",
		}),
		killmails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricPrefix + "webhook_killmails_delivered_total",
			Help: "Killmails in acknowledged (2xx) webhook deliveries.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    metricPrefix + "webhook_delivery_duration_seconds",
			Help:    "Duration of webhook delivery attempts that got an answer or timed out.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		subs: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricPrefix + "webhook_subscriptions",
			Help: "Webhook subscriptions, enabled or not.",
		}, func() float64 { n, _ := w.counts(); return float64(n) }),
		disabled: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricPrefix + "webhook_disabled_subscriptions",
			Help: "Webhook subscriptions disabled after a 410 or failing past the max failure age.",
		}, func() float64 { _, n := w.counts(); return float64(n) }),
	}
	for _, o := range outcomeNames {
		m.deliveries.WithLabelValues(o)
	}
	return m
}

func (m *webhookMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.deliveries, m.retries, m.killmails, m.latency, m.subs, m.disabled} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("server: register webhook metrics: %w", err)
		}
	}
	return nil
}

// observe counts one attempt.
func (m *webhookMetrics) observe(res sendResult) {
	m.deliveries.WithLabelValues(res.outcome.String()).Inc()
	if res.took > 0 {
		m.latency.Observe(res.took.Seconds())
	}
}
