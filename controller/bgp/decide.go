package bgp

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Reason says why a (VIP, next hop) path is not announced.
type Reason string

// The reasons [Decide] gives, in the order it checks them, and the one the
// [Speaker] gives for a path that left the input altogether.
const (
	// ReasonP4RuntimeDisconnected: the controller has lost the gateway's
	// P4Runtime session, so its tables can no longer be kept right.
	ReasonP4RuntimeDisconnected Reason = "p4runtime-disconnected"
	// ReasonHealthCheckFailed: the gateway fails its health check.
	ReasonHealthCheckFailed Reason = "health-check-failed"
	// ReasonDrained: an operator drained the gateway.
	ReasonDrained Reason = "drained"
	// ReasonNoHealthyBackend: none of the VIP's pools has a healthy backend, so
	// attracting its traffic would only black-hole it.
	ReasonNoHealthyBackend Reason = "no-healthy-backend"
	// ReasonRemoved: the VIP, or the gateway serving it, is no longer in the
	// decision input.
	ReasonRemoved Reason = "removed"
)

// ErrInvalidInput is wrapped by every error [Decide] returns.
var ErrInvalidInput = errors.New("bgp: invalid announce input")

// Gateway is what the decision needs to know about one gateway server.
type Gateway struct {
	// Name identifies the gateway in [VIP.Gateways] and in logs.
	Name string `json:"name"`
	// NextHop is the gateway's IPv4 address, the next hop of its IPv4 VIPs'
	// paths.
	NextHop netip.Addr `json:"nextHop"`
	// NextHopV6 is the gateway's IPv6 address, the next hop of its IPv6 VIPs'
	// paths; the zero Addr when the gateway has none (it then serves no IPv6
	// VIP).
	NextHopV6 netip.Addr `json:"nextHopV6,omitzero"`
	// P4RuntimeConnected is true while the controller holds the gateway's
	// P4Runtime session.
	P4RuntimeConnected bool `json:"p4runtimeConnected"`
	// HealthCheckOK is true while the gateway passes its health check.
	HealthCheckOK bool `json:"healthCheckOK"`
	// Drained is true while an operator has drained the gateway.
	Drained bool `json:"drained"`
}

// Pool is the health of one backend pool of a VIP.
type Pool struct {
	// Name of the pool.
	Name string `json:"name"`
	// HealthyBackends is how many of its backends pass their health check.
	HealthyBackends int `json:"healthyBackends"`
}

// Attributes are the BGP path attributes of one VIP.
type Attributes struct {
	// Communities are standard communities, "65000:100" (see ParseCommunity).
	Communities []string `json:"communities,omitempty" yaml:"communities,omitempty"`
	// MED is the MULTI_EXIT_DISC; nil sends none.
	MED *uint32 `json:"med,omitempty" yaml:"med,omitempty"`
	// LocalPref is the LOCAL_PREF sent to iBGP neighbors (eBGP never carries
	// it); nil sends GoBGP's default of 100.
	LocalPref *uint32 `json:"localPref,omitempty" yaml:"localPref,omitempty"`
}

// VIP is one virtual IP and what its announcement depends on.
type VIP struct {
	// Name is the VIP's name in the intent (for logs and policies; optional).
	Name string `json:"name,omitempty"`
	// Address is the VIP, announced as a /32 (IPv4 unicast) or a /128 (IPv6
	// unicast).
	Address netip.Addr `json:"address"`
	// Gateways names the gateways serving the VIP; empty means every gateway.
	Gateways []string `json:"gateways,omitempty"`
	// Pools are the VIP's backend pools (the default pool and every pool a
	// gray rule of the VIP points at).
	Pools []Pool `json:"pools"`
	// Attributes are sent with every path of the VIP.
	Attributes Attributes `json:"attributes"`
}

// Input is everything the announce decision depends on.
type Input struct {
	// Gateways are every gateway that may serve a VIP.
	Gateways []Gateway `json:"gateways"`
	// VIPs are every VIP to announce.
	VIPs []VIP `json:"vips"`
}

