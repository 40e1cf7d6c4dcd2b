package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// positiveDuration is a duration flag that refuses zero and negative values at
// parse time (exit 2): "--wait-timeout -5s" is a mistake, not "do not wait".
type positiveDuration struct{ d *time.Duration }

func (p positiveDuration) String() string {
	if p.d == nil {
		return ""
	}
	return p.d.String()
}

func (p positiveDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d <= 0 {
		return fmt.Errorf("%s: a duration greater than zero is required", s)
	}
	*p.d = d
	return nil
}

func (positiveDuration) Type() string { return "duration" }

// positiveDurationVar defines a positiveDuration flag.
func positiveDurationVar(fs *pflag.FlagSet, p *time.Duration, name string, value time.Duration, usage string) {
	*p = value
	fs.Var(positiveDuration{p}, name, usage)
}

// vmFlag parses a --vm value, VNI/IP (a VM: its VPC and inner source, IPv4
// or IPv6); a bad one is a usage error saying what to write.
func vmFlag(s string) (uint32, netip.Addr, error) {
	vs, ip, ok := strings.Cut(s, "/")
	vni, err := strconv.ParseInt(vs, 10, 64)
	addr, aerr := hostAddr(ip)
	if !ok || err != nil || vni < 1 || vni > 0xffffff || aerr != nil {
		return 0, netip.Addr{}, usagef("--vm %q: want VNI/IP, e.g. 5001/192.168.1.5 or 5001/2001:db8::5", s)
	}
	return uint32(vni), addr, nil
}

// hostAddr parses one host's address, IPv4 or IPv6, as selectors take it: no
// zone, and not an IPv4-mapped IPv6 address (the IPv4 address is meant).
func hostAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return a, err
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%q: no zone", s)
	case a.Is4In6():
		return netip.Addr{}, fmt.Errorf("%q: an IPv4-mapped address: write %s", s, a.Unmap())
	}
	return a, nil
}

// prefixFlag parses a --prefix value: an IPv4 or IPv6 prefix without host
// bits (not /0: that is no selector).
func prefixFlag(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || p.Masked() != p || p.Bits() == 0 || p.Addr().Is4In6() {
		return netip.Prefix{}, usagef("--prefix %q: want a prefix without host bits, e.g. 192.168.1.0/28 or 2001:db8::/64", s)
	}
	return p, nil
}

// flowEnd parses one end of a --flow SPEC: HOST, HOST:PORT, [IPV6] or
// [IPV6]:PORT, where HOST is an IPv4 address, an IPv6 address (a port after
// an IPv6 address needs the brackets: 2001:db8::1:80 is an address), * or
// nothing (any address). port is "" when the end has none ("*": any port).
func flowEnd(v string) (addr netip.Addr, port string, err error) {
	host := v
	switch {
	case strings.HasPrefix(v, "["):
		h, rest, ok := strings.Cut(v[1:], "]")
		if !ok {
			return addr, "", fmt.Errorf("%q: no ] after the IPv6 address", v)
		}
		if rest != "" {
			if port, ok = strings.CutPrefix(rest, ":"); !ok || port == "" {
				return addr, "", fmt.Errorf("%q: want [IPV6]:PORT", v)
			}
		}
		if addr, err = hostAddr(h); err != nil || !addr.Is6() {
			return netip.Addr{}, "", fmt.Errorf("address %q: want an IPv6 address inside [ ]", v)
		}
		return addr, port, nil
	case strings.Count(v, ":") > 1: // a bare IPv6 address: no port
		if addr, err = hostAddr(v); err != nil || !addr.Is6() {
			return netip.Addr{}, "", fmt.Errorf("address %q: want IPv4, IPv6 or * (an IPv6 address with a port: [2001:db8::5]:80)", v)
		}
		return addr, "", nil
	case strings.Contains(v, ":"):
		host, port, _ = strings.Cut(v, ":")
		if port == "" {
			return addr, "", fmt.Errorf("%q: a ':' without a port", v)
		}
	}
	if host == "*" || host == "" {
		return netip.Addr{}, port, nil
	}
	if addr, err = hostAddr(host); err != nil || !addr.Is4() {
		return netip.Addr{}, "", fmt.Errorf("address %q: want IPv4, IPv6 or *", host)
	}
	return addr, port, nil
}

// endpoint writes a flow end the way flowEnd reads it: addr ("*" when
// empty), with :port when port is not nil, an IPv6 address in brackets then.
func endpoint(addr string, port *int64) string {
	if addr == "" {
		addr = "*"
	}
	if port == nil {
		return addr
	}
	if strings.Contains(addr, ":") {
		addr = "[" + addr + "]"
	}
	return fmt.Sprintf("%s:%d", addr, *port)
}
