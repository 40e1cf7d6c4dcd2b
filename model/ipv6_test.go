package model

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/pipeline"
)

// IPv6 (docs/pipeline.md §1-10, issue 19): outer IPv6 to a vip_v6, inner
// IPv6 in VXLAN over either family, gray_rules_v6, key6, to_backend_v6.

var (
	vip6    = netip.MustParseAddr("2001:db8:ff::1")
	vtep6   = netip.MustParseAddr("2001:db8:f::10")
	client6 = netip.MustParseAddr("2001:db8:c::7")
	beBase6 = Backend{Port: 1, SMAC: testpkt.MAC("02:00:00:00:01:01"), DMAC: testpkt.MAC("02:00:00:00:0b:0b"),
		IPv6: true, UnderlayIPv6: netip.MustParseAddr("2001:db8:2::b").As16()}
	beGray6 = Backend{Port: 3, SMAC: testpkt.MAC("02:00:00:00:03:03"), DMAC: testpkt.MAC("02:00:00:00:15:15"),
		IPv6: true, UnderlayIPv6: netip.MustParseAddr("2001:db8:3::15").As16()}
)

// newTestState6 is newTestState plus VIP 2 at vip6 (default pool 11: backend
// 11, IPv6 underlay) and pool 12 (backend 12, IPv6 underlay). The IPv4 VIP's
// pools 1 and 2 keep their IPv4 backends.
func newTestState6() *State {
	s := newTestState()
	s.VIPsV6[vip6.As16()] = VIP{ID: 2, DefaultPool: 11}
	s.Backends[11], s.Backends[12] = beBase6, beGray6
	for b := range uint16(pipeline.Buckets) {
		s.BackendSelect[SelectKey{11, b}] = 11
		s.BackendSelect[SelectKey{12, b}] = 12
	}
	return s
}

func a16(s string) [16]byte { return netip.MustParseAddr(s).As16() }

// overlay6 is VXLAN over IPv6 to vip6 carrying an inner IPv6 packet.
func overlay6(vni uint32, src, dst string, l4 testpkt.L4) []byte {
	return testpkt.VXLAN6(gwEth, testpkt.IP6{Src: vtep6, Dst: vip6}, 50000, vni, inner6(src, dst, l4))
}

func inner6(src, dst string, l4 testpkt.L4) []byte {
	return testpkt.Inner6(vmEth, testpkt.IP6{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst)}, l4)
}

func plain6(l4 testpkt.L4) []byte {
	return testpkt.Plain6(gwEth, testpkt.IP6{Src: client6, Dst: vip6}, l4)
}

func vmRule6(prio int32, vni uint32, src string, pool uint16) GrayRuleV6 {
	return GrayRuleV6{Priority: prio, Match: pipeline.FlowKey6{VNI: vni, Src: a16(src)},
		Mask: pipeline.FlowKey6{VNI: pipeline.MaxVNI, Src: pipeline.AllOnes6.Src}, Action: SetPool, Pool: pool}
}

