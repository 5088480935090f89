package server

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// Limits of a webhook subscription (API.md §6.1), plus two of ours.
const (
	maxSubSystems      = 100
	maxSubCharacters   = 1000
	maxSubscriberIDLen = 256
	maxCallbackURLLen  = 2048
)

// Subscription is one subscription as the subscriptions API shows it
// (API.md §6.2): a webhook, or a joined WebSocket channel (callback_url
// null).
type Subscription struct {
	// ID is the 22-character subscription id of a webhook, the user_id of
	// a WebSocket connection.
	ID           string `json:"id"`
	SubscriberID string `json:"subscriber_id"`
	// Type is "webhook" or "websocket".
	Type         string  `json:"type"`
	SystemIDs    []int64 `json:"system_ids"`
	CharacterIDs []int64 `json:"character_ids"`
	// CallbackURL is null for WebSocket channels.
	CallbackURL *string `json:"callback_url"`
	// CreatedAt and UpdatedAt are six-digit UTC stamps (a channel's are
	// its connection's opening).
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
	// Disabled is set for webhooks: deliveries stopped (see Delivery).
	Disabled *bool `json:"disabled,omitempty"`
	// Delivery is shown by GET /api/v1/subscriptions/:id only.
	Delivery *DeliveryState `json:"delivery,omitempty"`
}

// DeliveryState is where a webhook's deliveries stand. Times are
// six-digit UTC stamps, omitted when unset.
type DeliveryState struct {
	// Cursor is the write-log offset acknowledged through: every matching
	// killmail up to it has been answered with a 2xx.
	Cursor        uint64 `json:"cursor"`
	LastSuccessAt string `json:"last_success_at,omitempty"`
	LastError     string `json:"last_error,omitempty"`
	LastErrorAt   string `json:"last_error_at,omitempty"`
	// FailingSince is the first failure since the last success.
	FailingSince  string `json:"failing_since,omitempty"`
	NextAttemptAt string `json:"next_attempt_at,omitempty"`
	// Attempts counts the failed attempts of the batch being retried.
	Attempts int `json:"attempts"`
	// Pending counts the matching killmails read and not yet
	// acknowledged (the open batch and the queued live ones).
	Pending        int    `json:"pending"`
	Disabled       bool   `json:"disabled"`
	DisabledReason string `json:"disabled_reason,omitempty"`
	DisabledAt     string `json:"disabled_at,omitempty"`
}

// createSubscription serves POST /api/v1/subscriptions (API.md §6.1).
// The answer adds the signing secret, shown only here.
func (s *Server) createSubscription(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	var body map[string]json.RawMessage
	if err := decodeBody(r, &body); err != nil {
		badBody(w, err, s.cfg.MaxBodyBytes)
		return
	}
	req, msg := parseSubscription(body)
	if msg != "" {
		writeSubError(w, http.StatusBadRequest, msg)
		return
	}
	sub, secret, err := s.webhooks.Create(r.Context(), req)
	var ae *addrError
	switch {
	case errors.As(err, &ae):
		writeSubError(w, http.StatusBadRequest,
			"callback_url must not resolve to a loopback, private, link-local or metadata address ("+ae.detail()+")")
		return
	case errors.Is(err, ErrSubscriptionLimit):
		writeSubError(w, http.StatusTooManyRequests, fmt.Sprintf("Maximum %d webhook subscriptions reached", s.webhooks.cfg.MaxSubscriptions))
		return
	case err != nil:
		s.log.ErrorContext(r.Context(), "subscription not created", "err", err)
		writeSubError(w, http.StatusInternalServerError, "Failed to create subscription")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"data": map[string]any{
		"subscription_id": sub.ID,
		"message":         "Subscription created successfully",
		"secret":          secret,
	}})
}

// listSubscriptions serves GET /api/v1/subscriptions (API.md §6.2):
// the webhooks, then the joined WebSocket channels.
func (s *Server) listSubscriptions(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	subs := s.allSubscriptions()
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"subscriptions": subs, "count": len(subs)}})
}

// subscriptionByID serves GET /api/v1/subscriptions/:id: one webhook with
// its delivery state, or the stats (API.md §6.3) when the id is "stats"
// (httprouter cannot register both paths).
func (s *Server) subscriptionByID(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	id := ps.ByName("id")
	if id == "stats" {
		s.subscriptionStats(w, r)
		return
	}
	sub, ok := s.webhooks.Subscription(id)
	if !ok {
		writeSubError(w, http.StatusNotFound, "Subscription not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": sub})
}

