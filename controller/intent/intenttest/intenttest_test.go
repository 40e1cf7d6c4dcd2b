package intenttest_test

import (
	"net/netip"
	"testing"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/intent/intenttest"
)

// TestWorldsLoad: both worlds are valid intents as they stand, and say what
// their godoc says.
func TestWorldsLoad(t *testing.T) {
	for name, d := range map[string]intenttest.Doc{"small": intenttest.Small(), "router": intenttest.Router(), "vpc": intenttest.VPC("127.0.0.1:9559"),
		"small6": intenttest.IPv6(intenttest.Small()), "vpc6": intenttest.IPv6(intenttest.VPC("127.0.0.1:9559"))} {
		s, err := intent.Parse([]byte(d.YAML()))
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, d.YAML())
		}
		if _, err := intent.Load([]byte(d.YAML())); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(s.Gateways) != 1 || len(s.VIPs) != 1 || len(s.Pools) != 2 || len(s.GrayRules) != 0 {
			t.Errorf("%s: %d gateways, %d VIPs, %d pools, %d rules; want 1, 1, 2, 0", name, len(s.Gateways), len(s.VIPs), len(s.Pools), len(s.GrayRules))
		}
	}
}

// TestExampleLoads: Example finds the documented example, and it is valid.
func TestExampleLoads(t *testing.T) {
	if _, err := intent.Load(intenttest.Example(t)); err != nil {
		t.Fatal(err)
	}
}

// TestIPv6World: IPv6 gives the VIP and every backend an IPv6 address, and
// leaves the original document as it was.
func TestIPv6World(t *testing.T) {
	d := intenttest.Small()
	in, err := intent.Load([]byte(intenttest.IPv6(d).YAML()))
	if err != nil {
		t.Fatal(err)
	}
	if a := in.VIPs[0].Address; a != netip.MustParseAddr("2001:db8:ff::1") {
		t.Errorf("VIP %s", a)
	}
	for _, b := range in.Backends {
		if !b.UnderlayIP.Is6() {
			t.Errorf("backend %s underlay %s", b.Name, b.UnderlayIP)
		}
	}
	if d.Pools[0].Backends[0].UnderlayIP != "10.2.0.11" {
		t.Error("IPv6 changed its argument")
	}
}

// TestMoreGateways: NextHop and NextHopV6 are the first gateway's
// bgp_next_hop and bgp_next_hop_v6, and More adds gateways after it, each
// with its agent, next hops and ports.
func TestMoreGateways(t *testing.T) {
	d := intenttest.VPC("127.0.0.1:9559")
	d.NextHop, d.NextHopV6 = "10.9.0.11", "fd00:9::11"
	d.More = []intenttest.Gateway{{Name: "gw2", Agent: "127.0.0.1:9560", NextHop: "10.9.0.12", NextHopV6: "fd00:9::12",
		Ports: map[int]string{2: "02:00:00:00:02:02"}}}
	in, err := intent.Load([]byte(d.YAML()))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Gateways) != 2 || in.Gateways[0].BGPNextHop != netip.MustParseAddr("10.9.0.11") ||
		in.Gateways[1].Name != "gw2" || in.Gateways[1].P4Runtime != "127.0.0.1:9560" || in.Gateways[1].BGPNextHop != netip.MustParseAddr("10.9.0.12") {
		t.Fatalf("gateways: %+v", in.Gateways)
	}
	if in.Gateways[0].BGPNextHopV6 != netip.MustParseAddr("fd00:9::11") || in.Gateways[1].BGPNextHopV6 != netip.MustParseAddr("fd00:9::12") {
		t.Errorf("IPv6 next hops: %v, %v", in.Gateways[0].BGPNextHopV6, in.Gateways[1].BGPNextHopV6)
	}
	if p, ok := in.Gateways[1].Port(2); !ok || p.MAC != [6]byte{2, 0, 0, 0, 2, 2} {
		t.Errorf("gw2 port 2: %+v %v", p, ok)
	}
}