func TestIPv6FlowFieldsAndKey6(t *testing.T) {
	s := newTestState6()
	s.Tenants[5001] = 7
	// The check vector of docs/pipeline.md §6, through a whole frame.
	r := Process(s, overlay6(5001, "2001:db8::5", "2001:db8:1::1", tcp(12345, 80)))
	want := pipeline.FlowKey6{VNI: 5001, Tenant: 7, Src: a16("2001:db8::5"), Dst: a16("2001:db8:1::1"), Proto: 6, SPort: 12345, DPort: 80}
	if r.Verdict != Forward || !r.IPv6 || r.Flow6 != want || r.HashKey6 != want {
		t.Fatalf("%v %v ipv6=%v flow %+v key %+v, want %+v", r.Verdict, r.Reason, r.IPv6, r.Flow6, r.HashKey6, want)
	}
	if r.CRC != 0xf129bcf6 || r.Bucket != 3318 {
		t.Fatalf("crc %#x bucket %d, want 0xf129bcf6 3318", r.CRC, r.Bucket)
	}
	if r.Flow != (pipeline.FlowKey{VNI: 5001, Tenant: 7, Proto: 6, SPort: 12345, DPort: 80}) || r.HashKey != (pipeline.FlowKey{}) {
		t.Fatalf("an IPv6 flow's IPv4 view: flow %+v key %+v", r.Flow, r.HashKey)
	}
	// Plain IPv6: vni 0, the outer fields.
	r = Process(s, plain6(udp(5353, 53)))
	want = pipeline.FlowKey6{Src: client6.As16(), Dst: vip6.As16(), Proto: 17, SPort: 5353, DPort: 53}
	if r.Verdict != Forward || !r.IPv6 || r.Flow6 != want {
		t.Fatalf("plain: %v %v flow %+v, want %+v", r.Verdict, r.Reason, r.Flow6, want)
	}
	// Inner IPv6 in IPv4 VXLAN to the IPv4 VIP: an IPv6 flow on IPv4 backends.
	in := testpkt.VXLAN(gwEth, testpkt.IP{Src: vtep, Dst: vip}, 50000, 5001, inner6("2001:db8::5", "2001:db8:1::1", tcp(12345, 80)))
	if r := Process(s, in); r.Verdict != Forward || !r.IPv6 || r.Flow6.Src != a16("2001:db8::5") || r.BackendID != 1 {
		t.Fatalf("v4 outer, v6 inner: %v %v flow %+v backend %d", r.Verdict, r.Reason, r.Flow6, r.BackendID)
	}
	// Inner IPv4 in IPv6 VXLAN to the IPv6 VIP: an IPv4 flow on IPv6 backends.
	in = testpkt.VXLAN6(gwEth, testpkt.IP6{Src: vtep6, Dst: vip6}, 50000, 5001,
		testpkt.Inner(vmEth, testpkt.IP{Src: netip.MustParseAddr("10.0.0.5"), Dst: netip.MustParseAddr("192.168.1.1")}, tcp(1, 2)))
	if r := Process(s, in); r.Verdict != Forward || r.IPv6 || r.Flow.Src != ip("10.0.0.5") || r.BackendID != 11 {
		t.Fatalf("v6 outer, v4 inner: %v %v ipv6=%v flow %+v backend %d", r.Verdict, r.Reason, r.IPv6, r.Flow, r.BackendID)
	}
}

func TestIPv6InnerProtocols(t *testing.T) {
	s := newTestState6()
	frag := func(next uint8, off uint16, more bool) []byte {
		ip := testpkt.IP6{Src: netip.MustParseAddr("2001:db8::5"), Dst: netip.MustParseAddr("2001:db8:1::1"),
			ExtProto: testpkt.ProtoFragment, Ext: testpkt.FragmentHeader(next, off, more, 9)}
		return testpkt.VXLAN6(gwEth, testpkt.IP6{Src: vtep6, Dst: vip6}, 50000, 5001, testpkt.Inner6(vmEth, ip, tcp(1000, 80)))
	}
	for _, c := range []struct {
		name         string
		frame        []byte
		proto        uint8
		sport, dport uint16
	}{
		{"udp", overlay6(5001, "2001:db8::5", "2001:db8:1::1", udp(1000, 53)), 17, 1000, 53},
		{"icmpv6: ports 0", overlay6(5001, "2001:db8::5", "2001:db8:1::1", testpkt.L4{Proto: testpkt.ProtoICMPv6, SPort: 5, DPort: 6}), 58, 0, 0},
		{"esp: ports 0", overlay6(5001, "2001:db8::5", "2001:db8:1::1", testpkt.L4{Proto: 50, Payload: []byte("12345678")}), 50, 0, 0},
		{"no next header", overlay6(5001, "2001:db8::5", "2001:db8:1::1", testpkt.L4{Proto: testpkt.ProtoNoNext}), 59, 0, 0},
		{"first fragment: the fragment's proto, ports 0", frag(6, 0, true), 6, 0, 0},
		{"last fragment", frag(6, 1280, false), 6, 0, 0},
	} {
		r := Process(s, c.frame)
		if r.Verdict != Forward || r.Flow6.Proto != c.proto || r.Flow6.SPort != c.sport || r.Flow6.DPort != c.dport {
			t.Errorf("%s: %v %v proto %d ports %d %d, want proto %d ports %d %d", c.name, r.Verdict, r.Reason,
				r.Flow6.Proto, r.Flow6.SPort, r.Flow6.DPort, c.proto, c.sport, c.dport)
		}
	}
}

