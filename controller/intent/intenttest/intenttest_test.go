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
