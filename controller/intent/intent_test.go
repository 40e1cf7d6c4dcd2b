package intent

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/pipeline"
)

// base is a small valid intent the validation cases mutate.
var base = func() string {
	d := intenttest.Small()
	d.VIP.Name = "web"
	d.Tenants = []string{"{name: acme, id: 7, vnis: [5001, 5002]}"}
	d.Rules = []string{
		"{name: vm, match: {vip: web, vni: 5001, src: 10.0.0.5}, pool: gray}",
		"{name: vpc, match: {vni: 5002}, pool: gray}",
	}
	return d.YAML()
}()

func parseBase(t *testing.T) *Spec {
	t.Helper()
	s, err := Parse([]byte(base))
	if err != nil {
		t.Fatalf("base: %v", err)
	}
	return s
}

// mustValidate validates s, failing t if it is refused.
func mustValidate(t *testing.T, s *Spec) *Intent {
	t.Helper()
	in, err := s.Validate()
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func i64(v int64) *int64     { return &v }
func f64(v float64) *float64 { return &v }

func TestBaseIsValid(t *testing.T) {
	mustValidate(t, parseBase(t))
}

func TestExampleRoundTrip(t *testing.T) {
	data := intenttest.Example(t)
	s1, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	in1, err := s1.Validate()
	if err != nil {
		t.Fatalf("the example does not validate: %v", err)
	}
	out, err := Marshal(s1)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Parse(out)
	if err != nil {
		t.Fatalf("reparse of marshalled example: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(s1, s2) {
		t.Fatalf("round trip changed the spec:\n%+v\n%+v", s1, s2)
	}
	in2 := mustValidate(t, s2)
	if !reflect.DeepEqual(in1, in2) {
		t.Fatal("round trip changed the validated intent")
	}
	// The example shows every kind of object and rule.
	if len(in1.Gateways) < 2 || len(in1.VIPs) < 2 || len(in1.Tenants) < 1 {
		t.Fatal("example lost objects")
	}
	tiers := map[Tier]bool{}
	split, explicit := false, false
	for _, r := range in1.Rules {
		tiers[r.Tier] = true
		split = split || r.Split()
		explicit = explicit || r.PriorityExplicit
	}
	for _, tr := range []Tier{TierTenant, TierVNI, TierPrefix, TierVM, TierFlow} {
		if !tiers[tr] {
			t.Errorf("example has no %s rule", tr)
		}
	}
	if !split || !explicit {
		t.Error("example lacks a percentage rule or an explicit priority")
	}
	// Values the example's comments promise.
	if v, _ := in1.VIP("vpc-router"); v.ID != 1 {
		t.Errorf("vpc-router id = %d", v.ID)
	}
	if v, _ := in1.VIP("nat"); v.ID != DerivedID(KindVIP, "nat", MaxID) {
		t.Errorf("nat id = %d, want derived", v.ID)
	}
	if p, _ := in1.Pool("gray-router"); p.Hash != HashVNI|HashSrc {
		t.Errorf("gray-router hash = %s", p.Hash)
	}
	for _, r := range in1.Rules {
		if r.Name == "globex-nat-25pct" && r.Threshold != 16384 {
			t.Errorf("25%% threshold = %d, want 16384", r.Threshold)
		}
	}
	maxDerived := DerivedPriority(TierFlow, 160)
	if !strings.Contains(string(data), fmt.Sprintf("highest derived is %d", maxDerived)) {
		t.Errorf("the example's comment on the highest derived priority is stale (it is %d)", maxDerived)
	}
}

// TestValidationErrors covers every class of problem; each case checks the class
// and the field path in the message, and that no Intent comes back.
func TestValidationErrors(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(s *Spec)
		class error
		path  string // the message must start with path + ": "
		msg   string // and contain this
	}{
		{"version", func(s *Spec) { s.Version = 2 }, ErrRange, "version", "reads version 1"},
		{"no gateways", func(s *Spec) { s.Gateways = nil }, ErrRequired, "gateways", "at least one"},
		{"gateway name missing", func(s *Spec) { s.Gateways[0].Name = "" }, ErrRequired, "gateways[0].name", "missing"},
		{"bad name", func(s *Spec) { s.VIPs[0].Name = "web site" }, ErrRange, "vips[0].name", "names are"},
		{"p4runtime not host:port", func(s *Spec) { s.Gateways[0].P4Runtime = "localhost" }, ErrAddress, "gateways[0].p4runtime", "host:port"},
		{"p4runtime unix path not absolute", func(s *Spec) { s.Gateways[0].P4Runtime = "unix://run/p4rt.sock" }, ErrAddress, "gateways[0].p4runtime", "unix:///absolute/path"},
		{"duplicate target", func(s *Spec) {
			g := s.Gateways[0]
			g.Name, g.BGPNextHop = "gw2", "10.1.0.2"
			s.Gateways = append(s.Gateways, g)
		}, ErrDuplicate, "gateways[1].p4runtime", "127.0.0.1:9559 device 1 is already gateways[0]"},
		{"duplicate gateway name", func(s *Spec) {
			g := s.Gateways[0]
			g.P4Runtime, g.BGPNextHop = "127.0.0.1:9560", "10.1.0.2"
			s.Gateways = append(s.Gateways, g)
		}, ErrDuplicate, "gateways[1].name", `"gw1" already names gateways[0]`},
		{"bad next hop", func(s *Spec) { s.Gateways[0].BGPNextHop = "fe80::1" }, ErrAddress, "gateways[0].bgp_next_hop", "not an IPv4"},
		{"IPv4 next hop as IPv6", func(s *Spec) { s.Gateways[0].BGPNextHopV6 = "10.1.0.9" }, ErrAddress, "gateways[0].bgp_next_hop_v6", "not an IPv6"},
		{"link-local IPv6 next hop", func(s *Spec) { s.Gateways[0].BGPNextHopV6 = "fe80::1" }, ErrAddress, "gateways[0].bgp_next_hop_v6", "unique local"},
		{"IPv6 next hop twice", func(s *Spec) {
			g := s.Gateways[0]
			g.Name, g.P4Runtime, g.BGPNextHop = "gw2", "127.0.0.1:9560", "10.1.0.2"
			s.Gateways[0].BGPNextHopV6, g.BGPNextHopV6 = "fd00:1::1", "fd00:1::1"
			s.Gateways = append(s.Gateways, g)
		}, ErrDuplicate, "gateways[1].bgp_next_hop_v6", "fd00:1::1 is already the next hop of gateways[0]"},
		{"port number", func(s *Spec) { s.Gateways[0].Ports[512] = PortSpec{Interface: "p9", MAC: "02:00:00:00:00:09"} }, ErrRange, "gateways[0].ports[512]", "out of range 0-511"},
		{"port mac", func(s *Spec) { s.Gateways[0].Ports[2] = PortSpec{Interface: "p2", MAC: "02:00:00"} }, ErrAddress, "gateways[0].ports[2].mac", "not a MAC"},
		{"multicast mac", func(s *Spec) { s.Pools[0].Backends[0].MAC = "01:00:5e:00:00:01" }, ErrAddress, "pools[0].backends[0].mac", "multicast"},
		{"vlan accept range", func(s *Spec) {
			s.Gateways[0].Ports[2] = PortSpec{Interface: "p2", MAC: "02:00:00:00:01:02", VLAN: &VLANSpec{Accept: []int64{100, 4095}}}
		}, ErrRange, "gateways[0].ports[2].vlan.accept[1]", "VID 4095 out of range 0-4094"},
		{"vlan accept twice", func(s *Spec) {
			s.Gateways[0].Ports[2] = PortSpec{Interface: "p2", MAC: "02:00:00:00:01:02", VLAN: &VLANSpec{Accept: []int64{100, 7, 100}}}
		}, ErrDuplicate, "gateways[0].ports[2].vlan.accept[2]", "VID 100 is listed twice"},
		{"vlan tag 0", func(s *Spec) {
			s.Gateways[0].Ports[3] = PortSpec{Interface: "p3", MAC: "02:00:00:00:01:03", VLAN: &VLANSpec{Tag: i64(0)}}
		}, ErrRange, "gateways[0].ports[3].vlan.tag", "VID 0 out of range 1-4094"},
		{"duplicate interface", func(s *Spec) { s.Gateways[0].Ports[3] = PortSpec{Interface: "p2", MAC: "02:00:00:00:01:03"} }, ErrDuplicate, "gateways[0].ports[3].interface", "already"},
		{"zero weights", func(s *Spec) {
			s.Pools[1].Backends[0].Weight = i64(0)
			s.Pools[1].Backends[1].Weight = i64(0)
		}, ErrNoWeight, "pools[1].backends[1].weight", "0 with no other backend of weight > 0"},
		{"weight range", func(s *Spec) { s.Pools[0].Backends[1].Weight = i64(-1) }, ErrRange, "pools[0].backends[1].weight", "out of range"},
		{"no backends", func(s *Spec) { s.Pools[1].Backends = nil }, ErrRequired, "pools[1].backends", "at least one backend"},
		{"cluster", func(s *Spec) { s.Pools[0].Cluster = "blue" }, ErrRange, "pools[0].cluster", "base or gray"},
		{"hash field", func(s *Spec) { s.Pools[0].HashFields = []string{"src", "ttl"} }, ErrRange, "pools[0].hash_fields[1]", `"ttl" is not one of`},
		{"hash field twice", func(s *Spec) { s.Pools[0].HashFields = []string{"src", "src"} }, ErrDuplicate, "pools[0].hash_fields[1]", "twice"},
		{"hash fields empty", func(s *Spec) { s.Pools[0].HashFields = []string{} }, ErrRequired, "pools[0].hash_fields", "empty"},
		{"backend port unknown", func(s *Spec) { s.Pools[0].Backends[0].Port = 7 }, ErrUnknownRef, "pools[0].backends[0].port", `7 is not a port of gateway "gw1"`},
		{"backend ip", func(s *Spec) { s.Pools[0].Backends[0].UnderlayIP = "10.2.0.300" }, ErrAddress, "pools[0].backends[0].underlay_ip", "not an IPv4"},
		{"duplicate underlay", func(s *Spec) { s.Pools[1].Backends[0].UnderlayIP = "10.2.0.11" }, ErrDuplicate, "pools[1].backends[0].underlay_ip", "already the underlay_ip of pools[0].backends[0]"},
		{"backend twice in pool", func(s *Spec) { s.Pools[0].Backends[1] = s.Pools[0].Backends[0] }, ErrDuplicate, "pools[0].backends[1].name", "already"},
		{"shared backend disagrees", func(s *Spec) {
			b := s.Pools[0].Backends[0]
			b.MAC = "02:00:00:00:99:99"
			s.Pools[1].Backends = append(s.Pools[1].Backends, b)
		}, ErrConflict, "pools[1].backends[2].mac", "declared in several pools"},
		{"pool id range", func(s *Spec) { s.Pools[0].ID = i64(32768) }, ErrRange, "pools[0].id", "out of range 1-32767"},
		{"duplicate explicit ids", func(s *Spec) { s.Pools[0].ID, s.Pools[1].ID = i64(5), i64(5) }, ErrDuplicate, "pools[1].id", "pool id 5 (explicit) is already the id of pools[0]"},
		{"duplicate pool name", func(s *Spec) { s.Pools[1].Name = "base" }, ErrDuplicate, "pools[1].name", "already"},
		{"vip address", func(s *Spec) { s.VIPs[0].Address = "" }, ErrRequired, "vips[0].address", "missing"},
		{"duplicate vip address", func(s *Spec) {
			s.VIPs = append(s.VIPs, VIPSpec{Name: "web2", Address: "10.255.0.1", DefaultPool: "base"})
		}, ErrDuplicate, "vips[1].address", "already the address of vips[0]"},
		{"vip is a backend", func(s *Spec) { s.VIPs[0].Address = "10.3.0.22" }, ErrConflict, "vips[0].address", "loop"},
		{"unknown default pool", func(s *Spec) { s.VIPs[0].DefaultPool = "nope" }, ErrUnknownRef, "vips[0].default_pool", `unknown pool "nope"`},
		{"tenant vni range", func(s *Spec) { s.Tenants[0].VNIs[1] = 1 << 24 }, ErrRange, "tenants[0].vnis[1]", "16777216 out of 24 bits"},
		{"vni in two tenants", func(s *Spec) {
			s.Tenants = append(s.Tenants, TenantSpec{Name: "globex", VNIs: []int64{5002}})
		}, ErrDuplicate, "tenants[1].vnis[0]", "VNI 5002 is already tenants[0].vnis[1]"},
		{"tenant without vnis", func(s *Spec) { s.Tenants[0].VNIs = nil }, ErrRequired, "tenants[0].vnis", "at least one VNI"},
		{"tenant id 0", func(s *Spec) { s.Tenants[0].ID = i64(0) }, ErrRange, "tenants[0].id", "out of range 1-65535"},
		{"rule vni range", func(s *Spec) { s.GrayRules[1].Match.VNI = i64(1 << 24) }, ErrRange, "gray_rules[1].match.vni", "16777216 out of 24 bits"},
		{"bad prefix", func(s *Spec) { s.GrayRules[0].Match.Src = "10.0.0/24" }, ErrAddress, "gray_rules[0].match.src", "not an IPv4 or IPv6 prefix"},
		{"host bits", func(s *Spec) { s.GrayRules[0].Match.Src = "10.0.0.5/24" }, ErrAddress, "gray_rules[0].match.src", "did you mean 10.0.0.0/24"},
		{"families mixed", func(s *Spec) { s.GrayRules[0].Match.Dst = "2001:db8::/32" }, ErrConflict, "gray_rules[0].match.dst", "2001:db8::/32 is IPv6 and src 10.0.0.5 is IPv4"},
		{"ipv4-mapped prefix", func(s *Spec) { s.GrayRules[0].Match.Src = "::ffff:10.0.0.5" }, ErrAddress, "gray_rules[0].match.src", "IPv4-mapped"},
		{"ipv6 host bits", func(s *Spec) { s.GrayRules[0].Match.Src = "2001:db8::5/64" }, ErrAddress, "gray_rules[0].match.src", "did you mean 2001:db8::/64"},
		{"icmp with ipv6", func(s *Spec) { s.GrayRules[0].Match.Src, s.GrayRules[0].Match.Proto = "2001:db8::5", "icmp" }, ErrConflict, "gray_rules[0].match.proto", "icmpv6 (58)"},
		{"icmpv6 with ipv4", func(s *Spec) { s.GrayRules[0].Match.Proto = "icmpv6" }, ErrConflict, "gray_rules[0].match.proto", "IPv6 only"},
		{"mirror on ipv6", func(s *Spec) {
			s.GrayRules[0].Match.Src = "2001:db8::5"
			s.GrayRules[0].Pool, s.GrayRules[0].Mirror = "base", &MirrorSpec{Pool: "gray"}
		}, ErrConflict, "gray_rules[0].mirror", "not supported on an IPv6 rule"},
		{"vip ipv4-mapped", func(s *Spec) { s.VIPs[0].Address = "::ffff:10.255.0.1" }, ErrAddress, "vips[0].address", "write 10.255.0.1"},
		{"vip link-local", func(s *Spec) { s.VIPs[0].Address = "fe80::1" }, ErrAddress, "vips[0].address", "not a global unicast IPv6 address"},
		{"backend family", func(s *Spec) { s.Pools[1].Backends[1].UnderlayIP = "2001:db8:3::22" }, ErrConflict, "pools[1].backends[1].underlay_ip",
			`backend "g2" has an IPv6 underlay_ip (2001:db8:3::22), but pool "gray" serves VIP "web" (10.255.0.1, IPv4)`},
		{"vip family", func(s *Spec) { s.VIPs[0].Address = "2001:db8:ff::1" }, ErrConflict, "pools[0].backends[0].underlay_ip",
			`backend "b1" has an IPv4 underlay_ip (10.2.0.11), but pool "base" serves VIP "web" (2001:db8:ff::1, IPv6)`},
		{"slash zero", func(s *Spec) { s.GrayRules[0].Match.Dst = "0.0.0.0/0" }, ErrRange, "gray_rules[0].match.dst", "omit the field"},
		{"unknown rule pool", func(s *Spec) { s.GrayRules[0].Pool = "grey" }, ErrUnknownRef, "gray_rules[0].pool", `unknown pool "grey"`},
		{"unknown vip", func(s *Spec) { s.GrayRules[0].Match.VIP = "www" }, ErrUnknownRef, "gray_rules[0].match.vip", `unknown VIP "www"`},
		{"unknown tenant", func(s *Spec) { s.GrayRules[1].Match.Tenant = "globex" }, ErrUnknownRef, "gray_rules[1].match.tenant", `unknown tenant "globex"`},
		{"tenant contradicts vni", func(s *Spec) {
			s.Tenants = append(s.Tenants, TenantSpec{Name: "globex", VNIs: []int64{6001}})
			s.GrayRules[1].Match.Tenant = "globex"
		}, ErrConflict, "gray_rules[1].match.tenant", `vni 5002 belongs to tenant "acme"`},
		{"proto", func(s *Spec) { s.GrayRules[0].Match.Proto = "sctp" }, ErrRange, "gray_rules[0].match.proto", "tcp, udp, icmp"},
		{"port range", func(s *Spec) { s.GrayRules[0].Match.DPort = i64(65536) }, ErrRange, "gray_rules[0].match.dport", "out of range 0-65535"},
		{"port with icmp", func(s *Spec) {
			s.GrayRules[0].Match.Proto = "icmp"
			s.GrayRules[0].Match.SPort = i64(1)
		}, ErrConflict, "gray_rules[0].match.sport", "never match"},
		{"empty match", func(s *Spec) { s.GrayRules[1].Match = MatchSpec{} }, ErrRequired, "gray_rules[1].match", "empty"},
		{"percent zero", func(s *Spec) { s.GrayRules[1].Percent = f64(0) }, ErrRange, "gray_rules[1].percent", "out of range (0, 100]"},
		{"percent over", func(s *Spec) { s.GrayRules[1].Percent = f64(100.5) }, ErrRange, "gray_rules[1].percent", "out of range (0, 100]"},
		{"percent tiny", func(s *Spec) { s.GrayRules[1].Percent = f64(0.0001) }, ErrRange, "gray_rules[1].percent", "resolution"},
		{"percent nearly 100", func(s *Spec) { s.GrayRules[1].Percent = f64(99.9995) }, ErrRange, "gray_rules[1].percent", "write 100"},
		{"priority range", func(s *Spec) { s.GrayRules[1].Priority = i64(0) }, ErrRange, "gray_rules[1].priority", "out of range 1-2147483647"},
		{"rule missing pool", func(s *Spec) { s.GrayRules[1].Pool = "" }, ErrRequired, "gray_rules[1].pool", "missing"},
		{"duplicate rule name", func(s *Spec) { s.GrayRules[1].Name = "vm" }, ErrDuplicate, "gray_rules[1].name", "already"},
		{"overlap same derived priority", func(s *Spec) {
			// Two prefix rules of the same tier and bits that share packets
			// (10.0.0.x -> 192.168.0.y in VNI 5001).
			s.GrayRules = append(s.GrayRules,
				RuleSpec{Name: "by-src", Match: MatchSpec{VNI: i64(5001), Src: "10.0.0.0/24"}, Pool: "gray"},
				RuleSpec{Name: "by-dst", Match: MatchSpec{VNI: i64(5001), Dst: "192.168.0.0/24"}, Pool: "base"})
		}, ErrOverlap, "gray_rules[3]", `overlaps gray_rules[2] "by-src" at the same priority 4048`},
		{"overlap explicit priority", func(s *Spec) {
			s.GrayRules[0].Priority, s.GrayRules[1].Priority = i64(100), i64(100)
			s.GrayRules[1].Match.VNI = i64(5001)
		}, ErrOverlap, "gray_rules[1]", "same priority 100 (explicit)"},
		{"overlap wildcard vni", func(s *Spec) {
			s.GrayRules = append(s.GrayRules, RuleSpec{Name: "acme", Match: MatchSpec{Tenant: "acme"}, Pool: "base", Priority: i64(3024)})
		}, ErrOverlap, "gray_rules[2]", `overlaps gray_rules[1] "vpc" at the same priority 3024 (explicit)`},
		{"rule without vip, VIPs of different services", func(s *Spec) {
			s.VIPs = append(s.VIPs, VIPSpec{Name: "nat", Address: "10.255.0.2", DefaultPool: "gray"})
		}, ErrConflict, "gray_rules[1].match.vip", "name the VIP"},
		{"pools capacity", func(s *Spec) {
			for i := len(s.Pools); i <= MaxPools; i++ {
				p := s.Pools[0]
				p.Name, p.ID = fmt.Sprintf("p%d", i), i64(int64(100+i))
				s.Pools = append(s.Pools, p)
			}
		}, ErrCapacity, "pools", "64 pools, at most 63"},
		{"pool backends capacity", func(s *Spec) {
			for i := 0; i < 4097; i++ {
				s.Pools[0].Backends = append(s.Pools[0].Backends, BackendSpec{
					Name: fmt.Sprintf("x%d", i), ID: i64(int64(1000 + i)), UnderlayIP: fmt.Sprintf("10.9.%d.%d", i/256, i%256),
					MAC: "02:00:00:00:00:10", Port: 2})
			}
		}, ErrCapacity, "pools[0].backends", "more than the 4096 buckets"},
		{"rules capacity", func(s *Spec) {
			for i := 0; i < 16384; i++ {
				s.GrayRules = append(s.GrayRules, RuleSpec{Name: fmt.Sprintf("r%d", i),
					Match: MatchSpec{VNI: i64(5001), Src: fmt.Sprintf("10.1.%d.%d", i/256, i%256)}, Pool: "gray"})
			}
		}, ErrCapacity, "gray_rules", "16386 rules take a gray_rules entry (IPv4 or no address), gray_rules holds 16384"},
		// A rule without an address takes an entry in both tables.
		{"rules v6 capacity", func(s *Spec) {
			for i := 0; i < 4095; i++ {
				s.GrayRules = append(s.GrayRules, RuleSpec{Name: fmt.Sprintf("r%d", i),
					Match: MatchSpec{VNI: i64(int64(100000 + i))}, Pool: "gray"})
			}
			s.GrayRules = append(s.GrayRules, RuleSpec{Name: "v6", Match: MatchSpec{Src: "2001:db8::5"}, Pool: "gray"})
		}, ErrCapacity, "gray_rules", "4097 rules take a gray_rules_v6 entry (IPv6 or no address), gray_rules_v6 holds 4096"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := parseBase(t)
			c.edit(s)
			in, err := s.Validate()
			if in != nil {
				t.Error("a partial intent came back with the error")
			}
			if err == nil {
				t.Fatal("no error")
			}
			wantProblem(t, err, c.class, c.path, c.msg, func(p *Problem) bool {
				return errors.Is(p, c.class) && strings.HasPrefix(p.Error(), c.path+": ")
			})
		})
	}
}