func TestIPv6DropReasons(t *testing.T) {
	s := newTestState6()
	base := overlay6(5001, "2001:db8::5", "2001:db8:1::1", tcp(1000, 80))
	const inIP = 14 + 40 + 8 + 8 + 14 // the inner IPv6 header
	mod := func(b []byte, off int, v ...byte) []byte {
		b = append([]byte(nil), b...)
		copy(b[off:], v)
		return b
	}
	withExt := func(next uint8) []byte { // inner next header set, 8 bytes of it there
		return mod(base, inIP+6, next)
	}
	cases := []struct {
		name  string
		frame []byte
		want  pipeline.Reason
		pass  bool
	}{
		{"ipv6 cut at 39", base[:14+39], pipeline.IPv6Truncated, false},
		{"ipv6 to no VIP", testpkt.Plain6(gwEth, testpkt.IP6{Src: client6, Dst: netip.MustParseAddr("2001:db8:ff::99")}, tcp(1, 2)), pipeline.NotVIP, true},
		{"ipv6 to no VIP, broken", mod(testpkt.Plain6(gwEth, testpkt.IP6{Src: client6, Dst: netip.MustParseAddr("2001:db8:ff::99")}, tcp(1, 2)), 14, 0x40), pipeline.NotVIP, true},
		{"ipv4 address as an IPv6 VIP", testpkt.Plain6(gwEth, testpkt.IP6{Src: client6, Dst: netip.MustParseAddr("::ffff:10.255.0.1")}, tcp(1, 2)), pipeline.NotVIP, true},
		{"version 4", mod(base, 14, 0x40), pipeline.IPv6Malformed, false},
		{"hop-by-hop", mod(base, 14+6, 0), pipeline.IPv6Extension, false},
		{"routing", mod(base, 14+6, 43), pipeline.IPv6Extension, false},
		{"fragment", mod(base, 14+6, 44), pipeline.IPv6Extension, false},
		{"ah", mod(base, 14+6, 51), pipeline.IPv6Extension, false},
		{"destination options", mod(base, 14+6, 60), pipeline.IPv6Extension, false},
		{"udp cut at 7", base[:14+40+7], pipeline.L4Truncated, false},
		{"tcp cut at 19", plain6(tcp(1, 2))[:14+40+19], pipeline.L4Truncated, false},
		{"icmpv6 cut at 3", plain6(testpkt.L4{Proto: testpkt.ProtoICMPv6})[:14+40+3], pipeline.L4Truncated, false},
		{"vxlan cut", base[:14+40+8+7], pipeline.VXLANTruncated, false},
		{"vxlan flags", mod(base, 14+40+8, 0), pipeline.VXLANBadFlags, false},
		{"inner eth cut", base[:inIP-1], pipeline.InnerTruncated, false},
		{"inner arp", mod(base, inIP-2, 0x08, 0x06), pipeline.InnerNotIPv4, false},
		{"inner ipv6 cut at 39", base[:inIP+39], pipeline.InnerTruncated, false},
		{"inner version 4", mod(base, inIP, 0x45), pipeline.InnerIPv6Malformed, false},
		{"inner ipv4 ethertype, an IPv6 header", mod(base, inIP-2, 0x08, 0x00), pipeline.InnerIPv4Malformed, false},
		{"inner hop-by-hop", withExt(0), pipeline.InnerIPv6Extension, false},
		{"inner routing", withExt(43), pipeline.InnerIPv6Extension, false},
		{"inner ah", withExt(51), pipeline.InnerIPv6Extension, false},
		{"inner destination options", withExt(60), pipeline.InnerIPv6Extension, false},
		{"inner fragment cut at 7", withExt(44)[:inIP+40+7], pipeline.InnerTruncated, false},
		{"inner ports cut at 3", base[:inIP+40+3], pipeline.InnerTruncated, false},
		{"hop limit 1", mod(base, 14+7, 1), pipeline.TTLExpired, false},
		{"hop limit 0", mod(base, 14+7, 0), pipeline.TTLExpired, false},
	}
	for _, c := range cases {
		r := Process(s, c.frame)
		wantV := Drop
		if c.pass {
			wantV = NotForUs
		}
		if r.Reason != c.want || r.Verdict != wantV || r.Frame != nil {
			t.Errorf("%s: got %v %v, want %v %v", c.name, r.Verdict, r.Reason, wantV, c.want)
		}
	}
	// The boundaries themselves are enough: 4 bytes of ICMPv6, 8 of a
	// fragment header, 4 of inner ports.
	for name, f := range map[string][]byte{
		"icmpv6 4 bytes":  plain6(testpkt.L4{Proto: testpkt.ProtoICMPv6})[:14+40+4],
		"fragment header": withExt(44)[:inIP+40+8],
		"inner ports":     base[:inIP+40+4],
		"hop limit 2":     mod(base, 14+7, 2),
	} {
		if r := Process(s, f); r.Verdict != Forward {
			t.Errorf("%s: %v %v, want forward", name, r.Verdict, r.Reason)
		}
	}
}