// subscriptionStats serves GET /api/v1/subscriptions/stats (API.md
// §6.3). Systems and characters are counted distinct across webhooks and
// WebSocket channels; memory_usage estimates the bytes of their id lists.
func (s *Server) subscriptionStats(w http.ResponseWriter, _ *http.Request) {
	subs := s.allSubscriptions()
	systems, chars := map[int64]struct{}{}, map[int64]struct{}{}
	var webhooks, sockets, memory int
	for _, sub := range subs {
		if sub.Type == "webhook" {
			webhooks++
		} else {
			sockets++
		}
		for _, id := range sub.SystemIDs {
			systems[id] = struct{}{}
		}
		for _, id := range sub.CharacterIDs {
			chars[id] = struct{}{}
		}
		memory += 128 + len(sub.ID) + len(sub.SubscriberID) + 16*(len(sub.SystemIDs)+len(sub.CharacterIDs))
	}
	sse := s.hub.Stats().SSEConnections
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
		"total_subscriptions":     webhooks + sockets + sse,
		"websocket_subscriptions": sockets,
		"webhook_subscriptions":   webhooks,
		"sse_subscriptions":       sse,
		"total_systems":           len(systems),
		"total_characters":        len(chars),
		"memory_usage":            memory,
	}})
}

// deleteSubscriber serves DELETE /api/v1/subscriptions/:id (API.md
// §6.4): the id is a subscriber id; every webhook of it is removed. The
// answer is the same whether there were any.
func (s *Server) deleteSubscriber(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	id := ps.ByName("id")
	if _, err := s.webhooks.DeleteSubscriber(r.Context(), id); err != nil {
		s.log.ErrorContext(r.Context(), "subscriptions not deleted", "subscriber_id", id, "err", err)
		writeSubError(w, http.StatusInternalServerError, "Failed to unsubscribe")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{
		"message": "Successfully unsubscribed", "subscriber_id": id,
	}})
}

// allSubscriptions lists the webhooks, then the WebSocket channels (their
// id is the connection's user_id, which is unique per connection).
func (s *Server) allSubscriptions() []Subscription {
	subs := s.webhooks.Subscriptions()
	for _, c := range s.hub.ChannelSubscriptions() {
		subs = append(subs, Subscription{
			ID: c.SubscriberID, SubscriberID: c.SubscriberID, Type: "websocket",
			SystemIDs: nonNil(c.Systems), CharacterIDs: nonNil(c.Characters),
			CreatedAt: c.ConnectedAt, UpdatedAt: c.ConnectedAt,
		})
	}
	return subs
}

func sortSubscriptions(subs []Subscription) {
	slices.SortFunc(subs, func(a, b Subscription) int {
		return cmp.Or(strings.Compare(a.CreatedAt, b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
}

// parseSubscription validates a create body in the original's order
// (API.md §6.1); msg is the first failure, "" when valid. Id lists keep
// their integers only, deduplicated and sorted; a non-list is empty.
func parseSubscription(body map[string]json.RawMessage) (req WebhookRequest, msg string) {
	req.SubscriberID = textField(body["subscriber_id"])
	rawURL, isString := stringField(body["callback_url"])
	systems, sysOK := normalizeIDs(body["system_ids"])
	chars, charsOK := normalizeIDs(body["character_ids"])
	switch {
	case req.SubscriberID == "":
		return req, "subscriber_id is required"
	case len(req.SubscriberID) > maxSubscriberIDLen:
		return req, "subscriber_id must be at most 256 characters"
	case len(body["callback_url"]) == 0 || isNull(body["callback_url"]) || isString && rawURL == "":
		return req, "callback_url is required"
	case !validCallbackURL(rawURL):
		return req, "callback_url must be a valid HTTP/HTTPS URL"
	case len(systems) == 0 && len(chars) == 0:
		return req, "At least one system_id or character_id is required"
	case !sysOK:
		return req, "system_ids must be an array of positive integers"
	case !charsOK:
		return req, "character_ids must be an array of positive integers"
	case len(systems) > maxSubSystems:
		return req, "Maximum 100 system_ids allowed per subscription"
	case len(chars) > maxSubCharacters:
		return req, "Maximum 1000 character_ids allowed per subscription"
	}
	req.CallbackURL, req.SystemIDs, req.CharacterIDs = rawURL, systems, chars
	return req, ""
}

// stringField decodes a JSON string; ok is false for another type.
func stringField(raw json.RawMessage) (string, bool) {
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return "", false
	}
	return v, true
}

// textField is a JSON string, or the literal of a JSON number (the
// original keeps a numeric subscriber_id); "" for anything else.
func textField(raw json.RawMessage) string {
	if v, ok := stringField(raw); ok {
		return v
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// validCallbackURL: http or https, with a host (API.md §6.1).
func validCallbackURL(raw string) bool {
	if raw == "" || len(raw) > maxCallbackURLLen {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	return (scheme == "http" || scheme == "https") && u.Hostname() != ""
}

// normalizeIDs keeps the integers of a JSON list, deduplicated and
// sorted; valid is false when one of them is not positive (or does not
// fit an int64). A missing field or a non-list is an empty, valid list.
func normalizeIDs(raw json.RawMessage) (ids []int64, valid bool) {
	var arr []json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &arr) != nil {
		return []int64{}, true
	}
	ids, valid = make([]int64, 0, len(arr)), true
	for _, el := range arr {
		n, isInt, fits := jsonInt(el)
		if !isInt {
			continue
		}
		if !fits || n <= 0 {
			valid = false
			if !fits {
				continue
			}
		}
		ids = append(ids, n)
	}
	slices.Sort(ids)
	return slices.Compact(ids), valid
}
