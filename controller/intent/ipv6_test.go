package intent

import (
	"errors"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/intent/intenttest"
)

// base6 is base with an IPv6 VIP and IPv6 underlay addresses.
func base6(t *testing.T, rules ...string) *Spec {
	t.Helper()
	d := intenttest.IPv6(intenttest.Small())
	d.VIP.Name = "web6"
	d.Tenants = []string{"{name: acme, id: 7, vnis: [5001, 5002]}"}
	d.Rules = rules
	s, err := Parse([]byte(d.YAML()))
	if err != nil {
		t.Fatalf("base6: %v\n%s", err, d.YAML())
	}
	return s
}

// An IPv6 VIP with IPv6 backends validates; each rule's family says which
// table(s) it goes to, and an IPv6 VM rule is of the vm tier with its 128
// bits counted in the derived priority.
func TestIPv6Rules(t *testing.T) {
	s := base6(t,
		`{name: vm6, match: {vni: 5001, src: "2001:db8::5"}, pool: gray}`,
		`{name: net6, match: {vni: 5001, dst: "2001:db8:1::/64"}, pool: gray}`,
		`{name: vm4, match: {vni: 5001, src: 10.0.0.5}, pool: gray}`,
		`{name: vpc, match: {vni: 5002}, pool: gray}`,
		`{name: ping6, match: {vni: 5001, src: "2001:db8::/64", proto: icmpv6}, pool: gray}`,
		`{name: half6, match: {vni: 5002, src: "2001:db8:2::/48"}, percent: 50, pool: gray}`,
	)
	in := mustValidate(t, s)
	if !in.VIPs[0].Address.Is6() || !in.Backends[0].UnderlayIP.Is6() {
		t.Fatalf("VIP %s, backend %s", in.VIPs[0].Address, in.Backends[0].UnderlayIP)
	}
	want := map[string]struct {
		fam  Family
		tier Tier
		prio int32
	}{
		"vm6":   {Family6, TierVM, 5000 + 24 + 128},
		"net6":  {Family6, TierPrefix, 4000 + 24 + 64},
		"vm4":   {Family4, TierVM, 5000 + 24 + 32},
		"vpc":   {FamilyAny, TierVNI, 3000 + 24},
		"ping6": {Family6, TierFlow, 6000 + 24 + 64 + 8},
		"half6": {Family6, TierPrefix, 4000 + 24 + 48},
	}
	for _, r := range in.Rules {
		w := want[r.Name]
		if r.Key.Family != w.fam || r.Tier != w.tier || r.Priority != w.prio {
			t.Errorf("%s: family %s tier %s priority %d, want %s %s %d", r.Name, r.Key.Family, r.Tier, r.Priority, w.fam, w.tier, w.prio)
		}
	}
	vm6 := in.Rules[0].Key
	if vm6.Src6 != (Addr6{0x20, 0x01, 0x0d, 0xb8, 15: 5}) || vm6.Src6Mask != (Addr6{0: 0xff, 1: 0xff, 2: 0xff, 3: 0xff, 4: 0xff, 5: 0xff, 6: 0xff, 7: 0xff, 8: 0xff, 9: 0xff, 10: 0xff, 11: 0xff, 12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}) ||
		vm6.Mask.Src != 0 || vm6.Value.Src != 0 {
		t.Errorf("vm6 key %+v", vm6)
	}
	net6 := in.Rules[1].Key
	if net6.Dst6Mask != (Addr6{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) || net6.Dst6 != (Addr6{0x20, 0x01, 0x0d, 0xb8, 0, 1}) {
		t.Errorf("net6 key %+v", net6)
	}
	if got := in.Rules[0].Match.String(); got != "vni=5001 src=2001:db8::5" {
		t.Errorf("Match.String() = %q", got)
	}
	if in.Rules[5].Threshold != 32768 {
		t.Errorf("half6 threshold %d", in.Rules[5].Threshold)
	}
}

// Overlaps between IPv6 rules are found like IPv4 ones; an IPv4 and an
// IPv6 rule never overlap (two tables); a rule without an address overlaps
// rules of either family.
func TestIPv6Overlaps(t *testing.T) {
	s := base6(t,
		`{name: src6, match: {vni: 5001, src: "2001:db8::/64"}, pool: gray}`,
		`{name: dst6, match: {vni: 5001, dst: "2001:db8:1::/64"}, pool: gray}`,
	)
	_, err := s.Validate()
	if !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), `gray_rules[1]: rule "dst6" overlaps gray_rules[0] "src6" at the same priority 4088 (derived)`) {
		t.Fatalf("two IPv6 rules of one priority: %v", err)
	}

	s = base6(t,
		`{name: src4, match: {vni: 5001, src: 10.0.0.0/8}, pool: gray}`,
		`{name: src6, match: {vni: 5001, src: "2000::/8"}, pool: gray}`,
	)
	in, err := s.Validate()
	if err != nil {
		t.Fatalf("an IPv4 and an IPv6 rule of one priority (4032) refused: %v", err)
	}
	if in.Rules[0].Priority != in.Rules[1].Priority || in.Rules[0].Key.Overlaps(in.Rules[1].Key) {
		t.Fatal("IPv4 and IPv6 keys overlap")
	}

	for _, other := range []string{`src: 10.0.0.0/8`, `src: "2000::/8"`} {
		s = base6(t,
			`{name: vpc, match: {vni: 5001}, pool: gray, priority: 100}`,
			`{name: addr, match: {`+other+`}, pool: gray, priority: 100}`,
		)
		if _, err := s.Validate(); !errors.Is(err, ErrOverlap) {
			t.Errorf("%s and a rule without an address at one priority: %v", other, err)
		}
	}
	// Disjoint IPv6 prefixes do not overlap.
	s = base6(t,
		`{name: a, match: {vni: 5001, src: "2001:db8::/64"}, pool: gray}`,
		`{name: b, match: {vni: 5001, src: "2001:db8:0:1::/64"}, pool: gray}`,
	)
	if _, err := s.Validate(); err != nil {
		t.Fatalf("disjoint IPv6 prefixes refused: %v", err)
	}
}

// A pool serves the VIPs of the rules that send to it too: a rule for an
// IPv6 VIP may not send to a pool of IPv4 backends, and the problem names
// the backend and the VIP.
func TestBackendFamilyThroughRules(t *testing.T) {
	s := base6(t, `{name: r, match: {vip: web6, vni: 5001}, pool: four}`)
	s.Pools = append(s.Pools, PoolSpec{Name: "four", Cluster: "gray", Backends: []BackendSpec{
		{Name: "f1", UnderlayIP: "10.4.0.1", MAC: "02:00:00:00:40:01", Port: 3}}})
	_, err := s.Validate()
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(),
		`pools[2].backends[0].underlay_ip: backend "f1" has an IPv4 underlay_ip (10.4.0.1), but pool "four" serves VIP "web6" (2001:db8:ff::1, IPv6)`) {
		t.Fatalf("got %v", err)
	}
	// The same pool behind an IPv4 VIP of its own is fine.
	s.VIPs = append(s.VIPs, VIPSpec{Name: "web4", Address: "10.255.0.2", DefaultPool: "four"})
	s.GrayRules[0].Match.VIP = "web4"
	mustValidate(t, s)
}
