package intent

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// inventory is a valid vpcs section for base (VNIs 5001 and 5002 are acme's).
const inventory = `vpcs:
  - vni: 5002
    routes:
      - {prefix: 10.0.1.0/24, next_hop: 10.0.1.1}
    vms:
      - {address: 10.0.1.5}
  - vni: 5001
    cidrs: [10.0.0.0/24]
    router_mac: "02:00:00:00:10:fe"
    routes:
      - {prefix: 0.0.0.0/0, next_hop: 10.0.0.1}
      - {prefix: 172.16.0.0/16}
    vms:
      - {address: 10.0.0.5, name: web-1, mac: "02:00:00:00:00:05"}
      - {address: 10.0.0.6}
`

// wantDest fails t unless r is probed at want (what says why it should be).
func wantDest(t *testing.T, r Route, want, what string) {
	t.Helper()
	if d := r.Dest(); d != netip.MustParseAddr(want) {
		t.Errorf("%s, got %v", what, d)
	}
}

func TestInventory(t *testing.T) {
	in, err := Load([]byte(base + inventory))
	if err != nil {
		t.Fatal(err)
	}
	if len(in.VPCs) != 2 || in.VPCs[0].VNI != 5001 || in.VPCs[1].VNI != 5002 {
		t.Fatalf("VPCs not sorted by VNI: %+v", in.VPCs)
	}
	v, ok := in.VPC(5001)
	if !ok || v.Tenant != "acme" || v.RouterMAC != "02:00:00:00:10:fe" || len(v.CIDRs) != 1 || len(v.VMs) != 2 ||
		v.VMs[0].Name != "web-1" || v.VMs[0].MAC != "02:00:00:00:00:05" || v.VMs[1].Address != netip.MustParseAddr("10.0.0.6") {
		t.Fatalf("vpc 5001: %+v", v)
	}
	wantDest(t, v.Routes[0], "10.0.0.1", "a route's next hop is its destination")
	wantDest(t, v.Routes[1], "172.16.0.1", "a route without next hop is probed at its first host address")
	wantDest(t, Route{Prefix: netip.MustParsePrefix("172.16.0.9/32")}, "172.16.0.9", "a /32 route is probed at its address")
	// The inventory compiles to nothing: the same intent without it gives the
	// same rules, and the document round-trips.
	bare, err := Load([]byte(base))
	if err != nil || len(bare.VPCs) != 0 || len(bare.Rules) != len(in.Rules) {
		t.Fatalf("without inventory: %v %+v", err, bare)
	}
	s, _ := Parse([]byte(base + inventory))
	out, err := Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Parse(out)
	if err != nil || len(s2.VPCs) != 2 || s2.VPCs[1].VMs[0].Name != "web-1" || s2.VPCs[1].Routes[1].NextHop != "" {
		t.Fatalf("round trip: %v %+v", err, s2)
	}
}

