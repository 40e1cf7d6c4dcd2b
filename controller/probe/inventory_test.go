package probe

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/intent"
)

// invIntent is labIntent without its rules, with tenants and an inventory:
// VNI 5001 has 3 VMs and 2 routes (the VPC router as the default route's next
// hop, and a service prefix probed at its first address).
var invIntent = labWorld + `tenants:
  - {name: acme, id: 7, vnis: [5001, 5002]}
vpcs:
  - vni: 5001
    router_mac: "02:00:00:00:10:fe"
    routes:
      - {prefix: 0.0.0.0/0, next_hop: 192.168.1.1}
      - {prefix: 10.96.0.0/16}
      - {prefix: 192.168.0.0/16, next_hop: 192.168.1.1}   # same destination: probed once
    vms:
      - {address: 192.168.1.5, name: web-1}
      - {address: 192.168.1.6}
      - {address: 192.168.1.7}
  - vni: 5002
    routes: [{prefix: 0.0.0.0/0, next_hop: 192.168.2.1}]
    vms: [{address: 192.168.2.5}, {address: 192.168.1.5}]
`

var svc = netip.MustParseAddr("10.96.0.1")

func TestFromIntentOneTargetPerVMAndRoute(t *testing.T) {
	in, err := intent.Load([]byte(invIntent))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := FromIntent(in, nil, vip, 5001, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 6 {
		t.Fatalf("%d targets, want 3 VMs x 2 destinations: %v", len(ts), ts)
	}
	for i, tg := range ts {
		wantVM := netip.AddrFrom4([4]byte{192, 168, 1, byte(5 + i/2)})
		wantDst := []netip.Addr{router, svc}[i%2]
		if tg.VNI != 5001 || tg.VM != wantVM || tg.Router != wantDst || tg.RouterMAC != "02:00:00:00:10:fe" ||
			tg.ExpectPool != "base-router" || tg.ExpectCluster != intent.ClusterBase {
			t.Errorf("target %d: %+v, want %v -> %v on base-router", i, tg, wantVM, wantDst)
		}
	}

	// A VM-scoped cutover (a /32 rule, as graygw cutover --vm writes it)
	// changes that VM's expectation only, towards both destinations.
	s, _ := intent.Parse([]byte(invIntent))
	vni := int64(5001)
	s.GrayRules = append(s.GrayRules, intent.RuleSpec{Name: "vm-192.168.1.6", Pool: "gray-router",
		Match: intent.MatchSpec{VIP: "vpc-router", VNI: &vni, Src: "192.168.1.6"}})
	moved, err := s.Validate()
	if err != nil {
		t.Fatal(err)
	}
	after, err := FromIntent(moved, nil, vip, 5001, netip.Addr{})
	if err != nil || len(after) != 6 {
		t.Fatalf("after the cutover: %v %v", after, err)
	}
	for i, tg := range after {
		want := "base-router"
		if tg.VM == netip.MustParseAddr("192.168.1.6") {
			want = "gray-router"
		}
		if tg.ExpectPool != want || tg.Router != ts[i].Router || tg.VM != ts[i].VM {
			t.Errorf("after the VM cutover, target %d: %+v, want pool %s", i, tg, want)
		}
	}
	// A rule on a destination prefix changes only the targets towards it.
	s.GrayRules = append(s.GrayRules, intent.RuleSpec{Name: "svc", Pool: "gray-router",
		Match: intent.MatchSpec{VIP: "vpc-router", VNI: &vni, Dst: "10.96.0.0/16"}})
	dst, err := s.Validate()
	if err != nil {
		t.Fatal(err)
	}
	byDst, err := FromIntent(dst, nil, vip, 5001, netip.MustParseAddr("192.168.1.5"))
	if err != nil || len(byDst) != 2 || byDst[0].ExpectPool != "base-router" || byDst[1].Router != svc || byDst[1].ExpectPool != "gray-router" {
		t.Fatalf("dst rule: %+v %v", byDst, err)
	}
}

func TestIntentTargetsScope(t *testing.T) {
	in, err := intent.Load([]byte(invIntent))
	if err != nil {
		t.Fatal(err)
	}
	if all, err := IntentTargets(in, 0, netip.Addr{}); err != nil || len(all) != 8 {
		t.Fatalf("every VPC: %d %v", len(all), err)
	}
	one, err := IntentTargets(in, 5001, netip.MustParseAddr("192.168.1.7"))
	if err != nil || len(one) != 2 || one[0].VM != netip.MustParseAddr("192.168.1.7") || one[0].ExpectPool != "" {
		t.Fatalf("one VM: %v %v", one, err)
	}
	// A VM address unique in the inventory needs no VNI; one in two VPCs does.
	if ts, err := IntentTargets(in, 0, netip.MustParseAddr("192.168.2.5")); err != nil || len(ts) != 1 || ts[0].VNI != 5002 {
		t.Fatalf("VM without VNI: %v %v", ts, err)
	}
	for _, c := range []struct {
		vni  uint32
		vm   string
		want string
	}{
		{0, "192.168.1.5", "VM of 2 VPCs"},
		{5003, "", "VNI 5003 is not in the intent's inventory"},
		{5002, "192.168.1.6", "not a VM of VNI 5002"},
		{0, "192.168.9.9", "no VM of the intent's inventory"},
	} {
		var vm netip.Addr
		if c.vm != "" {
			vm = netip.MustParseAddr(c.vm)
		}
		if _, err := IntentTargets(in, c.vni, vm); !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d/%s: %v, want %q", c.vni, c.vm, err, c.want)
		}
	}
	bare, _ := intent.Load([]byte(labIntent))
	if _, err := IntentTargets(bare, 5001, netip.Addr{}); !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), "no inventory") {
		t.Errorf("intent without inventory: %v", err)
	}
	vpcs := IntentVPCs(in)
	if len(vpcs) != 2 || vpcs[0].Router != router || len(vpcs[0].Dests) != 2 || vpcs[0].Dests[1] != svc || len(vpcs[0].VMs) != 3 {
		t.Fatalf("IntentVPCs: %+v", vpcs)
	}
	if ts, err := Targets(vpcs, 5001, netip.Addr{}); err != nil || len(ts) != 6 {
		t.Fatalf("Targets over IntentVPCs: %v %v", ts, err)
	}
}

