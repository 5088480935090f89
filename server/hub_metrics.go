package server

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// hubMetrics are the live-feed counters. Connections, subscriptions and
// subscribed ids are gauges read from Hub.Stats by the server's own
// collector; these are the rest.
type hubMetrics struct {
	sent     *prometheus.CounterVec
	slow     *prometheus.CounterVec
	opened   *prometheus.CounterVec
	rejected *prometheus.CounterVec
	queued   prometheus.GaugeFunc
	tail     prometheus.GaugeFunc

	sentWS, sentSSE prometheus.Counter
}

func newHubMetrics(h *Hub) *hubMetrics {
	m := &hubMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "live_messages_sent_total",
			Help: "Messages written to live connections, by transport.",
		}, []string{"transport"}),
		slow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "live_slow_consumer_disconnects_total",
			Help: "Live connections closed because their queue passed its byte budget, by transport.",
		}, []string{"transport"}),
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "live_connections_opened_total",
			Help: "Live connections accepted, by transport.",
		}, []string{"transport"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricPrefix + "live_connections_rejected_total",
			Help: "Live connections refused, by reason (per_ip, capacity).",
		}, []string{"reason"}),
		queued: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricPrefix + "live_queue_bytes",
			Help: "Bytes queued for live connections, summed.",
		}, func() float64 { return float64(h.queueBytes()) }),
		tail: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: metricPrefix + "live_tail_offset",
			Help: "Write-log offset the live fan-out has delivered through.",
		}, func() float64 { return float64(h.pos.Load()) }),
	}
	m.sentWS = m.sent.WithLabelValues(transportWS)
	m.sentSSE = m.sent.WithLabelValues(transportSSE)
	return m
}

func (m *hubMetrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.sent, m.slow, m.opened, m.rejected, m.queued, m.tail} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("server: register live metrics: %w", err)
		}
	}
	return nil
}
