package intent

import (
	"errors"
	"strings"
	"testing"
)

// TestIPv6VIPNeedsIPv6NextHops: an IPv6 VIP is announced with every
// gateway's bgp_next_hop_v6 (docs/bgp.md, IPv6 VIPs): an intent with one and
// a gateway without the field is refused, naming the gateway's field and the
// VIP, so the BGP decision never meets it.
func TestIPv6VIPNeedsIPv6NextHops(t *testing.T) {
	s := base6(t)
	if got := mustValidate(t, s).Gateways[0].BGPNextHopV6.String(); got != "fd00:1::1" {
		t.Fatalf("bgp_next_hop_v6 = %s", got)
	}
	s.Gateways[0].BGPNextHopV6 = ""
	_, err := s.Validate()
	if !errors.Is(err, ErrRequired) || !strings.Contains(err.Error(), "gateways[0].bgp_next_hop_v6: missing: VIP web6 is IPv6 (2001:db8:ff::1)") {
		t.Fatalf("err = %v", err)
	}
}
