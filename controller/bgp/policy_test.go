package bgp

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
)

// TestPolicyForKeepsOnlyTheControllersReasons: what the controller observes of
// a gateway (its P4Runtime session, its reconcile health) never reaches the
// gateway's speaker; drains and backend health do.
func TestPolicyForKeepsOnlyTheControllersReasons(t *testing.T) {
	med := uint32(7)
	in := Input{
		Gateways: []Gateway{
			{Name: "gw1", NextHop: netip.MustParseAddr("10.0.0.1"), P4RuntimeConnected: false, HealthCheckOK: false},
			{Name: "gw2", NextHop: netip.MustParseAddr("10.0.0.2"), P4RuntimeConnected: true, HealthCheckOK: true, Drained: true},
		},
		VIPs: []VIP{
			{Name: "b", Address: netip.MustParseAddr("198.51.100.2"), Pools: []Pool{{Name: "p", HealthyBackends: 0}}},
			{Name: "a", Address: netip.MustParseAddr("198.51.100.1"), Pools: []Pool{{Name: "p", HealthyBackends: 1}},
				Attributes: Attributes{Communities: []string{"65000:1"}, MED: &med}},
			{Name: "only2", Address: netip.MustParseAddr("198.51.100.3"), Gateways: []string{"gw2"}, Pools: []Pool{{HealthyBackends: 1}}},
		},
	}
	p1, err := PolicyFor(in, "gw1")
	if err != nil {
		t.Fatal(err)
	}
	if p1.Drained || p1.NextHop != netip.MustParseAddr("10.0.0.1") || len(p1.VIPs) != 2 {
		t.Fatalf("gw1: %+v", p1)
	}
	if p1.VIPs[0].Name != "a" || len(p1.VIPs[0].Withdraw) != 0 || *p1.VIPs[0].Attributes.MED != 7 {
		t.Errorf("gw1 VIP a: %+v: want announceable with its attributes though the controller lost gw1", p1.VIPs[0])
	}
	if !slices.Equal(p1.VIPs[1].Withdraw, []Reason{ReasonNoHealthyBackend}) {
		t.Errorf("gw1 VIP b: withdraw %v, want no-healthy-backend", p1.VIPs[1].Withdraw)
	}
	p2, err := PolicyFor(in, "gw2")
	if err != nil {
		t.Fatal(err)
	}
	if !p2.Drained || len(p2.VIPs) != 3 || len(p2.VIPs[0].Withdraw) != 0 {
		t.Errorf("gw2: %+v: want drained at the gateway level, 3 VIPs, a's reasons empty", p2)
	}
	if !p1.Equal(p1) || p1.Equal(p2) {
		t.Error("Equal")
	}
	if _, err := PolicyFor(in, "gw9"); !errors.Is(err, ErrUnknownGateway) {
		t.Errorf("unknown gateway: %v", err)
	}
	bad := in
	bad.VIPs = append(slices.Clone(in.VIPs), VIP{Address: netip.MustParseAddr("198.51.100.1")})
	if _, err := PolicyFor(bad, "gw1"); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("duplicate VIP: %v, want ErrInvalidInput", err)
	}
	if err := (Policy{Gateway: "g", NextHop: netip.MustParseAddr("10.0.0.1"),
		VIPs: []PolicyVIP{{Address: netip.MustParseAddr("198.51.100.1"), Attributes: Attributes{Communities: []string{"x"}}}}}).Validate(); err == nil {
		t.Error("a bad community validated")
	}
}