// TestYAMLErrors covers problems found while decoding: they name the field too.
func TestYAMLErrors(t *testing.T) {
	cases := []struct {
		name, doc string
		class     error
		path, msg string
	}{
		{"unknown field", strings.Replace(base, "    cluster: gray", "    cluster: gray\n    colour: blue", 1), ErrUnknownField, "pools[1].colour", `unknown field "colour"`},
		{"typo in flow mapping", strings.Replace(base, "port: 3}", "prot: 3}", 1), ErrUnknownField, "pools[1].backends[0].prot", `unknown field "prot"`},
		{"wrong type", strings.Replace(base, "device_id: 1", "device_id: one", 1), ErrSyntax, "gateways[0].device_id", "cannot unmarshal"},
		{"not yaml", "gateways: [", ErrSyntax, "", "did not find"},
		{"empty", "", ErrRequired, "", "empty document"},
		{"two documents", base + "---\nversion: 1\n", ErrSyntax, "", "more than one YAML document"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, err := Load([]byte(c.doc))
			if in != nil || err == nil {
				t.Fatalf("Load = %v, %v", in, err)
			}
			wantProblem(t, err, c.class, c.path, c.msg, nil)
		})
	}
}

// wantProblem fails t unless err wraps class and is an *Errors with a
// problem at path whose message contains msg (and, when also is given, for
// which also holds).
func wantProblem(t *testing.T, err, class error, path, msg string, also func(*Problem) bool) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Errorf("error does not wrap %v: %v", class, err)
	}
	var es *Errors
	if !errors.As(err, &es) {
		t.Fatalf("not an *Errors: %T", err)
	}
	for _, p := range es.Problems {
		if p.Path == path && strings.Contains(p.Msg, msg) && (also == nil || also(p)) {
			return
		}
	}
	t.Errorf("no problem %q at %q (%v) in\n%v", msg, path, class, err)
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	s := parseBase(t)
	s.Version = 3
	s.Pools[0].Backends[0].Weight = i64(-5)
	s.VIPs[0].DefaultPool = "nope"
	s.GrayRules[0].Match.Src = "bogus"
	s.GrayRules[1].Pool = "nope"
	_, err := s.Validate()
	var es *Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v", err)
	}
	want := []string{"version", "pools[0].backends[0].weight", "vips[0].default_pool", "gray_rules[0].match.src", "gray_rules[1].pool"}
	var got []string
	for _, p := range es.Problems {
		got = append(got, p.Path)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("problems at %v, want %v:\n%v", got, want, err)
	}
	if !strings.HasPrefix(err.Error(), "intent: 5 problems\n") {
		t.Errorf("message: %s", err)
	}
}

