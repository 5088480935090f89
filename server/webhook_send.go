package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
)

const (
	// webhookBodyCap is how much of a response body is read.
	webhookBodyCap = 4 << 10
	// webhookErrorText caps the body excerpt kept in last_error.
	webhookErrorText = 200
)

// webhookMessage is one batch as sent: its webhook-id and its body, the
// same for every attempt.
type webhookMessage struct {
	id   string
	body []byte
}

// outcome classifies one delivery attempt (the metrics' result label).
type outcome int

// The outcomes of an attempt.
const (
	outcomeSuccess outcome = iota
	outcomeHTTPError
	outcomeGone
	outcomeTimeout
	outcomeNetwork
	outcomeRefused
)

var outcomeNames = [...]string{"success", "http_error", "gone", "timeout", "network_error", "refused"}

func (o outcome) String() string { return outcomeNames[o] }

// sendResult is the result of one attempt; err is nil on success.
type sendResult struct {
	outcome outcome
	status  int
	err     error
	took    time.Duration
}

// newWebhookClient builds the delivery client: no proxy (a proxy would
// connect for us, past the address check), redirects not followed,
// every connection's address checked after resolution unless private
// addresses are allowed.
func newWebhookClient(cfg WebhookConfig) *http.Client {
	d := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	if !cfg.AllowPrivate {
		d.Control = dialControl
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// send makes one attempt: a POST of msg to url, signed with key per
// Standard Webhooks, within Timeout. An empty url is a successful no-op
// (API.md §9 item 12). Only a 2xx is a success; a 3xx is not followed.
func (w *Webhooks) send(ctx context.Context, url string, key []byte, msg webhookMessage) sendResult {
	if url == "" {
		return sendResult{outcome: outcomeSuccess}
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(msg.body))
	if err != nil {
		return sendResult{outcome: outcomeNetwork, err: fmt.Errorf("request: %w", err)}
	}
	ts := time.Now().Unix()
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	h.Set("User-Agent", w.cfg.UserAgent)
	h.Set("webhook-id", msg.id)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", signWebhook(key, msg.id, ts, msg.body))
	start := time.Now()
	resp, err := w.client.Do(req)
	took := time.Since(start)
	if err != nil {
		return failedSend(err, took, w.cfg.Timeout)
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, webhookBodyCap))
	res := sendResult{status: resp.StatusCode, took: time.Since(start)}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		res.outcome = outcomeSuccess
	case resp.StatusCode == http.StatusGone:
		res.outcome, res.err = outcomeGone, statusError(resp.StatusCode, head)
	default:
		res.outcome, res.err = outcomeHTTPError, statusError(resp.StatusCode, head)
	}
	return res
}

// failedSend classifies a request that got no response.
func failedSend(err error, took, timeout time.Duration) sendResult {
	var ne net.Error
	switch {
	case errors.Is(err, ErrWebhookAddress):
		return sendResult{outcome: outcomeRefused, err: err, took: took}
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return sendResult{outcome: outcomeTimeout, err: fmt.Errorf("no answer within %s: %w", timeout, err), took: took}
	}
	return sendResult{outcome: outcomeNetwork, err: err, took: took}
}

// statusError describes a non-2xx answer with the start of its body.
func statusError(code int, body []byte) error {
	text := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.ToValidUTF8(string(body), ""))
	text = strings.Join(strings.Fields(text), " ")
	if len(text) > webhookErrorText {
		text = strings.ToValidUTF8(text[:webhookErrorText], "") + "…"
	}
	if text == "" {
		return fmt.Errorf("HTTP %d", code)
	}
	return fmt.Errorf("HTTP %d: %s", code, text)
}

// signWebhook is the Standard Webhooks signature: "v1," and the base64
// HMAC-SHA256, keyed with the decoded secret, of "id.timestamp.body".
func signWebhook(key []byte, id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// batchBody is the original's webhook payload (API.md §6.5):
// {"type":"killmail_update","system_id","kills":[…],"timestamp"}, the
// kills in their canonical encoding, as stored.
func batchBody(system int64, kills []json.RawMessage, ts string) []byte {
	n := 96
	for _, k := range kills {
		n += len(k) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"type":"killmail_update","system_id":`...)
	b = strconv.AppendInt(b, system, 10)
	b = append(b, `,"kills":[`...)
	for i, k := range kills {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, k...)
	}
	b = append(b, `],"timestamp":`...)
	b = strconv.AppendQuote(b, ts)
	return append(b, '}')
}
