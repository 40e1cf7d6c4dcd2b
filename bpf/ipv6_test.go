//go:build linux

package bpf

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// The IPv6 world of these tests: a VIP of each family, and per family a
// base and a gray pool of one backend each (pools hold one family's
// backends: the controller's rule).
var (
	vip6       = netip.MustParseAddr("2001:db8:ffff::1")
	vip4       = netip.MustParseAddr("10.255.0.1")
	under4Base = netip.MustParseAddr("10.2.0.11")
	under4Gray = netip.MustParseAddr("10.3.0.21")
	under6Base = netip.MustParseAddr("2001:db8:2::11")
	under6Gray = netip.MustParseAddr("2001:db8:3::21")
	vm6        = netip.MustParseAddr("2001:db8:a::5")
	vm6Other   = netip.MustParseAddr("2001:db8:a::6")
	svc6       = netip.MustParseAddr("2001:db8:b::1")
	eth6       = testpkt.Eth{Dst: testpkt.MAC("02:00:00:00:00:01"), Src: testpkt.MAC("02:00:00:00:00:aa")}
	gwMAC      = testpkt.MAC("02:00:00:00:00:02")
	beMAC      = testpkt.MAC("02:00:00:00:00:03")
)

const (
	pool4Base, pool4Gray, pool6Base, pool6Gray = 1, 2, 3, 4
	be4Base, be4Gray, be6Base, be6Gray         = 11, 21, 12, 22
	vni6                                       = 5001
)

// v6World opens a dataplane with the world above (fillV6World).
func v6World(t *testing.T) *Dataplane {
	t.Helper()
	d := openTest(t)
	fillV6World(t, d)
	return d
}

