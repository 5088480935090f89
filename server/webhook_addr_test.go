package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAddrBlocked(t *testing.T) {
	for _, tc := range []struct {
		addr string
		kind string // "" = allowed
	}{
		{"127.0.0.1", "loopback"},
		{"127.5.6.7", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"192.168.1.1", "private"},
		{"fd12::1", "private"},
		{"169.254.169.254", "metadata"},
		{"fd00:ec2::254", "metadata"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"100.100.100.200", "reserved"}, // CGNAT; Alibaba's metadata
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"255.255.255.255", "reserved"},
		{"64:ff9b::7f00:1", "loopback (embedded in 64:ff9b::7f00:1)"},
		{"2002:a00:1::", "private (embedded in 2002:a00:1::)"},
		{"8.8.8.8", ""},
		{"93.184.216.34", ""},
		{"2606:4700:4700::1111", ""},
		{"64:ff9b::808:808", ""},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			assert.Equal(t, tc.kind, addrBlocked(netip.MustParseAddr(tc.addr)))
		})
	}
}

func TestDialControl(t *testing.T) {
	assert.NoError(t, dialControl("tcp4", "8.8.8.8:443", nil))
	err := dialControl("tcp4", "127.0.0.1:80", nil)
	assert.ErrorIs(t, err, ErrWebhookAddress)
	assert.Contains(t, err.Error(), "loopback")
	assert.ErrorIs(t, dialControl("tcp6", "[fe80::1%eth0]:80", nil), ErrWebhookAddress)
	assert.ErrorIs(t, dialControl("tcp", "nonsense", nil), ErrWebhookAddress)
}

// TestWebhookRefusesPrivateAtCreate: without WK_WEBHOOK_ALLOW_PRIVATE a
// callback on a non-public address is refused with 400.
func TestWebhookRefusesPrivateAtCreate(t *testing.T) {
	e := newLiveEnv(t, "", "", func(c *Config) { c.Webhooks = WebhookConfig{} })
	for _, u := range []string{
		"http://127.0.0.1:8080/hook", "http://[::1]/hook", "http://10.0.0.5/hook", "https://169.254.169.254/latest/meta-data",
		"http://192.168.1.1/", "http://[fe80::1]/", "http://[::ffff:127.0.0.1]/", "http://100.64.0.1/", "http://0.0.0.0/",
		"http://[fd00:ec2::254]/", "http://localhost:4004/hook",
	} {
		t.Run(u, func(t *testing.T) {
			status, m := postJSON(t, e.httpURL("/api/v1/subscriptions"), map[string]any{
				"subscriber_id": "s", "system_ids": []int{30000142}, "callback_url": u,
			})
			require.Equal(t, http.StatusBadRequest, status, "%v", m)
			msg := m["error"].(map[string]any)["message"].(string)
			assert.Contains(t, msg, "callback_url must not resolve to a loopback, private, link-local or metadata address")
		})
	}
	status, _ := postJSON(t, e.httpURL("/api/v1/subscriptions"), map[string]any{
		"subscriber_id": "s", "system_ids": []int{30000142}, "callback_url": "https://93.184.216.34/hook",
	})
	assert.Equal(t, http.StatusCreated, status, "a public address is fine")
}

// TestWebhookRefusesPrivateAtConnect: a name that resolved to a public
// address at create time and resolves to loopback when delivering (DNS
// rebinding) is refused by the dialer's check; nothing reaches the
// endpoint.
func TestWebhookRefusesPrivateAtConnect(t *testing.T) {
	e := newLiveEnv(t, "", "", fastHooks(func(c *WebhookConfig) { c.AllowPrivate = false }))
	h := newHookReceiver(t, nil)
	w := e.srv.webhooks
	w.lookup = func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("93.184.216.34")}, nil // what DNS said then
	}
	port := strconv.Itoa(h.srv.Listener.Addr().(*net.TCPAddr).Port)
	sub, secret, err := w.Create(context.Background(), WebhookRequest{
		SubscriberID: "rebind", SystemIDs: []int64{30000142}, CallbackURL: "http://localhost:" + port + "/hook",
	})
	require.NoError(t, err)
	h.setSecret(secret)
	e.add(makeKills(t, 7_700_000, 1, 30000142)...)
	require.Eventually(t, func() bool { return e.delivery(sub.ID).LastError != "" }, 10*time.Second, 5*time.Millisecond)
	assert.Contains(t, e.delivery(sub.ID).LastError, "loopback address")
	assert.GreaterOrEqual(t, metricValue(t, w.met.deliveries.WithLabelValues("refused")), 1.0)
	assert.Zero(t, h.count(), "nothing reached the endpoint")
	assert.True(t, errors.Is(checkCallbackHost(context.Background(), defaultLookup, "localhost"), ErrWebhookAddress),
		"the real resolver's answer for localhost is refused at create time too")
}
