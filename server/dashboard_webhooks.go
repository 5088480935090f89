package server

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// webhookFigures are the webhook deliveries as the dashboard shows them.
// The attempt counts are since the process started.
type webhookFigures struct {
	// Subscriptions counts webhook subscriptions; Active are delivering
	// (not disabled), Disabled stopped after a 410 or failing too long.
	Subscriptions int `json:"subscriptions"`
	Active        int `json:"active"`
	Disabled      int `json:"disabled"`
	// FailedAttempts counts delivery attempts that did not get a 2xx.
	FailedAttempts uint64 `json:"failed_attempts"`
	// KillmailsDelivered counts killmails in acknowledged deliveries.
	KillmailsDelivered uint64 `json:"killmails_delivered"`
}

// webhookFiguresOf reads the figures of w; nil when the server has no
// webhooks.
func webhookFiguresOf(w *Webhooks) *webhookFigures {
	if w == nil {
		return nil
	}
	total, disabled := w.counts()
	f := &webhookFigures{Subscriptions: total, Active: total - disabled, Disabled: disabled}
	for o, name := range outcomeNames {
		if outcome(o) == outcomeSuccess {
			continue
		}
		f.FailedAttempts += counterCount(w.met.deliveries.WithLabelValues(name))
	}
	f.KillmailsDelivered = counterCount(w.met.killmails)
	return f
}

// counterCount reads a counter's current value.
func counterCount(c prometheus.Counter) uint64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return uint64(m.GetCounter().GetValue())
}