func TestValidateIsDeterministic(t *testing.T) {
	data := intenttest.Example(t)
	first, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		again, err := Load(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(first, again) {
			t.Fatal("two loads of the same document differ")
		}
	}
}

// Derived ids depend only on the object's own name: adding or removing other
// objects, or reordering them, changes no id.
func TestDerivedIDsAreStable(t *testing.T) {
	s := parseBase(t)
	before := mustValidate(t, s)
	s = parseBase(t)
	s.Pools = append([]PoolSpec{{Name: "new-first", Cluster: "gray", Backends: []BackendSpec{
		{Name: "n1", UnderlayIP: "10.4.0.1", MAC: "02:00:00:00:40:01", Port: 3}}}}, s.Pools...)
	s.VIPs = append([]VIPSpec{{Name: "aaa", Address: "10.255.0.9", DefaultPool: "base"}}, s.VIPs...)
	s.Pools[1].Backends = s.Pools[1].Backends[1:] // b1 leaves
	s.Pools[2].Backends[0], s.Pools[2].Backends[1] = s.Pools[2].Backends[1], s.Pools[2].Backends[0]
	after := mustValidate(t, s)
	for _, p := range before.Pools {
		q, _ := after.Pool(p.Name)
		if q.ID != p.ID || p.ID != DerivedID(KindPool, p.Name, MaxPoolID) {
			t.Errorf("pool %s: id %d then %d", p.Name, p.ID, q.ID)
		}
	}
	for _, v := range before.VIPs {
		w, _ := after.VIP(v.Name)
		if w.ID != v.ID {
			t.Errorf("vip %s: id %d then %d", v.Name, v.ID, w.ID)
		}
	}
	for _, b := range before.Backends {
		if c, ok := after.Backend(b.Name); ok && c.ID != b.ID {
			t.Errorf("backend %s: id %d then %d", b.Name, b.ID, c.ID)
		}
	}
}