func TestInventoryErrors(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(s *Spec)
		class error
		path  string
		msg   string
	}{
		{"vni range", func(s *Spec) { s.VPCs[0].VNI = 1 << 24 }, ErrRange, "vpcs[0].vni", "want 1 to"},
		{"vni no tenant's", func(s *Spec) { s.VPCs[0].VNI = 6001 }, ErrUnknownRef, "vpcs[0].vni", "no tenant's VNI"},
		{"vni twice", func(s *Spec) { s.VPCs[1].VNI = 5002 }, ErrDuplicate, "vpcs[1].vni", "already vpcs[0]"},
		{"bad prefix", func(s *Spec) { s.VPCs[1].Routes[1].Prefix = "172.16.0.0/33" }, ErrAddress, "vpcs[1].routes[1].prefix", "not an IPv4 or IPv6 prefix"},
		{"host bits", func(s *Spec) { s.VPCs[1].Routes[1].Prefix = "172.16.0.1/16" }, ErrAddress, "vpcs[1].routes[1].prefix", "host bits"},
		{"ipv6 vm without ipv6 route", func(s *Spec) { s.VPCs[0].VMs[0].Address = "fd00::5" }, ErrConflict, "vpcs[0].vms[0].address", "fd00::5 is IPv6 and the VPC has no IPv6 route"},
		{"next hop family", func(s *Spec) { s.VPCs[1].Routes[1].NextHop = "fd00::1" }, ErrConflict, "vpcs[1].routes[1].next_hop", "fd00::1 is IPv6, the prefix 172.16.0.0/16 IPv4"},
		{"ipv4-mapped prefix", func(s *Spec) { s.VPCs[1].Routes[1].Prefix = "::ffff:172.16.0.0/112" }, ErrAddress, "vpcs[1].routes[1].prefix", "IPv4-mapped"},
		{"route twice", func(s *Spec) { s.VPCs[1].Routes[1].Prefix = "0.0.0.0/0" }, ErrDuplicate, "vpcs[1].routes[1].prefix", "already vpcs[1].routes[0]"},
		{"bad next hop", func(s *Spec) { s.VPCs[1].Routes[0].NextHop = "10.0.0" }, ErrAddress, "vpcs[1].routes[0].next_hop", "not an IPv4"},
		{"no routes", func(s *Spec) { s.VPCs[0].Routes = nil }, ErrRequired, "vpcs[0].routes", "at least one route"},
		{"no vms", func(s *Spec) { s.VPCs[0].VMs = nil }, ErrRequired, "vpcs[0].vms", "at least one VM"},
		{"vm address", func(s *Spec) { s.VPCs[1].VMs[1].Address = "10.0.0.256" }, ErrAddress, "vpcs[1].vms[1].address", "not an IPv4"},
		{"vm missing address", func(s *Spec) { s.VPCs[1].VMs[1].Address = "" }, ErrRequired, "vpcs[1].vms[1].address", "missing"},
		{"vm not unicast", func(s *Spec) { s.VPCs[0].VMs[0].Address = "224.0.0.5" }, ErrAddress, "vpcs[0].vms[0].address", "not a unicast"},
		{"vm twice", func(s *Spec) { s.VPCs[1].VMs[1].Address = "10.0.0.5" }, ErrDuplicate, "vpcs[1].vms[1].address", "already vpcs[1].vms[0]"},
		{"vm is the router", func(s *Spec) { s.VPCs[1].VMs[1].Address = "10.0.0.1" }, ErrConflict, "vpcs[1].vms[1].address", "probe destination of vpcs[1].routes[0]"},
		{"vm outside cidrs", func(s *Spec) { s.VPCs[1].VMs[1].Address = "10.0.9.6" }, ErrConflict, "vpcs[1].vms[1].address", "outside the VPC's cidrs"},
		{"vm name", func(s *Spec) { s.VPCs[1].VMs[1].Name = "web 2" }, ErrRange, "vpcs[1].vms[1].name", "names are"},
		{"vm name twice", func(s *Spec) { s.VPCs[1].VMs[1].Name = "web-1" }, ErrDuplicate, "vpcs[1].vms[1].name", "already names vpcs[1].vms[0]"},
		{"vm mac", func(s *Spec) { s.VPCs[1].VMs[0].MAC = "02:00" }, ErrAddress, "vpcs[1].vms[0].mac", "not a MAC"},
		{"router mac", func(s *Spec) { s.VPCs[1].RouterMAC = "01:00:5e:00:00:01" }, ErrAddress, "vpcs[1].router_mac", "multicast"},
		{"cidr", func(s *Spec) { s.VPCs[1].CIDRs[0] = "10.0.0.0/8x" }, ErrAddress, "vpcs[1].cidrs[0]", "not an IPv4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse([]byte(base + inventory))
			if err != nil {
				t.Fatal(err)
			}
			c.edit(s)
			in, err := s.Validate()
			if in != nil || err == nil {
				t.Fatal("validated")
			}
			wantProblem(t, err, c.class, c.path, c.msg, nil)
		})
	}
	// Unknown keys are errors, named by path.
	_, err := Parse([]byte(base + strings.Replace(inventory, "{address: 10.0.0.6}", "{address: 10.0.0.6, colour: red}", 1)))
	if !errors.Is(err, ErrUnknownField) {
		t.Fatalf("unknown key: %v", err)
	}
}

// A dual-stack VPC: IPv6 routes and VMs beside the IPv4 ones; an IPv6 /64
// without next hop is probed at its first host address.
func TestInventoryIPv6(t *testing.T) {
	doc := base + strings.Replace(inventory, `      - {prefix: 172.16.0.0/16}
`, `      - {prefix: 172.16.0.0/16}
      - {prefix: "::/0", next_hop: "fd00:1::1"}
      - {prefix: "fd00:9::/64"}
`, 1)
	doc = strings.Replace(doc, `    cidrs: [10.0.0.0/24]
`, `    cidrs: [10.0.0.0/24, "fd00:1::/64"]
`, 1)
	doc = strings.Replace(doc, `      - {address: 10.0.0.6}
`, `      - {address: 10.0.0.6}
      - {address: "fd00:1::5", name: web-6}
`, 1)
	in, err := Load([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := in.VPC(5001)
	if len(v.VMs) != 3 || v.VMs[2].Address != netip.MustParseAddr("fd00:1::5") || len(v.Routes) != 4 {
		t.Fatalf("vpc 5001: %+v", v)
	}
	wantDest(t, v.Routes[2], "fd00:1::1", "next hop")
	wantDest(t, v.Routes[3], "fd00:9::1", "a /64 without next hop is probed at its first host address")
	wantDest(t, Route{Prefix: netip.MustParsePrefix("fd00:9::7/128")}, "fd00:9::7", "a /128 route is probed at its address")
	// An IPv6 VM outside the VPC's IPv6 cidrs is refused.
	if _, err := Load([]byte(strings.Replace(doc, `"fd00:1::5"`, `"fd00:2::5"`, 1))); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "outside the VPC's cidrs") {
		t.Errorf("outside cidrs: %v", err)
	}
}