// fillV6World writes the world above into d: every pool's buckets on its
// one backend, all ports on the loopback.
func fillV6World(t *testing.T, d *Dataplane) {
	t.Helper()
	check(t, d.SetVIP(vip4, VIP{ID: 1, DefaultPool: pool4Base}))
	check(t, d.SetVIP(vip6, VIP{ID: 2, DefaultPool: pool6Base}))
	check(t, d.SetTenant(vni6, 7))
	check(t, d.SetPort(1, loIfindex))
	for id, u := range map[uint16]netip.Addr{be4Base: under4Base, be4Gray: under4Gray, be6Base: under6Base, be6Gray: under6Gray} {
		b := Backend{Port: 1, SMAC: gwMAC, DMAC: beMAC}
		if u.Is4() {
			b.UnderlayIP, _ = ip4(u)
		} else {
			b.IPv6, b.UnderlayIPv6 = true, u.As16()
		}
		check(t, d.SetBackendEntry(id, b))
	}
	for pool, id := range map[uint16]uint16{pool4Base: be4Base, pool4Gray: be4Gray, pool6Base: be6Base, pool6Gray: be6Gray} {
		fillPool(t, d, pool, id)
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func fillPool(t *testing.T, d *Dataplane, pool, id uint16) {
	t.Helper()
	ids := make([]uint16, pipeline.Buckets)
	for i := range ids {
		ids[i] = id
	}
	check(t, d.SetBuckets(pool, 0, ids))
}

func tcp6(sport, dport uint16) testpkt.L4 {
	return testpkt.L4{Proto: testpkt.ProtoTCP, SPort: sport, DPort: dport, Payload: []byte("graygw")}
}

// overlay66 is VXLAN over IPv6 to vip6 carrying an inner IPv6 frame.
func overlay66(src netip.Addr, l4 testpkt.L4) []byte {
	inner := testpkt.Inner6(eth6, testpkt.IP6{Src: src, Dst: svc6}, l4)
	return testpkt.VXLAN6(eth6, testpkt.IP6{Src: netip.MustParseAddr("2001:db8:1::1"), Dst: vip6}, 40000, vni6, inner)
}

// overlay46 is VXLAN over IPv4 to vip4 carrying an inner IPv6 frame.
func overlay46(src netip.Addr, l4 testpkt.L4) []byte {
	inner := testpkt.Inner6(eth6, testpkt.IP6{Src: src, Dst: svc6}, l4)
	return testpkt.VXLAN(eth6, testpkt.IP{Src: netip.MustParseAddr("10.1.0.1"), Dst: vip4}, 40000, vni6, inner)
}

// overlay64 is VXLAN over IPv6 to vip6 carrying an inner IPv4 frame.
func overlay64(src string, l4 testpkt.L4) []byte {
	inner := testpkt.Inner(eth6, testpkt.IP{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr("192.168.1.1")}, l4)
	return testpkt.VXLAN6(eth6, testpkt.IP6{Src: netip.MustParseAddr("2001:db8:1::1"), Dst: vip6}, 40000, vni6, inner)
}

// plain6 is IPv6 to vip6 with l4 right after the header.
func plain6(l4 testpkt.L4) []byte {
	return testpkt.Plain6(eth6, testpkt.IP6{Src: vm6, Dst: vip6}, l4)
}

// verdict6 runs frame and names what happened: "to <underlay>" for a
// forwarded frame (IPv4 or IPv6 outer), else the reason counted, else the
// XDP verdict. out is the frame as it left.
func verdict6(t *testing.T, d *Dataplane, frame []byte) (string, []byte) {
	t.Helper()
	before, _ := d.DropCounters()
	ret, out := run(t, d.Program(), frame)
	after, _ := d.DropCounters()
	out = out[:len(frame)]
	if ret == xdpTX || ret == xdpRedirect {
		switch binary.BigEndian.Uint16(out[12:]) {
		case 0x86dd:
			var a [16]byte
			copy(a[:], out[14+24:14+40])
			return "to " + netip.AddrFrom16(a).String(), out
		case 0x0800:
			return "to " + netip.AddrFrom4([4]byte(out[14+16:14+20])).String(), out
		}
		return fmt.Sprintf("forwarded ethertype %#x", out[12:14]), out
	}
	for r := range pipeline.NumReasons {
		if after[r].Packets != before[r].Packets {
			return pipeline.Reason(r).String(), out
		}
	}
	return verdictName(ret), out
}

func wantVerdict6(t *testing.T, d *Dataplane, name string, frame []byte, want string) []byte {
	t.Helper()
	got, out := verdict6(t, d, frame)
	if got != want {
		t.Errorf("%s: %s, want %s", name, got, want)
	}
	return out
}

// TestIPv6Forwarding: each family pairing reaches its default pool's
// backend, rewritten as docs/pipeline.md §8 says: MACs, outer dst, hop
// limit or TTL, and every checksum over the pseudo-header still valid.
func TestIPv6Forwarding(t *testing.T) {
	d := v6World(t)
	udp := testpkt.L4{Proto: testpkt.ProtoUDP, SPort: 5353, DPort: 53, Payload: []byte("q")}
	icmp := testpkt.L4{Proto: testpkt.ProtoICMPv6, SPort: 7, DPort: 1}
	for _, c := range []struct {
		name  string
		frame []byte
		want  netip.Addr
	}{
		{"plain TCP", plain6(tcp6(33000, 80)), under6Base},
		{"plain UDP", plain6(udp), under6Base},
		{"plain ICMPv6", plain6(icmp), under6Base},
		{"plain other (GRE)", plain6(testpkt.L4{Proto: 47, Payload: []byte("gre!")}), under6Base},
		{"VXLAN over IPv6, inner IPv6", overlay66(vm6, tcp6(33000, 80)), under6Base},
		{"VXLAN over IPv6, inner IPv4", overlay64("10.0.0.5", tcp6(33000, 80)), under6Base},
		{"VXLAN over IPv4, inner IPv6", overlay46(vm6, tcp6(33000, 80)), under4Base},
	} {
		out := wantVerdict6(t, d, c.name, c.frame, "to "+c.want.String())
		if !bytes.Equal(out[0:6], beMAC[:]) || !bytes.Equal(out[6:12], gwMAC[:]) {
			t.Errorf("%s: MACs %x, want %x <- %x", c.name, out[:12], beMAC, gwMAC)
		}
		if c.want.Is4() {
			if out[14+8] != c.frame[14+8]-1 || testpkt.Checksum(out[14:34]) != 0 {
				t.Errorf("%s: IPv4 TTL %d (was %d) or header checksum wrong", c.name, out[14+8], c.frame[14+8])
			}
			continue
		}
		if out[14+7] != c.frame[14+7]-1 {
			t.Errorf("%s: hop limit %d, want %d", c.name, out[14+7], c.frame[14+7]-1)
		}
		switch c.frame[14+6] {
		case testpkt.ProtoTCP, testpkt.ProtoUDP, testpkt.ProtoICMPv6:
			if !testpkt.L4ChecksumOK6(out[14:]) {
				t.Errorf("%s: L4 checksum not valid after the rewrite: %x", c.name, out[14:])
			}
		default:
			if !bytes.Equal(out[14+40:], c.frame[14+40:]) {
				t.Errorf("%s: a payload without a checksum changed", c.name)
			}
		}
	}

	// A zero UDP checksum stays zero (RFC 6935), plain and VXLAN.
	for name, f := range map[string][]byte{"plain UDP": plain6(udp), "VXLAN": overlay66(vm6, tcp6(1, 2))} {
		f[14+40+6], f[14+40+7] = 0, 0
		out := wantVerdict6(t, d, name+", zero checksum", f, "to "+under6Base.String())
		if out[14+40+6] != 0 || out[14+40+7] != 0 {
			t.Errorf("%s: zero UDP checksum became %x", name, out[14+46:14+48])
		}
	}
}

// TestIPv6Drops: every IPv6 reason at its boundary (docs/pipeline.md §1),
// and what is not for the gateway is passed to the kernel.
func TestIPv6Drops(t *testing.T) {
	d := v6World(t)
	ok := plain6(tcp6(33000, 80))
	with := func(f []byte, edit func([]byte)) []byte {
		f = bytes.Clone(f)
		edit(f)
		return f
	}
	ext := func(nh uint8) []byte {
		return testpkt.Plain6(eth6, testpkt.IP6{Src: vm6, Dst: vip6, ExtProto: nh, Ext: []byte{6, 0, 0, 0, 0, 0, 0, 0}}, tcp6(1, 2))
	}
	innerExt := func(nh uint8) []byte {
		inner := testpkt.Inner6(eth6, testpkt.IP6{Src: vm6, Dst: svc6, ExtProto: nh, Ext: []byte{6, 0, 0, 0, 0, 0, 0, 0}}, tcp6(1, 2))
		return testpkt.VXLAN6(eth6, testpkt.IP6{Src: vm6Other, Dst: vip6}, 40000, vni6, inner)
	}
	overlayLen := 14 + 40 + 8 + 8 + 14 // up to the inner IPv6 header
	cases := []struct {
		name  string
		frame []byte
		want  string
	}{
		{"outer cut inside its header", ok[:14+39], "IPV6_TRUNCATED"},
		{"outer cut right after the ethertype", ok[:14], "IPV6_TRUNCATED"},
		{"not a VIP", testpkt.Plain6(eth6, testpkt.IP6{Src: vm6, Dst: svc6}, tcp6(1, 2)), "NOT_VIP"},
		{"version 4 in an IPv6 header", with(ok, func(f []byte) { f[14] = 0x40 }), "IPV6_MALFORMED"},
		{"hop limit 1", with(ok, func(f []byte) { f[14+7] = 1 }), "TTL_EXPIRED"},
		{"hop limit 0", with(ok, func(f []byte) { f[14+7] = 0 }), "TTL_EXPIRED"},
		{"TCP cut", ok[:14+40+19], "L4_TRUNCATED"},
		{"UDP cut", plain6(testpkt.L4{Proto: testpkt.ProtoUDP, SPort: 1, DPort: 2})[:14+40+7], "L4_TRUNCATED"},
		{"ICMPv6 cut", plain6(testpkt.L4{Proto: testpkt.ProtoICMPv6})[:14+40+3], "L4_TRUNCATED"},
		{"ICMPv6 of 4 bytes", plain6(testpkt.L4{Proto: testpkt.ProtoICMPv6})[:14+40+4], "to " + under6Base.String()},
		{"inner cut inside its header", overlay66(vm6, tcp6(1, 2))[:overlayLen+39], "INNER_TRUNCATED"},
		{"inner ports cut", overlay66(vm6, tcp6(1, 2))[:overlayLen+40+3], "INNER_TRUNCATED"},
		{"inner ports whole", overlay66(vm6, tcp6(1, 2))[:overlayLen+40+4], "to " + under6Base.String()},
		{"inner version 4", with(overlay66(vm6, tcp6(1, 2)), func(f []byte) { f[overlayLen] = 0x45 }), "INNER_IPV6_MALFORMED"},
		{"inner ethertype ARP", with(overlay66(vm6, tcp6(1, 2)), func(f []byte) { f[overlayLen-2], f[overlayLen-1] = 0x08, 0x06 }), "INNER_NOT_IPV4"},
		{"inner IPv6 over IPv4 cut", overlay46(vm6, tcp6(1, 2))[:14+20+8+8+14+39], "INNER_TRUNCATED"},
		{"inner IPv6 over IPv4 malformed", with(overlay46(vm6, tcp6(1, 2)), func(f []byte) { f[14+20+8+8+14] = 0x60 | 0x80 }), "INNER_IPV6_MALFORMED"},
		{"outer IPv6 to an IPv4 backend", nil, "BACKEND_FAMILY"},
	}
	for _, nh := range []uint8{testpkt.ProtoHopByHop, testpkt.ProtoRouting, testpkt.ProtoFragment, testpkt.ProtoAH, testpkt.ProtoDestOpts} {
		cases = append(cases, struct {
			name  string
			frame []byte
			want  string
		}{fmt.Sprintf("outer extension header %d", nh), ext(nh), "IPV6_EXTENSION"})
	}
	for _, nh := range []uint8{testpkt.ProtoHopByHop, testpkt.ProtoRouting, testpkt.ProtoAH, testpkt.ProtoDestOpts} {
		cases = append(cases, struct {
			name  string
			frame []byte
			want  string
		}{fmt.Sprintf("inner extension header %d", nh), innerExt(nh), "INNER_IPV6_EXTENSION"})
	}
	// A fragment header is parsed: its next header is the protocol.
	frag := innerExt(testpkt.ProtoFragment)
	cases = append(cases, struct {
		name  string
		frame []byte
		want  string
	}{"inner fragment", frag, "to " + under6Base.String()},
		struct {
			name  string
			frame []byte
			want  string
		}{"inner fragment header cut", frag[:overlayLen+40+7], "INNER_TRUNCATED"})
	for _, c := range cases {
		if c.frame == nil {
			continue
		}
		wantVerdict6(t, d, c.name, c.frame, c.want)
	}
	if ret, _ := run(t, d.Program(), cases[2].frame); ret != xdpPass {
		t.Errorf("not a VIP: verdict %s, want XDP_PASS", verdictName(ret))
	}

	// BACKEND_FAMILY, both ways: a pool of the other family's backend.
	fillPool(t, d, pool6Base, be4Base)
	wantVerdict6(t, d, "IPv6 outer, IPv4 backend", ok, "BACKEND_FAMILY")
	wantVerdict6(t, d, "IPv6 outer, inner IPv4, IPv4 backend", overlay64("10.0.0.5", tcp6(1, 2)), "BACKEND_FAMILY")
	fillPool(t, d, pool4Base, be6Base)
	wantVerdict6(t, d, "IPv4 outer, inner IPv6, IPv6 backend", overlay46(vm6, tcp6(1, 2)), "BACKEND_FAMILY")
	wantVerdict6(t, d, "IPv4 outer and flow, IPv6 backend",
		testpkt.Plain(eth6, testpkt.IP{Src: netip.MustParseAddr("10.0.0.5"), Dst: vip4}, tcp6(1, 2)), "BACKEND_FAMILY")
	check(t, d.ClearPool(pool6Base))
	wantVerdict6(t, d, "no bucket", ok, "NO_BACKEND")
}

// rule6 is a gray_rules_v6 rule on VIP 2 or any (vip 0), VNI vni6 unless
// plain, and src within prefix.
func rule6(prio int32, vip uint16, plain bool, prefix netip.Prefix, pool uint16) model.GrayRuleV6 {
	r := model.GrayRuleV6{Priority: prio, Action: model.SetPool, Pool: pool}
	if vip != 0 {
		r.VIPID, r.VIPMask = vip, 0xffff
	}
	if !plain {
		r.Match.VNI, r.Mask.VNI = vni6, pipeline.MaxVNI
	}
	r.Match.Src = prefix.Addr().As16()
	bits := prefix.Bits()
	for i := range r.Mask.Src {
		switch {
		case bits >= 8:
			r.Mask.Src[i], bits = 0xff, bits-8
		case bits > 0:
			r.Mask.Src[i], bits = byte(0xff<<(8-bits)), 0
		}
	}
	return r
}

// TestIPv6GrayRules: gray_rules_v6 moves an IPv6 VM (overlay over either
// outer family, and plain), the best priority wins across masks, a
// shadowed rule takes over when the better one goes, counters count, and a
// restarted loader keeps it all (rule6_store).
func TestIPv6GrayRules(t *testing.T) {
	dir := pinDir(t)
	d := openPinned(t, dir)
	defer func() { d.Unpin(); d.Close() }()
	fillV6World(t, d)
	vm := netip.PrefixFrom(vm6, 128)
	onVIP6 := rule6(100, 2, false, vm, pool6Gray)
	check(t, d.InsertRuleV6(onVIP6))
	onVIP4 := rule6(100, 1, false, vm, pool4Gray)
	check(t, d.InsertRuleV6(onVIP4))
	plainVM := rule6(50, 2, true, vm, pool6Gray)
	check(t, d.InsertRuleV6(plainVM))

	wantVerdict6(t, d, "VM over IPv6", overlay66(vm6, tcp6(1, 2)), "to "+under6Gray.String())
	wantVerdict6(t, d, "other VM over IPv6", overlay66(vm6Other, tcp6(1, 2)), "to "+under6Base.String())
	wantVerdict6(t, d, "VM over IPv4", overlay46(vm6, tcp6(1, 2)), "to "+under4Gray.String())
	wantVerdict6(t, d, "plain from the VM", plain6(tcp6(1, 2)), "to "+under6Gray.String())
	// An inner IPv4 flow behind an IPv6 outer is gray_rules' business.
	wantVerdict6(t, d, "inner IPv4 over IPv6", overlay64("10.0.0.5", tcp6(1, 2)), "to "+under6Base.String())
	r4 := model.GrayRule{Priority: 10, Match: pipeline.FlowKey{Src: 0x0a000005}, Mask: pipeline.FlowKey{Src: 0xffffffff},
		Action: model.SetPool, Pool: pool6Gray}
	check(t, d.InsertRule(r4))
	wantVerdict6(t, d, "inner IPv4 over IPv6, gray rule", overlay64("10.0.0.5", tcp6(1, 2)), "to "+under6Gray.String())

	// A wider, better rule on another mask wins; deleting it, the /128 one
	// is back.
	wide := rule6(200, 0, false, netip.MustParsePrefix("2001:db8:a::/64"), pool6Base)
	check(t, d.InsertRuleV6(wide))
	wantVerdict6(t, d, "VM under a better /64", overlay66(vm6, tcp6(1, 2)), "to "+under6Base.String())
	if c, err := d.RuleCounterV6(wide); err != nil || c.Packets != 1 {
		t.Fatalf("the /64 rule's counter %+v %v, want 1 packet", c, err)
	}
	// Same match, lower priority: shadowed, then promoted.
	shadow := wide
	shadow.Priority, shadow.Pool = 150, pool6Gray
	check(t, d.InsertRuleV6(shadow))
	wantVerdict6(t, d, "shadowed", overlay66(vm6, tcp6(1, 2)), "to "+under6Base.String())
	check(t, d.DeleteRuleV6(wide))
	wantVerdict6(t, d, "promoted", overlay66(vm6, tcp6(1, 2)), "to "+under6Gray.String())
	check(t, d.DeleteRuleV6(shadow))
	wantVerdict6(t, d, "the /128 again", overlay66(vm6, tcp6(1, 2)), "to "+under6Gray.String())
	if c, err := d.RuleCounterV6(onVIP6); err != nil || c.Packets != 2 {
		t.Fatalf("the /128 rule's counter %+v %v, want 2 packets", c, err)
	}
	if err := d.InsertRuleV6(onVIP6); err == nil {
		t.Fatal("a second rule of the same match and priority was accepted")
	}
	if err := d.InsertRuleV6(model.GrayRuleV6{Priority: 1, Action: model.SetPoolMirror}); err == nil {
		t.Fatal("a mirror rule was accepted into gray_rules_v6")
	}
	// Split: threshold just above and at the VM's split hash.
	h := pipeline.SplitHash6(vni6, vm6.As16())
	split := onVIP6
	split.Action, split.Threshold = model.SplitPool, h+1
	check(t, d.ModifyRuleV6(split))
	wantVerdict6(t, d, "split, hash below the threshold", overlay66(vm6, tcp6(1, 2)), "to "+under6Gray.String())
	split.Threshold = h
	check(t, d.ModifyRuleV6(split))
	wantVerdict6(t, d, "split, hash at the threshold", overlay66(vm6, tcp6(1, 2)), "to "+under6Base.String())

	checkFilter6(t, d, "after the inserts, deletes and modifies")

	// A restarted loader finds the rules, the VIPs and the counters.
	rules := d.RulesV6()
	d.Close()
	d = openPinned(t, dir)
	if got := d.RulesV6(); len(got) != len(rules) || len(got) != 3 {
		t.Fatalf("rules after a restart %+v, want %+v", got, rules)
	}
	wantVerdict6(t, d, "after a restart", overlay66(vm6, tcp6(1, 2)), "to "+under6Base.String())
	wantVerdict6(t, d, "after a restart, plain", plain6(tcp6(1, 2)), "to "+under6Gray.String())
	if vips, err := d.VIPs(); err != nil || vips[vip6] != (VIP{ID: 2, DefaultPool: pool6Base}) {
		t.Fatalf("vips after a restart %v %v", vips, err)
	}
	if bes, err := d.Backends(); err != nil || !bes[be6Gray].IPv6 || bes[be6Gray].UnderlayIPv6 != under6Gray.As16() {
		t.Fatalf("backends after a restart %v %v", bes, err)
	}
	if c, err := d.VIPCounter(vip6); err != nil || c.Packets == 0 {
		t.Fatalf("vip_v6 counter after a restart %+v %v", c, err)
	}
	checkFilter6(t, d, "after a restart")
}

// checkFilter6 requires gray_masks6's filter to be exactly the bits of the
// groups' keys, and each mask's bound its rules' best priority.
func checkFilter6(t *testing.T, d *Dataplane, when string) {
	t.Helper()
	var want [1 << (filter6Log - 6)]uint64
	for _, m := range d.tss6.masks {
		var top int32
		for v, g := range m.groups {
			b := filter6Bit(entry6(m, v))
			want[b/64] |= 1 << (b % 64)
			top = max(top, g[0].rule.Priority)
		}
		if m.top != top {
			t.Errorf("%s: mask %d bound %d, its rules' best %d", when, m.id, m.top, top)
		}
	}
	var got graygwMask6Table
	if err := d.objs.GrayMasks6.Lookup(uint32(0), &got); err != nil {
		t.Fatal(err)
	}
	if got.Filter != want || int(got.Len) != len(d.tss6.masks) {
		t.Errorf("%s: gray_masks6 holds %d masks and a filter that is not the groups' bits (want %d masks)", when, got.Len, len(d.tss6.masks))
	}
}

// TestIPv6Hash: the bucket of an IPv6 flow is the low bits of CRC32 over the
// 42-byte key (pipeline.FlowKey6), with a pool's masks as Mask6 reads them,
// bit for bit: only the expected bucket holds the other backend.
func TestIPv6Hash(t *testing.T) {
	d := v6World(t)
	flows := []struct {
		src   netip.Addr
		sport uint16
	}{{vm6, 33000}, {vm6Other, 1}, {netip.MustParseAddr("fe80::1:2:3:4"), 65535}, {netip.MustParseAddr("::"), 0}}
	masks := map[string]pipeline.FlowKey{
		"every field": pipeline.AllOnes,
		"vni and src": {VNI: pipeline.MaxVNI, Src: 0xffffffff},
		"no address":  {VNI: 0xff00ff, Tenant: 0x00ff, Proto: 0xff, SPort: 0xff00, DPort: 0xffff},
		"dst only":    {Dst: 1},
	}
	for name, m := range masks {
		check(t, d.SetPoolHash(pool6Base, m))
		for _, f := range flows {
			k := pipeline.FlowKey6{VNI: vni6, Tenant: 7, Src: f.src.As16(), Dst: svc6.As16(), Proto: testpkt.ProtoTCP, SPort: f.sport, DPort: 80}
			b := k.And(m.Mask6()).Bucket()
			fillPool(t, d, pool6Base, be6Base)
			check(t, d.SetBucket(pool6Base, b, be6Gray))
			wantVerdict6(t, d, fmt.Sprintf("%s, %v:%d: bucket %d", name, f.src, f.sport, b),
				overlay66(f.src, tcp6(f.sport, 80)), "to "+under6Gray.String())
		}
	}
}

// BenchmarkFillRules fills an empty table with GrayRulesV6Size rules over 8
// masks, gray_rules_v6 and, in the same process, gray_rules (the baseline):
// what a controller's full reinstall of the IPv6 table costs against the
// IPv4 one. go test -run '^$' -bench FillRules ./bpf/
func BenchmarkFillRules(b *testing.B) {
	const n = GrayRulesV6Size
	b.Run("gray_rules", func(b *testing.B) {
		benchFill(b, n, func(d *Dataplane, i int) error {
			return d.InsertRule(model.GrayRule{Priority: int32(i + 1), Match: pipeline.FlowKey{VNI: uint32(i), Src: uint32(i) << 8},
				Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: 0xffffffff << (i % 8)}, Action: model.SetPool, Pool: 1})
		})
	})
	b.Run("gray_rules_v6", func(b *testing.B) {
		benchFill(b, n, func(d *Dataplane, i int) error {
			r := rule6(int32(i+1), 0, false, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 13: byte(i >> 8), 14: byte(i)}), 128-(i%8)), 1)
			r.Match.VNI = uint32(i)
			return d.InsertRuleV6(r)
		})
	})
}

// benchFill times n inserts (insert(d, 0) to insert(d, n-1)) into an empty
// Dataplane, reported per rule.
func benchFill(b *testing.B, n int, insert func(d *Dataplane, i int) error) {
	for range b.N {
		b.StopTimer()
		d := openTestB(b)
		b.StartTimer()
		for i := range n {
			if err := insert(d, i); err != nil {
				b.Fatal(err)
			}
		}
		d.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/rule")
	b.ReportMetric(0, "ns/op")
}

// openTestB is openTest for a benchmark iteration: the caller closes it.
func openTestB(b *testing.B) *Dataplane {
	b.Helper()
	skipUnlessBPF(b)
	d, err := Open(Options{NoPin: true})
	if err != nil {
		b.Fatal(err)
	}
	return d
}
