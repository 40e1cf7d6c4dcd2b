package bgp

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestDecisionTable is the table in docs/bgp.md: one row per input that
// matters, with every reason that holds.
func TestDecisionTable(t *testing.T) {
	for _, tc := range []struct {
		p4rt, health, drained, backend bool
		want                           []Reason
	}{
		{true, true, false, true, nil},
		{false, true, false, true, []Reason{ReasonP4RuntimeDisconnected}},
		{true, false, false, true, []Reason{ReasonHealthCheckFailed}},
		{true, true, true, true, []Reason{ReasonDrained}},
		{true, true, false, false, []Reason{ReasonNoHealthyBackend}},
		{false, false, true, false, []Reason{ReasonP4RuntimeDisconnected, ReasonHealthCheckFailed, ReasonDrained, ReasonNoHealthyBackend}},
	} {
		gw := Gateway{Name: "gw", NextHop: netip.MustParseAddr("10.0.0.1"), P4RuntimeConnected: tc.p4rt, HealthCheckOK: tc.health, Drained: tc.drained}
		vip := VIP{Address: netip.MustParseAddr("198.51.100.1"), Pools: []Pool{{Name: "a"}, {Name: "b"}}}
		if tc.backend {
			vip.Pools[1].HealthyBackends = 1
		}
		got := ReasonsNotToAnnounce(gw, vip)
		if !slices.Equal(got, tc.want) {
			t.Errorf("p4rt=%v health=%v drained=%v backend=%v: got %v, want %v", tc.p4rt, tc.health, tc.drained, tc.backend, got, tc.want)
		}
		d, err := Decide(Input{Gateways: []Gateway{gw}, VIPs: []VIP{vip}})
		if err != nil {
			t.Fatal(err)
		}
		if announced := len(d.Announce) == 1; announced != (tc.want == nil) || len(d.Announce)+len(d.Withdraw) != 1 {
			t.Errorf("Decide: %+v", d)
		}
	}
}

func TestDecideServingGatewaysAndOrder(t *testing.T) {
	in := Input{
		Gateways: []Gateway{
			{Name: "b", NextHop: netip.MustParseAddr("10.0.0.12"), P4RuntimeConnected: true, HealthCheckOK: true},
			{Name: "a", NextHop: netip.MustParseAddr("10.0.0.11"), P4RuntimeConnected: true, HealthCheckOK: true, Drained: true},
		},
		VIPs: []VIP{
			{Address: netip.MustParseAddr("198.51.100.20"), Gateways: []string{"b"}, Pools: []Pool{{Name: "p", HealthyBackends: 3}}},
			{Address: netip.MustParseAddr("198.51.100.10"), Pools: []Pool{{Name: "p", HealthyBackends: 3}},
				Attributes: Attributes{MED: u32(7)}},
		},
	}
	d, err := Decide(in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range d.Announce {
		got = append(got, p.String()+" "+p.Gateway)
	}
	want := []string{"198.51.100.10 via 10.0.0.12 b", "198.51.100.20 via 10.0.0.12 b"}
	if !slices.Equal(got, want) {
		t.Fatalf("announce %v, want %v", got, want)
	}
	if len(d.Withdraw) != 1 || d.Withdraw[0].String() != "198.51.100.10 via 10.0.0.11" || d.Withdraw[0].Gateway != "a" {
		t.Fatalf("withdraw %+v", d.Withdraw)
	}
	if *d.Announce[0].Attributes.MED != 7 {
		t.Fatal("attributes lost")
	}
	// The decision owns its attributes: changing the input later changes nothing.
	*in.VIPs[1].Attributes.MED = 8
	if *d.Announce[0].Attributes.MED != 7 {
		t.Fatal("decision shares the input's MED")
	}
}

func TestDecideRejectsBadInput(t *testing.T) {
	gw := func(name, nh string) Gateway { return Gateway{Name: name, NextHop: netip.MustParseAddr(nh)} }
	vip := func(addr string, gws ...string) VIP { return VIP{Address: netip.MustParseAddr(addr), Gateways: gws} }
	for _, tc := range []struct {
		name  string
		in    Input
		field string
	}{
		{"duplicate gateway", Input{Gateways: []Gateway{gw("a", "10.0.0.1"), gw("a", "10.0.0.2")}}, "gateways[1].name"},
		{"empty name", Input{Gateways: []Gateway{gw("", "10.0.0.1")}}, "gateways[0].name"},
		{"duplicate next hop", Input{Gateways: []Gateway{gw("a", "10.0.0.1"), gw("b", "10.0.0.1")}}, "gateways[1].nextHop"},
		{"IPv6 next hop", Input{Gateways: []Gateway{gw("a", "2001:db8::1")}}, "gateways[0].nextHop"},
		{"missing next hop", Input{Gateways: []Gateway{{Name: "a"}}}, "gateways[0].nextHop"},
		{"duplicate VIP", Input{Gateways: []Gateway{gw("a", "10.0.0.1")}, VIPs: []VIP{vip("198.51.100.1"), vip("198.51.100.1")}}, "vips[1].address"},
		{"unknown gateway", Input{Gateways: []Gateway{gw("a", "10.0.0.1")}, VIPs: []VIP{vip("198.51.100.1", "a", "z")}}, `vips[0].gateways[1]: no gateway named "z"`},
		{"bad community", Input{VIPs: []VIP{{Address: netip.MustParseAddr("198.51.100.1"), Attributes: Attributes{Communities: []string{"65000-100"}}}}}, "vips[0].attributes.communities[0]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Decide(tc.in)
			if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("err = %v, want ErrInvalidInput naming %q", err, tc.field)
			}
			if len(d.Announce)+len(d.Withdraw) != 0 {
				t.Fatalf("bad input still produced a decision: %+v", d)
			}
		})
	}
}