func TestGrayRulesV6(t *testing.T) {
	s := newTestState6()
	s.GrayRulesV6 = []GrayRuleV6{
		vmRule6(10, 5001, "2001:db8::5", 12),
		{Priority: 20, Match: pipeline.FlowKey6{Dst: a16("2001:db8:99::")}, // a /48 destination prefix
			Mask: pipeline.FlowKey6{Dst: a16("ffff:ffff:ffff::")}, Action: SetPool, Pool: 12},
	}
	// An IPv4 rule on VNI 5001 alone: it does not apply to IPv6 flows (the
	// controller writes an address-less rule to both tables).
	s.GrayRules = []GrayRule{{Priority: 99, Match: pipeline.FlowKey{VNI: 5001}, Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI}, Action: SetPool, Pool: poolGray}}
	if r := Process(s, overlay6(5001, "2001:db8::5", "2001:db8:1::1", tcp(1, 2))); r.Pool != 12 || r.RuleV6 != 0 || r.Rule != -1 || r.BackendID != 12 {
		t.Fatalf("moved VM: pool %d rule %d rule_v6 %d backend %d", r.Pool, r.Rule, r.RuleV6, r.BackendID)
	}
	if r := Process(s, overlay6(5001, "2001:db8::6", "2001:db8:99:1::1", tcp(1, 2))); r.Pool != 12 || r.RuleV6 != 1 {
		t.Fatalf("prefix rule: pool %d rule_v6 %d", r.Pool, r.RuleV6)
	}
	for _, f := range [][]byte{
		overlay6(5001, "2001:db8::6", "2001:db8:1::1", tcp(1, 2)),  // other VM
		overlay6(5002, "2001:db8::5", "2001:db8:1::1", tcp(1, 2)),  // other VNI
		overlay6(5001, "2001:db8::6", "2001:db8:9a::1", tcp(1, 2)), // outside the /48
	} {
		if r := Process(s, f); r.Pool != 11 || r.RuleV6 != -1 || r.Rule != -1 {
			t.Fatalf("unrelated IPv6 flow moved: pool %d rule %d rule_v6 %d", r.Pool, r.Rule, r.RuleV6)
		}
	}
	// The IPv4 flow of the same VNI meets gray_rules only.
	in := testpkt.VXLAN6(gwEth, testpkt.IP6{Src: vtep6, Dst: vip6}, 50000, 5001,
		testpkt.Inner(vmEth, testpkt.IP{Src: netip.MustParseAddr("10.0.0.5"), Dst: netip.MustParseAddr("192.168.1.1")}, tcp(1, 2)))
	if r := Process(s, in); r.Rule != 0 || r.RuleV6 != -1 || r.Reason != pipeline.BackendFamily {
		t.Fatalf("IPv4 flow in IPv6: rule %d rule_v6 %d %v (pool 2 has IPv4 backends: BACKEND_FAMILY)", r.Rule, r.RuleV6, r.Reason)
	}
	// A rule scoped to another VIP id does not match.
	s.GrayRulesV6[0].VIPID, s.GrayRulesV6[0].VIPMask = 1, 0xffff
	if r := Process(s, overlay6(5001, "2001:db8::5", "2001:db8:1::1", tcp(1, 2))); r.RuleV6 != -1 {
		t.Fatalf("a VIP-1 rule matched VIP 2's frame (rule_v6 %d)", r.RuleV6)
	}
}