// A dual-stack VPC of the inventory: each VM is probed towards the routes of
// its own family only, with the expectations the compiled tables give (an
// IPv6 VM rule moves the IPv6 VM alone).
func TestIntentTargetsDualStack(t *testing.T) {
	doc := strings.Replace(invIntent, `      - {prefix: 192.168.0.0/16, next_hop: 192.168.1.1}   # same destination: probed once
`, `      - {prefix: 192.168.0.0/16, next_hop: 192.168.1.1}   # same destination: probed once
      - {prefix: "::/0", next_hop: "fd00:1::1"}
`, 1)
	doc = strings.Replace(doc, `      - {address: 192.168.1.7}
`, `      - {address: 192.168.1.7}
      - {address: "fd00:1::5"}
`, 1)
	in, err := intent.Load([]byte(doc + "gray_rules:\n  - {name: vm6, match: {vni: 5001, src: \"fd00:1::5\"}, pool: gray-router}\n"))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := FromIntent(in, nil, vip, 5001, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	six := 0
	for _, x := range ts {
		if x.VM.Is6() != x.Router.Is6() {
			t.Fatalf("target %v pairs families", x)
		}
		if x.VM.Is6() {
			six++
			if x.Router != netip.MustParseAddr("fd00:1::1") || x.ExpectPool != "gray-router" {
				t.Errorf("IPv6 target %+v", x)
			}
		} else if x.ExpectPool != "base-router" {
			t.Errorf("IPv4 target %+v", x)
		}
	}
	if six != 1 || len(ts) != 7 {
		t.Fatalf("%d targets, %d IPv6: want 6 IPv4 (3 VMs x 2 destinations) and 1 IPv6", len(ts), six)
	}
}