// Two names whose derived ids collide are refused, naming both; an explicit id on
// one of them settles it without changing the other's.
func TestDerivedIDCollision(t *testing.T) {
	seen := map[uint16]string{}
	var a, b string
	for i := 0; a == ""; i++ {
		n := fmt.Sprintf("pool-%d", i)
		id := DerivedID(KindPool, n, MaxPoolID)
		if prev, ok := seen[id]; ok {
			a, b = prev, n
		}
		seen[id] = n
	}
	s := parseBase(t)
	s.Pools[0].Name, s.Pools[1].Name = a, b
	s.VIPs[0].DefaultPool = a
	s.GrayRules[0].Pool, s.GrayRules[1].Pool = b, b
	_, err := s.Validate()
	if !errors.Is(err, ErrDuplicate) || !strings.Contains(err.Error(), "pools[1].id: pool id") ||
		!strings.Contains(err.Error(), "derived from the name") || !strings.Contains(err.Error(), "explicit, unused id") {
		t.Fatalf("collision of %s and %s: %v", a, b, err)
	}
	s.Pools[1].ID = i64(42)
	in := mustValidate(t, s)
	if p, _ := in.Pool(a); p.ID != DerivedID(KindPool, a, MaxPoolID) {
		t.Error("the first pool's id changed")
	}
}

