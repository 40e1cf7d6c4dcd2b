package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// ErrUnknownGateway is returned by [PolicyFor] for a gateway the input does
// not name.
var ErrUnknownGateway = errors.New("bgp: no such gateway")

// Policy is what the controller decides for the BGP speaker beside one gateway
// (graygw-speaker): the next hop, which VIPs it may announce and with which
// attributes, and what the controller withdraws (a drain, a VIP without a
// healthy backend). It holds no observation of the gateway itself: the speaker
// observes its own dataplane, so its announcements follow the packets and
// outlive the controller (docs/bgp.md, Speakers on the gateways).
type Policy struct {
	// Gateway is the gateway's name in the intent.
	Gateway string `json:"gateway"`
	// NextHop is the gateway's bgp_next_hop.
	NextHop netip.Addr `json:"nextHop"`
	// NextHopV6 is the gateway's bgp_next_hop_v6, the next hop of its IPv6
	// VIPs; the zero Addr when it has none.
	NextHopV6 netip.Addr `json:"nextHopV6,omitzero"`
	// Drained is true while an operator has drained the gateway.
	Drained bool `json:"drained,omitempty"`
	// VIPs are every VIP the gateway serves, sorted by address.
	VIPs []PolicyVIP `json:"vips"`
}

// PolicyVIP is one VIP of a [Policy].
type PolicyVIP struct {
	// Name is the VIP's name in the intent.
	Name string `json:"name"`
	// Address is announced as a /32 or, IPv6, a /128.
	Address netip.Addr `json:"address"`
	// Attributes are sent with the path.
	Attributes Attributes `json:"attributes"`
	// Withdraw are the controller's reasons not to announce the VIP through
	// this gateway whatever its dataplane serves (no-healthy-backend, from the
	// controller's backend health checks); empty when it may be announced.
	Withdraw []Reason `json:"withdraw,omitempty"`
}

// PolicyFor is the policy of gateway in in: the reasons of
// [ReasonsNotToAnnounce] that are the controller's to decide (drained,
// no-healthy-backend), never those it observes of the gateway
// (p4runtime-disconnected, health-check-failed): a controller that has lost
// the gateway does not know that the gateway stopped forwarding, and its
// speaker does.
func PolicyFor(in Input, gateway string) (Policy, error) {
	if err := in.Validate(); err != nil {
		return Policy{}, err
	}
	i := slices.IndexFunc(in.Gateways, func(g Gateway) bool { return g.Name == gateway })
	if i < 0 {
		return Policy{}, fmt.Errorf("%w: %q", ErrUnknownGateway, gateway)
	}
	gw := in.Gateways[i]
	p := Policy{Gateway: gw.Name, NextHop: gw.NextHop, NextHopV6: gw.NextHopV6, Drained: gw.Drained, VIPs: []PolicyVIP{}}
	gw.P4RuntimeConnected, gw.HealthCheckOK, gw.Drained = true, true, false
	for _, v := range in.VIPs {
		if len(v.Gateways) > 0 && !slices.Contains(v.Gateways, gateway) {
			continue
		}
		p.VIPs = append(p.VIPs, PolicyVIP{Name: v.Name, Address: v.Address, Attributes: v.Attributes.clone(),
			Withdraw: ReasonsNotToAnnounce(gw, v)})
	}
	slices.SortFunc(p.VIPs, func(a, b PolicyVIP) int { return a.Address.Compare(b.Address) })
	return p, nil
}

// Validate checks a policy as a speaker receives or loads it.
func (p Policy) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: policy: %s: %s", ErrInvalidInput, field, fmt.Sprintf(format, args...)))
	}
	if p.Gateway == "" {
		bad("gateway", "empty")
	}
	if !unicast4(p.NextHop) {
		bad("nextHop", "%v is not a unicast IPv4 address", p.NextHop)
	}
	if p.NextHopV6.IsValid() && !unicast6(p.NextHopV6) {
		bad("nextHopV6", "%v is not a unicast IPv6 address", p.NextHopV6)
	}
	seen := map[netip.Addr]int{}
	for i, v := range p.VIPs {
		f := fmt.Sprintf("vips[%d]", i)
		if !unicast4(v.Address) && !unicast6(v.Address) {
			bad(f+".address", "%v is not a unicast IPv4 or IPv6 address", v.Address)
		} else if v.Address.Is6() && !p.NextHopV6.IsValid() {
			bad(f+".address", "IPv6 VIP %s and no nextHopV6", v.Address)
		} else if j, dup := seen[v.Address]; dup {
			bad(f+".address", "%s is already vips[%d]", v.Address, j)
		} else {
			seen[v.Address] = i
		}
		for j, c := range v.Attributes.Communities {
			if _, err := ParseCommunity(c); err != nil {
				bad(fmt.Sprintf("%s.attributes.communities[%d]", f, j), "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

// Equal reports whether p and q are the same policy.
func (p Policy) Equal(q Policy) bool {
	return p.Gateway == q.Gateway && p.NextHop == q.NextHop && p.NextHopV6 == q.NextHopV6 && p.Drained == q.Drained &&
		slices.EqualFunc(p.VIPs, q.VIPs, func(a, b PolicyVIP) bool {
			return a.Name == b.Name && a.Address == b.Address && a.Attributes.equal(b.Attributes) && slices.Equal(a.Withdraw, b.Withdraw)
		})
}