func TestSplitV6IsStickyPerVM(t *testing.T) {
	s := newTestState6()
	s.GrayRulesV6 = []GrayRuleV6{{Priority: 1, Match: pipeline.FlowKey6{VNI: 7000}, Mask: pipeline.FlowKey6{VNI: pipeline.MaxVNI},
		Action: SplitPool, Pool: 12, Threshold: 16384}} // 25%
	gray := 0
	const vms = 2000
	for i := range vms {
		src := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)}).String()
		a := Process(s, overlay6(7000, src, "2001:db8:1::1", tcp(1000, 80)))
		b := Process(s, overlay6(7000, src, "2001:db8:2::2", testpkt.L4{Proto: testpkt.ProtoICMPv6}))
		if a.Pool != b.Pool || a.SplitHash != pipeline.SplitHash6(7000, a16(src)) {
			t.Fatalf("VM %s: pools %d and %d, split hash %d", src, a.Pool, b.Pool, a.SplitHash)
		}
		if (a.Pool == 12) != (a.SplitHash < 16384) {
			t.Fatalf("VM %s: split hash %d, pool %d", src, a.SplitHash, a.Pool)
		}
		if a.Pool == 12 {
			gray++
		}
	}
	if share := float64(gray) / vms; share < 0.22 || share > 0.28 {
		t.Fatalf("gray share %.3f for a 25%% threshold", share)
	}
}

func TestPoolMasksForIPv6(t *testing.T) {
	s := newTestState6()
	a := overlay6(5001, "2001:db8::5", "2001:db8:1::1", tcp(1000, 80))
	// A pool that hashes a VM (vni, src): an IPv4 /24 source mask hashes the
	// whole IPv6 source.
	s.PoolHash[11] = pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: 0xffffff00}
	r := Process(s, a)
	want := pipeline.FlowKey6{VNI: 5001, Src: a16("2001:db8::5")}
	if r.HashKey6 != want || r.Bucket != want.Bucket() || r.CRC != want.CRC() {
		t.Fatalf("key6 %+v bucket %d, want %+v bucket %d", r.HashKey6, r.Bucket, want, want.Bucket())
	}
	if b := Process(s, overlay6(5001, "2001:db8::5", "2001:db8:7::7", udp(9, 9))); b.Bucket != r.Bucket {
		t.Fatal("two flows of one VM hashed apart")
	}
	// No pool_hash entry: every field.
	delete(s.PoolHash, 11)
	if r := Process(s, a); r.HashKey6 != r.Flow6 {
		t.Fatalf("all-ones mask: key %+v, flow %+v", r.HashKey6, r.Flow6)
	}
}