func TestDerivedPriorities(t *testing.T) {
	s := parseBase(t)
	s.GrayRules = []RuleSpec{
		{Name: "vip", Match: MatchSpec{VIP: "web"}, Pool: "gray"},
		{Name: "tenant", Match: MatchSpec{Tenant: "acme"}, Pool: "gray"},
		{Name: "vni", Match: MatchSpec{VNI: i64(5001)}, Pool: "gray"},
		{Name: "prefix16", Match: MatchSpec{VNI: i64(5001), Src: "10.0.0.0/16"}, Pool: "gray"},
		{Name: "prefix24", Match: MatchSpec{VNI: i64(5001), Src: "10.0.0.0/24"}, Pool: "gray"},
		{Name: "dsthost", Match: MatchSpec{VNI: i64(5001), Dst: "192.168.1.1"}, Pool: "gray"},
		{Name: "vm", Match: MatchSpec{VNI: i64(5001), Src: "10.0.0.5"}, Pool: "gray"},
		{Name: "vm-on-vip", Match: MatchSpec{VIP: "web", VNI: i64(5001), Src: "10.0.0.5"}, Pool: "gray"},
		{Name: "port", Match: MatchSpec{VNI: i64(5001), DPort: i64(443)}, Pool: "gray"},
		{Name: "flow", Match: MatchSpec{VNI: i64(5001), Src: "10.0.0.5", Dst: "192.168.1.1", Proto: "tcp", SPort: i64(1234), DPort: i64(80)}, Pool: "gray"},
	}
	in := mustValidate(t, s)
	prio := map[string]int32{}
	tier := map[string]Tier{}
	for _, r := range in.Rules {
		prio[r.Name], tier[r.Name] = r.Priority, r.Tier
	}
	want := map[string]int32{
		"vip": 1016, "tenant": 2016, "vni": 3024, "prefix16": 4040, "prefix24": 4048, "dsthost": 4056,
		"vm": 5056, "vm-on-vip": 5072, "port": 6040, "flow": 6128,
	}
	if !reflect.DeepEqual(prio, want) {
		t.Fatalf("priorities %v, want %v", prio, want)
	}
	// The brief's order: 5-tuple > VM > prefix > VNI > tenant.
	order := []string{"flow", "vm", "prefix24", "vni", "tenant", "vip"}
	for i := 1; i < len(order); i++ {
		if prio[order[i-1]] <= prio[order[i]] {
			t.Errorf("%s (%d) does not beat %s (%d)", order[i-1], prio[order[i-1]], order[i], prio[order[i]])
		}
	}
	if tier["dsthost"] != TierPrefix || tier["port"] != TierFlow {
		t.Errorf("tiers: %v", tier)
	}
}