// PathKey identifies one announced path: a VIP through one next hop.
type PathKey struct {
	// VIP is the announced /32 or /128.
	VIP netip.Addr `json:"vip"`
	// NextHop is the address of the gateway serving it.
	NextHop netip.Addr `json:"nextHop"`
}

// String returns "vip via nexthop".
func (k PathKey) String() string { return k.VIP.String() + " via " + k.NextHop.String() }

// Path is a (VIP, next hop) path that should be announced.
type Path struct {
	PathKey
	// Gateway is the name of the gateway whose address is the next hop.
	Gateway string `json:"gateway"`
	// Attributes are the VIP's.
	Attributes Attributes `json:"attributes"`
}

// Withdrawal is a (VIP, next hop) path that should not be announced, and why.
type Withdrawal struct {
	PathKey
	// Gateway is the name of the gateway whose address is the next hop.
	Gateway string `json:"gateway"`
	// Reasons are every reason that holds, in the order ReasonsNotToAnnounce
	// checks them.
	Reasons []Reason `json:"reasons"`
}

// Decision is the output of [Decide]: the paths to announce and, for every
// other (VIP, serving gateway) pair, the reasons not to. Both are sorted by VIP
// then next hop.
type Decision struct {
	// Announce are the paths to announce.
	Announce []Path `json:"announce"`
	// Withdraw are the paths not to announce, with the reasons.
	Withdraw []Withdrawal `json:"withdraw"`
}

// ReasonsNotToAnnounce is the "should announce" check for one VIP through one
// gateway: it returns nil when the path should be announced, otherwise every
// reason that holds, in a fixed order.
func ReasonsNotToAnnounce(gw Gateway, vip VIP) []Reason {
	var r []Reason
	if !gw.P4RuntimeConnected {
		r = append(r, ReasonP4RuntimeDisconnected)
	}
	if !gw.HealthCheckOK {
		r = append(r, ReasonHealthCheckFailed)
	}
	if gw.Drained {
		r = append(r, ReasonDrained)
	}
	if !slices.ContainsFunc(vip.Pools, func(p Pool) bool { return p.HealthyBackends > 0 }) {
		r = append(r, ReasonNoHealthyBackend)
	}
	return r
}

// Decide validates in and computes which (VIP, next hop) paths to announce.
// Bad input (a duplicate or malformed gateway or VIP, an unknown gateway name,
// a bad community) is an error wrapping [ErrInvalidInput], and no decision is
// returned, so a caller never applies half of a bad input.
func Decide(in Input) (Decision, error) {
	if err := in.Validate(); err != nil {
		return Decision{}, err
	}
	byName := make(map[string]Gateway, len(in.Gateways))
	for _, g := range in.Gateways {
		byName[g.Name] = g
	}
	var d Decision
	for _, v := range in.VIPs {
		names := v.Gateways
		if len(names) == 0 {
			for _, g := range in.Gateways {
				names = append(names, g.Name)
			}
		}
		for _, name := range names {
			gw := byName[name]
			key := PathKey{VIP: v.Address, NextHop: gw.nextHopFor(v.Address)}
			if reasons := ReasonsNotToAnnounce(gw, v); len(reasons) > 0 {
				d.Withdraw = append(d.Withdraw, Withdrawal{PathKey: key, Gateway: name, Reasons: reasons})
				continue
			}
			d.Announce = append(d.Announce, Path{PathKey: key, Gateway: name, Attributes: v.Attributes.clone()})
		}
	}
	slices.SortFunc(d.Announce, func(a, b Path) int { return comparePathKey(a.PathKey, b.PathKey) })
	slices.SortFunc(d.Withdraw, func(a, b Withdrawal) int { return comparePathKey(a.PathKey, b.PathKey) })
	return d, nil
}