func TestBackendFamilyGuard(t *testing.T) {
	s := newTestState6()
	// IPv6 outer on an IPv4 backend.
	s.VIPsV6[vip6.As16()] = VIP{ID: 2, DefaultPool: poolBase}
	if r := Process(s, overlay6(5001, "2001:db8::5", "2001:db8:1::1", tcp(1, 2))); r.Verdict != Drop ||
		r.Reason != pipeline.BackendFamily || r.BackendID != 1 || r.Frame != nil {
		t.Fatalf("v6 outer to to_backend: %v %v backend %d", r.Verdict, r.Reason, r.BackendID)
	}
	// IPv4 outer on an IPv6 backend, whatever the inner family.
	s.VIPs[vipAddr] = VIP{ID: 1, DefaultPool: 11}
	for _, f := range [][]byte{overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1, 2)),
		testpkt.VXLAN(gwEth, testpkt.IP{Src: vtep, Dst: vip}, 5, 5001, inner6("2001:db8::5", "2001:db8:1::1", tcp(1, 2)))} {
		if r := Process(s, f); r.Verdict != Drop || r.Reason != pipeline.BackendFamily || r.BackendID != 11 {
			t.Fatalf("v4 outer to to_backend_v6: %v %v backend %d", r.Verdict, r.Reason, r.BackendID)
		}
	}
}

func TestRewrite6(t *testing.T) {
	s := newTestState6()
	in := overlay6(5001, "2001:db8::5", "2001:db8:1::1", tcp(1000, 80))
	r := Process(s, in)
	if r.Verdict != Forward || r.Port != beBase6.Port {
		t.Fatalf("%v %v port %d", r.Verdict, r.Reason, r.Port)
	}
	out := r.Frame
	if len(out) != len(in) || [6]byte(out[0:6]) != beBase6.DMAC || [6]byte(out[6:12]) != beBase6.SMAC {
		t.Fatalf("length %d -> %d, MACs %x %x", len(in), len(out), out[0:6], out[6:12])
	}
	if [16]byte(out[14+24:14+40]) != beBase6.UnderlayIPv6 || out[14+7] != in[14+7]-1 {
		t.Fatalf("outer dst %x hop limit %d -> %d", out[14+24:14+40], in[14+7], out[14+7])
	}
	if !bytes.Equal(out[14:14+7], in[14:14+7]) || !bytes.Equal(out[14+8:14+24], in[14+8:14+24]) {
		t.Fatal("version, flow label, length, next header or source changed")
	}
	// The outer UDP checksum (non-zero, as Linux sends VXLAN over IPv6) is
	// updated: the segment verifies against the new destination.
	if binary.BigEndian.Uint16(in[14+40+6:]) == 0 || !testpkt.L4ChecksumOK6(out[14:]) {
		t.Fatal("outer UDP checksum not updated")
	}
	if !bytes.Equal(out[14+40+8:], in[14+40+8:]) || !bytes.Equal(out[14+40:14+40+6], in[14+40:14+40+6]) {
		t.Fatal("outer UDP ports/length, VXLAN or the inner frame changed")
	}
	// A zero outer UDP checksum (RFC 6935) stays zero.
	zero := append([]byte(nil), in...)
	zero[14+40+6], zero[14+40+7] = 0, 0
	if out := Process(s, zero).Frame; out[14+40+6] != 0 || out[14+40+7] != 0 {
		t.Fatal("a zero VXLAN checksum was filled in")
	}
}