func TestKeyOverlaps(t *testing.T) {
	s := parseBase(t)
	s.GrayRules = []RuleSpec{
		{Name: "a", Match: MatchSpec{VNI: i64(5001), Src: "10.0.0.0/24"}, Pool: "gray"},
		{Name: "b", Match: MatchSpec{VNI: i64(5001), Src: "10.0.1.0/24"}, Pool: "gray"}, // disjoint from a
		{Name: "c", Match: MatchSpec{VNI: i64(5002), Src: "10.0.0.0/24"}, Pool: "gray"}, // other VNI
		{Name: "d", Match: MatchSpec{VNI: i64(5001), Src: "10.0.0.0/16"}, Pool: "gray"}, // contains a, lower priority
	}
	in, err := s.Validate()
	if err != nil {
		t.Fatalf("disjoint or differently prioritised rules refused: %v", err)
	}
	k := func(i int) Key { return in.Rules[i].Key }
	if k(0).Overlaps(k(1)) || k(0).Overlaps(k(2)) || !k(0).Overlaps(k(3)) || !k(3).Overlaps(k(1)) {
		t.Fatal("Overlaps is wrong")
	}
}

// The indexed overlap check finds exactly the pairs the pairwise Key.Overlaps
// finds, in the same order.
func TestOverlapsIndexedMatchesPairwise(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 200 {
		var rules []Rule
		for i := range 2 + rng.IntN(40) {
			r := Rule{Name: fmt.Sprintf("r%d", i), Index: i, Priority: int32(1 + rng.IntN(3))}
			if rng.IntN(2) == 0 {
				r.Key.VIPID, r.Key.VIPMask = uint16(rng.IntN(2)), 0xffff
			}
			if rng.IntN(3) > 0 {
				r.Key.Value.VNI, r.Key.Mask.VNI = uint32(rng.IntN(3)), pipeline.MaxVNI
			}
			switch rng.IntN(4) {
			case 0, 1:
				bits := []int{8, 24, 32}[rng.IntN(3)]
				m := ^uint32(0) << (32 - bits)
				r.Key.Value.Src, r.Key.Mask.Src = uint32(rng.IntN(4))<<(32-bits)&m|0x0a000000&m, m
				r.Key.Family = Family4
			case 2: // IPv6: never overlaps an IPv4 rule
				bits := []int{16, 64, 128}[rng.IntN(3)]
				a := netip.AddrFrom16([16]byte{0x20, 0x01, 15: byte(rng.IntN(2))})
				if bits < 128 {
					a = netip.AddrFrom16([16]byte{0x20, byte(rng.IntN(2))})
				}
				r.Key.setPrefix(netip.PrefixFrom(a, bits), nil, nil, &r.Key.Src6, &r.Key.Src6Mask)
			}
			if rng.IntN(4) == 0 {
				r.Key.Value.Proto, r.Key.Mask.Proto = uint8(6+11*rng.IntN(2)), 0xff
			}
			rules = append(rules, r)
		}
		var want []string
		for j := range rules {
			for i := range j {
				if rules[i].Priority == rules[j].Priority && rules[i].Key.Overlaps(rules[j].Key) {
					want = append(want, fmt.Sprintf("%d-%d", i, j))
				}
			}
		}
		v := &validator{}
		v.overlaps(rules)
		var got []string
		for _, p := range v.ps.list {
			var a, b int
			if _, err := fmt.Sscanf(p.Path, "gray_rules[%d]", &b); err != nil {
				t.Fatal(err)
			}
			if _, err := fmt.Sscanf(p.Msg[strings.Index(p.Msg, "gray_rules["):], "gray_rules[%d]", &a); err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%d-%d", a, b))
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("trial %d: found %v, want %v", trial, got, want)
		}
	}
}