// Validate checks in and returns every problem found, each naming its field.
func (in Input) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidInput, field, fmt.Sprintf(format, args...)))
	}
	names := map[string]int{}
	hops := map[netip.Addr]string{}
	for i, g := range in.Gateways {
		f := fmt.Sprintf("gateways[%d]", i)
		if g.Name == "" {
			bad(f+".name", "empty")
		} else if j, dup := names[g.Name]; dup {
			bad(f+".name", "%q is already gateways[%d]", g.Name, j)
		} else {
			names[g.Name] = i
		}
		if !g.NextHop.Is4() || g.NextHop.IsUnspecified() || g.NextHop.IsMulticast() {
			bad(f+".nextHop", "%v is not a unicast IPv4 address", g.NextHop)
		} else if prev, dup := hops[g.NextHop]; dup {
			bad(f+".nextHop", "%s is already the next hop of %s", g.NextHop, prev)
		} else {
			hops[g.NextHop] = f
		}
		if g.NextHopV6.IsValid() {
			if !unicast6(g.NextHopV6) {
				bad(f+".nextHopV6", "%v is not a unicast IPv6 address (global or unique local: a link-local next hop needs the session's interface)", g.NextHopV6)
			} else if prev, dup := hops[g.NextHopV6]; dup {
				bad(f+".nextHopV6", "%s is already the next hop of %s", g.NextHopV6, prev)
			} else {
				hops[g.NextHopV6] = f
			}
		}
	}
	vips := map[netip.Addr]int{}
	for i, v := range in.VIPs {
		f := fmt.Sprintf("vips[%d]", i)
		switch {
		case !unicast4(v.Address) && !unicast6(v.Address):
			bad(f+".address", "%v is not a unicast IPv4 or IPv6 address", v.Address)
		default:
			if j, dup := vips[v.Address]; dup {
				bad(f+".address", "%s is already vips[%d]", v.Address, j)
			} else {
				vips[v.Address] = i
			}
		}
		seen := map[string]bool{}
		for j, name := range v.Gateways {
			if _, ok := names[name]; !ok {
				bad(fmt.Sprintf("%s.gateways[%d]", f, j), "no gateway named %q", name)
			} else if seen[name] {
				bad(fmt.Sprintf("%s.gateways[%d]", f, j), "%q listed twice", name)
			}
			seen[name] = true
		}
		if v.Address.Is6() {
			// An IPv6 VIP needs an IPv6 next hop on every gateway serving it:
			// an IPv4 next hop in an IPv6 route (IPv4-mapped) is a route to
			// nowhere on most routers.
			for _, g := range in.Gateways {
				if (len(v.Gateways) == 0 || slices.Contains(v.Gateways, g.Name)) && !g.NextHopV6.IsValid() {
					bad(f+".address", "IPv6 VIP %s is served by gateway %q, which has no IPv6 next hop (nextHopV6)", v.Address, g.Name)
				}
			}
		}
		for j, c := range v.Attributes.Communities {
			if _, err := ParseCommunity(c); err != nil {
				bad(fmt.Sprintf("%s.attributes.communities[%d]", f, j), "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// nextHopFor is the gateway's next hop for a VIP of vip's family.
func (g Gateway) nextHopFor(vip netip.Addr) netip.Addr {
	if vip.Is6() {
		return g.NextHopV6
	}
	return g.NextHop
}

// unicast4 reports whether a is an IPv4 address a path can carry.
func unicast4(a netip.Addr) bool { return a.Is4() && !a.IsUnspecified() && !a.IsMulticast() }

// unicast6 reports whether a is an IPv6 address (not IPv4-mapped, not
// link-local, no zone) a path can carry.
func unicast6(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() && a.Zone() == "" && !a.IsUnspecified() && !a.IsMulticast() &&
		!a.IsLinkLocalUnicast() && !a.IsLoopback()
}

func (a Attributes) clone() Attributes {
	out := Attributes{Communities: slices.Clone(a.Communities)}
	if a.MED != nil {
		v := *a.MED
		out.MED = &v
	}
	if a.LocalPref != nil {
		v := *a.LocalPref
		out.LocalPref = &v
	}
	return out
}

// equal reports whether a and b send the same attributes.
func (a Attributes) equal(b Attributes) bool {
	eqPtr := func(x, y *uint32) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return slices.Equal(a.Communities, b.Communities) && eqPtr(a.MED, b.MED) && eqPtr(a.LocalPref, b.LocalPref)
}

func comparePathKey(a, b PathKey) int {
	return cmp.Or(a.VIP.Compare(b.VIP), a.NextHop.Compare(b.NextHop))
}
