package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrWebhookAddress is what a refused callback address wraps: the URL's
// host resolves to a loopback, private, link-local, metadata or other
// non-public address, and WebhookConfig.AllowPrivate is off.
var ErrWebhookAddress = errors.New("server: webhook address not allowed")

// blockedPrefixes are the address ranges a webhook may not reach unless
// private addresses are allowed: everything that is not a public unicast
// address (RFC 6890 special-purpose registries), which covers the cloud
// metadata services (169.254.169.254, fd00:ec2::254, 100.100.100.200).
var blockedPrefixes = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
		"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
		"198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
		"::/128", "::1/128", "100::/64", "2001:db8::/32", "fc00::/7", "fec0::/10", "fe80::/10", "ff00::/8",
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// Prefixes that embed an IPv4 address, which is then checked too.
var (
	nat64Prefix  = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	teredoPrefix = netip.MustParsePrefix("2001::/32")
)

// addrBlocked says why ip is not a public unicast address, or "".
func addrBlocked(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return "invalid"
	}
	for _, p := range blockedPrefixes {
		if p.Contains(ip) {
			return blockedKind(ip)
		}
	}
	if ip.Is6() {
		b := ip.As16()
		var v4 [4]byte
		switch {
		case nat64Prefix.Contains(ip):
			copy(v4[:], b[12:16])
		case sixToFour.Contains(ip):
			copy(v4[:], b[2:6])
		case teredoPrefix.Contains(ip):
			for i := range v4 {
				v4[i] = b[12+i] ^ 0xff // the client address is stored inverted
			}
		default:
			return ""
		}
		if why := addrBlocked(netip.AddrFrom4(v4)); why != "" {
			return why + " (embedded in " + ip.String() + ")"
		}
	}
	return ""
}

// blockedKind names the kind of a non-public address for messages.
func blockedKind(ip netip.Addr) string {
	switch {
	case ip.IsLoopback():
		return "loopback"
	case ip == netip.MustParseAddr("169.254.169.254") || ip == netip.MustParseAddr("fd00:ec2::254"):
		return "metadata"
	case ip.IsLinkLocalUnicast():
		return "link-local"
	case ip.IsPrivate():
		return "private"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsMulticast() || ip.IsLinkLocalMulticast():
		return "multicast"
	}
	return "reserved"
}

// addrError is a refused address.
type addrError struct {
	addr netip.Addr
	kind string
}

func (e *addrError) Error() string { return ErrWebhookAddress.Error() + ": " + e.detail() }

// detail says which address and why, for the API's message.
func (e *addrError) detail() string { return fmt.Sprintf("%s is a %s address", e.addr, e.kind) }

func (e *addrError) Unwrap() error { return ErrWebhookAddress }

// checkAddr returns an *addrError for a non-public address.
func checkAddr(ip netip.Addr) error {
	if kind := addrBlocked(ip); kind != "" {
		return &addrError{addr: ip, kind: kind}
	}
	return nil
}

// dialControl is the net.Dialer Control of the webhook transport: it runs
// after name resolution, on the very address about to be connected, so a
// name that resolved to a public address when the subscription was made
// and to a private one now (DNS rebinding) is still refused.
func dialControl(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q: %w", ErrWebhookAddress, address, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrWebhookAddress, host)
	}
	return checkAddr(ip)
}

// lookupFunc resolves a host name to its addresses.
type lookupFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func defaultLookup(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// createLookupTimeout bounds the name resolution of a new callback URL.
const createLookupTimeout = 3 * time.Second

// checkCallbackHost is the create-time address check of a callback URL's
// host: an IP literal is judged at once; a name is resolved and refused when any of its addresses is not public. A name
// that does not resolve now is accepted: the connect-time check
// (dialControl) is the guarantee, this one only answers early.
func checkCallbackHost(ctx context.Context, lookup lookupFunc, host string) error {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		return checkAddr(ip)
	}
	ctx, cancel := context.WithTimeout(ctx, createLookupTimeout)
	defer cancel()
	addrs, err := lookup(ctx, host)
	if err != nil {
		return nil
	}
	for _, ip := range addrs {
		if err := checkAddr(ip); err != nil {
			return err
		}
	}
	return nil
}