func TestValidNameIsNameRE(t *testing.T) {
	for _, s := range []string{"", "a", "A-b.c_d", "-a", ".a", "_a", "9", "a b", "é", "a/b", strings.Repeat("x", 63), strings.Repeat("x", 64), "a\n", "vm-5001-10.0.0.5"} {
		if validName(s) != nameRE.MatchString(s) {
			t.Errorf("validName(%q) = %v, nameRE %v", s, validName(s), nameRE.MatchString(s))
		}
	}
}

// A port's 802.1Q configuration resolves to sorted VIDs and a tag; a port
// without one accepts no tagged frames and sends untagged.
func TestPortVLAN(t *testing.T) {
	s, err := Parse([]byte(strings.Replace(base, `2: {interface: p2, mac: "02:00:00:00:01:02"}`,
		`2: {interface: p2, mac: "02:00:00:00:01:02", vlan: {accept: [200, 0, 100], tag: 300}}`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	in := mustValidate(t, s)
	p2, _ := in.Gateways[0].Port(2)
	p3, _ := in.Gateways[0].Port(3)
	if !reflect.DeepEqual(p2.AcceptVIDs, []uint16{0, 100, 200}) || p2.TagVID != 300 {
		t.Errorf("port 2: accept %v tag %d, want [0 100 200] 300", p2.AcceptVIDs, p2.TagVID)
	}
	if p3.AcceptVIDs != nil || p3.TagVID != 0 {
		t.Errorf("port 3: accept %v tag %d, want none, untagged", p3.AcceptVIDs, p3.TagVID)
	}
	if _, err := Parse([]byte(strings.Replace(base, `2: {interface: p2, mac: "02:00:00:00:01:02"}`,
		`2: {interface: p2, mac: "02:00:00:00:01:02", vlan: {acept: [1]}}`, 1))); err == nil {
		t.Error("a misspelt vlan field parsed")
	}
}

// TestGatewayIPv6NextHop: bgp_next_hop_v6 is optional; set, it is the next
// hop of the IPv6 VIPs' paths (docs/bgp.md).
func TestGatewayIPv6NextHop(t *testing.T) {
	s := parseBase(t)
	in := mustValidate(t, s)
	if in.Gateways[0].BGPNextHopV6.IsValid() {
		t.Fatalf("unset bgp_next_hop_v6 = %v", in.Gateways[0].BGPNextHopV6)
	}
	s.Gateways[0].BGPNextHopV6 = "fd00:1::1"
	if got := mustValidate(t, s).Gateways[0].BGPNextHopV6.String(); got != "fd00:1::1" {
		t.Fatalf("bgp_next_hop_v6 = %s", got)
	}
}