func TestPlainL4ChecksumsStayValid6(t *testing.T) {
	s := newTestState6()
	for _, l4 := range []testpkt.L4{
		{Proto: testpkt.ProtoTCP, SPort: 40000, DPort: 443, Payload: []byte("hello")},
		{Proto: testpkt.ProtoUDP, SPort: 40000, DPort: 53, Payload: []byte("odd")},
		{Proto: testpkt.ProtoICMPv6, SPort: 1, DPort: 2, Payload: []byte("ping")},
	} {
		in := plain6(l4)
		r := Process(s, in)
		if r.Verdict != Forward || !testpkt.L4ChecksumOK6(r.Frame[14:]) {
			t.Fatalf("proto %d: %v %v, checksum valid %v", l4.Proto, r.Verdict, r.Reason, r.Verdict == Forward && testpkt.L4ChecksumOK6(r.Frame[14:]))
		}
	}
	// Plain UDP without a checksum keeps none; another next header is untouched.
	in := plain6(udp(1, 53))
	in[14+40+6], in[14+40+7] = 0, 0
	if out := Process(s, in).Frame; out[14+40+6] != 0 || out[14+40+7] != 0 {
		t.Fatal("a zero UDP checksum was filled in")
	}
	in = plain6(testpkt.L4{Proto: 47, Payload: []byte{0, 0, 0x86, 0xdd, 1, 2}})
	if out := Process(s, in).Frame; !bytes.Equal(out[14+40:], in[14+40:]) {
		t.Fatal("GRE payload changed")
	}
}

func TestUpdateChecksum128MatchesFullRecompute(t *testing.T) {
	seg := plain6(tcp(1, 2))[14:]
	src := [16]byte(seg[8:24])
	old := binary.BigEndian.Uint16(seg[40+16:])
	for i := uint32(0); i < 5000; i++ {
		var dst [16]byte
		for w := 0; w < 16; w += 4 {
			binary.BigEndian.PutUint32(dst[w:], i*2654435761+uint32(w)*40503)
		}
		l4 := append([]byte(nil), seg[40:]...)
		l4[16], l4[17] = 0, 0
		full := testpkt.L4Checksum6(src, dst, testpkt.ProtoTCP, l4)
		inc := UpdateChecksum128(old, vip6.As16(), dst)
		if inc != full && !(inc^full == 0xffff && (inc == 0 || full == 0)) {
			t.Fatalf("new dst %x: incremental %#x, full %#x", dst, inc, full)
		}
	}
}

// An IPv6 outer frame is never mirrored: set_pool_mirror acts as set_pool.
func TestIPv6OuterIsNotMirrored(t *testing.T) {
	s := newTestState6()
	s.GrayRules = []GrayRule{{Priority: 10, Match: pipeline.FlowKey{VNI: 5001}, Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI},
		Action: SetPoolMirror, Pool: 12, MirrorPool: 11, Sample: pipeline.SampleAll, MirrorID: 3}}
	in := testpkt.VXLAN6(gwEth, testpkt.IP6{Src: vtep6, Dst: vip6}, 50000, 5001,
		testpkt.Inner(vmEth, testpkt.IP{Src: netip.MustParseAddr("10.0.0.5"), Dst: netip.MustParseAddr("192.168.1.1")}, tcp(1, 2)))
	r := Process(s, in)
	if r.Verdict != Forward || r.Rule != 0 || r.Pool != 12 || r.Copy != nil || r.SplitHash != 0 {
		t.Fatalf("%v %v rule %d pool %d copy %+v split %d: want set_pool(12), no copy", r.Verdict, r.Reason, r.Rule, r.Pool, r.Copy, r.SplitHash)
	}
}

func TestTaggedIPv6IsServedAsUntagged(t *testing.T) {
	s := newTestState6()
	s.VLANAccept[PortVID{2, 100}] = true
	s.PortVLAN[beBase6.Port] = 300
	plain := overlay6(5001, "2001:db8::5", "2001:db8:1::1", tcp(1000, 80))
	want := Process(s, plain)
	r := ProcessPort(s, 2, testpkt.Tag(plain, 0xa000|100))
	if r.Verdict != Forward || r.CRC != want.CRC || r.Port != want.Port {
		t.Fatalf("tagged: %v %v crc %#x port %d; untagged crc %#x port %d", r.Verdict, r.Reason, r.CRC, r.Port, want.CRC, want.Port)
	}
	if !bytes.Equal(r.Frame, testpkt.Tag(Untag(want.Frame), 0xa000|300)) {
		t.Fatalf("retagged frame:\n got %x\nwant the untagged one's, tagged PCP 5 DEI 0 VID 300", r.Frame)
	}
	if r := ProcessPort(s, 2, testpkt.Tag(plain, 101)); r.Reason != pipeline.VLANNotAccepted {
		t.Fatalf("VID 101: %v", r.Reason)
	}
}

func udp(sport, dport uint16) testpkt.L4 {
	return testpkt.L4{Proto: testpkt.ProtoUDP, SPort: sport, DPort: dport, Payload: []byte("graygw-udp")}
}

// A copy reaching a backend entry of the other family is made and dropped,
// as one without a backend; the served frame is unchanged.
func TestMirrorCopyToTheOtherFamilyIsNotSent(t *testing.T) {
	s := newTestState6()
	s.GrayRules = []GrayRule{{Priority: 10, Match: pipeline.FlowKey{VNI: 5001}, Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI},
		Action: SetPoolMirror, Pool: poolBase, MirrorPool: 12, Sample: pipeline.SampleAll, MirrorID: 3}}
	r := Process(s, overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1, 2)))
	if r.Verdict != Forward || r.BackendID != 1 || r.Copy == nil || r.Copy.Sent || !r.Copy.BackendFamily ||
		r.Copy.BackendID != 12 || r.Copy.Frame != nil {
		t.Fatalf("%v %v backend %d copy %+v: want served by backend 1, a copy to backend 12 made and not sent", r.Verdict, r.Reason, r.BackendID, r.Copy)
	}
}

// The flow's family decides the key, not the outer header's: an inner flow
// hashes alike over IPv4 and IPv6 VXLAN (so a VM whose VTEP moves to an IPv6
// underlay keeps its buckets), and an IPv4 flow's key is the 18-byte one.
func TestOuterFamilyDoesNotMoveAFlow(t *testing.T) {
	s := newTestState6()
	s.VIPs[vipAddr] = VIP{ID: 1, DefaultPool: 11}       // both VIPs on the same pool,
	s.VIPsV6[vip6.As16()] = VIP{ID: 1, DefaultPool: 11} // with the same id
	s.Backends[11] = Backend{Port: 1}                   // an IPv4 backend: the v6 outer ones drop as BACKEND_FAMILY after hashing
	for _, inner := range [][]byte{
		testpkt.Inner(vmEth, testpkt.IP{Src: netip.MustParseAddr("10.0.0.5"), Dst: netip.MustParseAddr("192.168.1.1")}, tcp(1000, 80)),
		inner6("2001:db8::5", "2001:db8:1::1", tcp(1000, 80)),
	} {
		a := Process(s, testpkt.VXLAN(gwEth, testpkt.IP{Src: vtep, Dst: vip}, 50000, 5001, inner))
		b := Process(s, testpkt.VXLAN6(gwEth, testpkt.IP6{Src: vtep6, Dst: vip6}, 50000, 5001, inner))
		if a.IPv6 != b.IPv6 || a.HashKey != b.HashKey || a.HashKey6 != b.HashKey6 || a.CRC != b.CRC || a.Bucket != b.Bucket {
			t.Fatalf("inner IPv6 %v: over IPv4 key %+v %+v crc %#x, over IPv6 key %+v %+v crc %#x",
				a.IPv6, a.HashKey, a.HashKey6, a.CRC, b.HashKey, b.HashKey6, b.CRC)
		}
		if !a.IPv6 && a.HashKey != (pipeline.FlowKey{VNI: 5001, Src: ip("10.0.0.5"), Dst: ip("192.168.1.1"), Proto: 6, SPort: 1000, DPort: 80}) {
			t.Fatalf("IPv4 flow's key %+v", a.HashKey)
		}
	}
}
