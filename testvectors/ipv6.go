package testvectors

import (
	"fmt"
	"net/netip"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// IPv6 (docs/pipeline.md, issue 19): the cases live in a file of their own,
// ipv6.json (IPv6()), so that a target runs them once it implements IPv6; the
// IPv4 cases of pipeline.json do not depend on them.

// Addresses and identities of the "ipv6" state.
var (
	VIP6a       = netip.MustParseAddr("2001:db8:ff::1") // vip_id 3
	VIP6b       = netip.MustParseAddr("2001:db8:ff::2") // vip_id 4
	NotAVIP6    = netip.MustParseAddr("2001:db8:ff::99")
	ClientVTEP6 = netip.MustParseAddr("2001:db8:f::10")
	Client6     = netip.MustParseAddr("2001:db8:c::7")
)

// The pools and VNIs of the ipv6 state and what each shows. VNIMixed,
// VNIAllGray, VNIEmptyPool, VNISplit and VNINoTenant mean what they mean in
// the basic state, for IPv6 flows.
const (
	PoolBase6      = 11 // VIP6a's and VIP6b's default pool: IPv6 underlay
	PoolGray6      = 12 // hashes vni + src: IPv6 underlay
	PoolSrcMask6   = 13 // src_mask /24, dst_mask 0: whole src, no dst
	PoolEmpty6     = 14 // no buckets
	PoolGhost6     = 15 // buckets name a missing backend
	VNIGhost6      = 5004
	VNIFamily      = 5006 // rules to a pool of the other family: BACKEND_FAMILY
	VNICrossFamily = 5007 // an IPv6 flow in IPv4 VXLAN, an IPv4 flow in IPv6 VXLAN
	VNISrcMask6    = 5008
	VNIMirror6     = 5010 // a set_pool_mirror rule for IPv6 outer frames: acts as set_pool
	VNIMirrorTo6   = 5012 // an IPv4 VIP's mirror pool with IPv6 underlay: the copy is dropped
	IPv6InPort     = 1    // the VLAN cases' ingress port (accepts VIDAccepted)
)

// IPv6State is the table state of the IPv6 cases: an IPv4 VIP (VIP1, its
// pools 1 and 2 on IPv4 underlay) and two IPv6 VIPs (pools 11-13 on IPv6
// underlay), gray_rules_v6 for the IPv6 flows, gray_rules for the IPv4 flows
// carried over IPv6, and the VLAN state's port entries.
func IPv6State() State {
	all128 := "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
	vni := func(v uint32) Ternary { return Ternary{uint64(v), 0xffffff} }
	src := func(a string) map[string]Ternary6 { return map[string]Ternary6{"inner_src": {a, all128}} }
	pool := func(p uint64) map[string]uint64 { return map[string]uint64{"pool_id": p} }
	return State{
		VIP:   []VIPEntry{{DstAddr: VIP1.String(), VIPID: 1, DefaultPool: PoolBase}},
		VIPv6: []VIPEntry{{DstAddr: VIP6a.String(), VIPID: 3, DefaultPool: PoolBase6}, {DstAddr: VIP6b.String(), VIPID: 4, DefaultPool: PoolBase6}},
		VNITenant: []TenantEntry{
			{VNI: VNIMixed, TenantID: 7}, {VNI: VNIAllGray, TenantID: 8}, {VNI: VNIEmptyPool, TenantID: 3},
			{VNI: VNISplit, TenantID: 9}, {VNI: 0, TenantID: 100},
		},
		GrayRulesV6: []RuleEntry{
			{Priority: 100, Action: "set_pool_v6", Params: pool(PoolGray6), Match: map[string]Ternary{"vni": vni(VNIMixed)}, Match6: src("2001:db8::5")},
			{Priority: 50, Action: "set_pool_v6", Params: pool(PoolGray6), Match: map[string]Ternary{"vni": vni(VNIAllGray)}},
			{Priority: 200, Action: "set_pool_v6", Params: pool(PoolGray6),
				Match:  map[string]Ternary{"vni": vni(VNIMixed), "inner_proto": {6, 0xff}, "inner_sport": {40000, 0xffff}, "inner_dport": {443, 0xffff}},
				Match6: map[string]Ternary6{"inner_src": {"2001:db8::6", all128}, "inner_dst": {"2001:db8:1::1", all128}}},
			{Priority: 10, Action: "split_pool_v6", Params: map[string]uint64{"pool_gray": PoolGray6, "threshold": SplitThreshold},
				Match: map[string]Ternary{"tenant_id": {9, 0xffff}}},
			{Priority: 150, Action: "set_pool_v6", Params: pool(PoolBase6),
				Match: map[string]Ternary{"vni": vni(VNIMixed), "inner_dport": {22, 0xffff}}, Match6: src("2001:db8::5")},
			{Priority: 60, Action: "set_pool_v6", Params: pool(PoolEmpty6), Match: map[string]Ternary{"vni": vni(VNIEmptyPool)}},
			{Priority: 60, Action: "set_pool_v6", Params: pool(PoolGhost6), Match: map[string]Ternary{"vni": vni(VNIGhost6)}},
			{Priority: 70, Action: "set_pool_v6", Params: pool(PoolGray6), Match: map[string]Ternary{"vip_id": {4, 0xffff}},
				Match6: map[string]Ternary6{"inner_dst": {"2001:db8:99::", "ffff:ffff:ffff::"}}}, // a /48
			{Priority: 60, Action: "set_pool_v6", Params: pool(PoolSrcMask6), Match: map[string]Ternary{"vni": vni(VNISrcMask6)}},
			// A controller error, as the guard's cases need: VIP6a's VNIFamily
			// to an IPv4 pool, VIP1's to an IPv6 one.
			{Priority: 60, Action: "set_pool_v6", Params: pool(PoolGray), Match: map[string]Ternary{"vip_id": {3, 0xffff}, "vni": vni(VNIFamily)}},
			{Priority: 60, Action: "set_pool_v6", Params: pool(PoolGray6), Match: map[string]Ternary{"vip_id": {1, 0xffff}, "vni": vni(VNIFamily)}},
			// An IPv6 flow in IPv4 VXLAN, to VIP1's gray pool.
			{Priority: 60, Action: "set_pool_v6", Params: pool(PoolGray), Match: map[string]Ternary{"vip_id": {1, 0xffff}, "vni": vni(VNICrossFamily)}},
		},
		GrayRules: []RuleEntry{
			// An IPv4 flow in IPv6 VXLAN, to VIP6a's gray pool.
			{Priority: 60, Action: "set_pool", Params: pool(PoolGray6), Match: map[string]Ternary{"vip_id": {3, 0xffff}, "vni": vni(VNICrossFamily)}},
			// A mirror rule met by an IPv4 flow in IPv6 VXLAN: served by
			// PoolGray6 as set_pool would, never copied.
			{Priority: 60, Action: "set_pool_mirror", Match: map[string]Ternary{"vip_id": {3, 0xffff}, "vni": vni(VNIMirror6)},
				Params: map[string]uint64{"pool_id": PoolGray6, "mirror_pool": PoolBase6, "sample": pipeline.SampleAll, "mirror_id": MirrorIDAll}},
			// A controller error: VIP1's copies to a pool with IPv6 underlay.
			{Priority: 60, Action: "set_pool_mirror", Match: map[string]Ternary{"vip_id": {1, 0xffff}, "vni": vni(VNIMirrorTo6)},
				Params: map[string]uint64{"pool_id": PoolBase, "mirror_pool": PoolGray6, "sample": pipeline.SampleAll, "mirror_id": MirrorIDHalf}},
		},
		PoolHash: []PoolHash{
			{PoolID: PoolGray6, VNIMask: 0xffffff, SrcMask: 0xffffffff},
			{PoolID: PoolSrcMask6, VNIMask: 0xffffff, SrcMask: 0xffffff00, DPortMask: 0xffff},
		},
		BackendSelect: []SelectFill{
			{PoolID: PoolBase, Fill: []uint16{11, 12, 13}},
			{PoolID: PoolGray, Fill: []uint16{21, 22}},
			{PoolID: PoolBase6, Fill: []uint16{31, 32, 33}},
			{PoolID: PoolGray6, Fill: []uint16{41, 42}},
			{PoolID: PoolSrcMask6, Fill: []uint16{43}},
			{PoolID: PoolGhost6, Fill: []uint16{99}},
		},
		Backend: []BackendEntry{
			{BackendID: 11, Port: 1, SMAC: "02:00:00:00:01:01", DMAC: "02:00:00:00:0b:0b", UnderlayIP: "10.2.0.11"},
			{BackendID: 12, Port: 1, SMAC: "02:00:00:00:01:01", DMAC: "02:00:00:00:0c:0c", UnderlayIP: "10.2.0.12"},
			{BackendID: 13, Port: 2, SMAC: "02:00:00:00:02:02", DMAC: "02:00:00:00:0d:0d", UnderlayIP: "10.2.0.13"},
			{BackendID: 21, Port: 2, SMAC: "02:00:00:00:02:02", DMAC: "02:00:00:00:15:15", UnderlayIP: "10.3.0.21"},
			{BackendID: 22, Port: 2, SMAC: "02:00:00:00:02:02", DMAC: "02:00:00:00:16:16", UnderlayIP: "10.3.0.22"},
			{BackendID: 31, Port: 1, SMAC: "02:00:00:00:01:01", DMAC: "02:00:00:00:1f:1f", UnderlayIP: "2001:db8:2::31"},
			{BackendID: 32, Port: 1, SMAC: "02:00:00:00:01:01", DMAC: "02:00:00:00:20:20", UnderlayIP: "2001:db8:2::32"},
			{BackendID: 33, Port: 2, SMAC: "02:00:00:00:02:02", DMAC: "02:00:00:00:21:21", UnderlayIP: "2001:db8:2::33"},
			{BackendID: 41, Port: 2, SMAC: "02:00:00:00:02:02", DMAC: "02:00:00:00:29:29", UnderlayIP: "2001:db8:3::41"},
			{BackendID: 42, Port: 2, SMAC: "02:00:00:00:02:02", DMAC: "02:00:00:00:2a:2a", UnderlayIP: "2001:db8:3::42"},
			{BackendID: 43, Port: 3, SMAC: "02:00:00:00:03:03", DMAC: "02:00:00:00:2b:2b", UnderlayIP: "2001:db8:3::43"},
		},
		VLANAccept: []VLANAcceptEntry{{IngressPort: IPv6InPort, VID: VIDAccepted}},
		PortVLAN:   []PortVLANEntry{{EgressPort: 3, VID: VIDGrayPort}},
	}
}

// Overlay6 builds a VXLAN frame to vip carrying an inner packet from src to
// dst: the outer header is vip's family (from ClientVTEP or ClientVTEP6),
// the inner one src's. The outer UDP checksum of IPv6 VXLAN is filled in.
func Overlay6(vip netip.Addr, vni uint32, src, dst string, l4 testpkt.L4) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	innerEth := testpkt.Eth{Dst: RouterMAC, Src: VMMAC}
	var inner []byte
	if s.Is4() {
		inner = testpkt.Inner(innerEth, testpkt.IP{Src: s, Dst: d}, l4)
	} else {
		inner = testpkt.Inner6(innerEth, testpkt.IP6{Src: s, Dst: d}, l4)
	}
	eth, sport := testpkt.Eth{Dst: GatewayMAC, Src: ClientMAC}, 49152+uint16(vni%1000)
	if vip.Is4() {
		return testpkt.VXLAN(eth, testpkt.IP{Src: ClientVTEP, Dst: vip}, sport, vni, inner)
	}
	return testpkt.VXLAN6(eth, testpkt.IP6{Src: ClientVTEP6, Dst: vip}, sport, vni, inner)
}

// PlainTo6 builds a plain IPv6 frame from Client6 to dst.
func PlainTo6(dst netip.Addr, l4 testpkt.L4) []byte {
	return testpkt.Plain6(testpkt.Eth{Dst: GatewayMAC, Src: ClientMAC}, testpkt.IP6{Src: Client6, Dst: dst}, l4)
}

// innerFrag6 is an IPv6-in-IPv6 VXLAN frame whose inner packet is a
// fragment (offset off, more following when more) of a TCP segment.
func innerFrag6(off uint16, more bool) []byte {
	ip := testpkt.IP6{Src: netip.MustParseAddr("2001:db8::7"), Dst: netip.MustParseAddr("2001:db8:1::1"),
		ExtProto: testpkt.ProtoFragment, Ext: testpkt.FragmentHeader(testpkt.ProtoTCP, off, more, 0x1234)}
	inner := testpkt.Inner6(testpkt.Eth{Dst: RouterMAC, Src: VMMAC}, ip, tcp(33000, 80))
	return testpkt.VXLAN6(testpkt.Eth{Dst: GatewayMAC, Src: ClientMAC}, testpkt.IP6{Src: ClientVTEP6, Dst: VIP6a}, 49153, VNIMixed, inner)
}

// splitVM6 returns an inner IPv6 source in VNISplit on the gray side (gray
// true) or the base side of SplitThreshold.
func splitVM6(gray bool) string {
	for i := 1; i < 250; i++ {
		a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 9, 15: byte(i)})
		if (pipeline.SplitHash6(VNISplit, a.As16()) < SplitThreshold) == gray {
			return a.String()
		}
	}
	panic("no split VM found")
}

// ipv6Inputs returns the named input frames of the IPv6 cases, in order.
func ipv6Inputs() []Case {
	const (
		ip6      = 14                   // the outer IPv6 header
		l4       = ip6 + 40             // the outer L4 header
		innerEth = l4 + 8 + 8           // the inner Ethernet header of IPv6 VXLAN
		inIP     = innerEth + 14        // the inner IP header of IPv6 VXLAN
		inIP4o   = 14 + 20 + 8 + 8 + 14 // the inner IP header of IPv4 VXLAN
	)
	c, v := caseOf(StateIPv6, 0), caseOf(StateIPv6, IPv6InPort)
	base := Overlay6(VIP6a, VNIMixed, "2001:db8::7", "2001:db8:1::1", tcp(33000, 80))
	v4in6 := Overlay6(VIP6a, VNIMixed, "10.0.0.7", "192.168.1.1", tcp(33000, 80))
	v6in4 := Overlay6(VIP1, VNIMixed, "2001:db8::7", "2001:db8:1::1", tcp(33000, 80))
	gray := Overlay6(VIP6a, VNISrcMask6, "2001:db8::7", "2001:db8:1::1", tcp(33000, 80)) // to port 3, tagged VID 300
	icmp6 := testpkt.L4{Proto: testpkt.ProtoICMPv6, SPort: 9, DPort: 1, Payload: []byte("ping")}
	notVIP := Overlay6(NotAVIP6, VNIMixed, "2001:db8::7", "2001:db8:1::1", tcp(33000, 80))
	tag := testpkt.Tag
	return []Case{
		c("v6_overlay_default_pool", "IPv6 in IPv6 VXLAN from a VM with no gray rule: the VIP's default pool, outer UDP checksum updated for the IPv6 backend",
			base),
		c("v6_overlay_vm_cutover", "the one IPv6 VM moved to gray (vni 5001, src 2001:db8::5/128) goes to the gray pool",
			Overlay6(VIP6a, VNIMixed, "2001:db8::5", "2001:db8:1::1", tcp(33000, 80))),
		c("v6_overlay_vm_cutover_other_flow_same_backend", "another flow of the moved VM: the same gray backend (the pool hashes vni + the whole src)",
			Overlay6(VIP6a, VNIMixed, "2001:db8::5", "2001:db8:7::7", udp(5353, 53))),
		c("v6_overlay_higher_priority_exception", "the moved VM's ssh matches a higher-priority rule back to base",
			Overlay6(VIP6a, VNIMixed, "2001:db8::5", "2001:db8:1::1", tcp(33001, 22))),
		c("v6_overlay_vni_cutover", "a whole VPC moved (vni 5002)",
			Overlay6(VIP6a, VNIAllGray, "2001:db8:5::5", "2001:db8:8::8", udp(4000, 53))),
		c("v6_overlay_flow_cutover", "exactly one IPv6 TCP 5-tuple moved to gray",
			Overlay6(VIP6a, VNIMixed, "2001:db8::6", "2001:db8:1::1", tcp(40000, 443))),
		c("v6_overlay_flow_cutover_neighbour_stays", "the same VM's next source port stays on base",
			Overlay6(VIP6a, VNIMixed, "2001:db8::6", "2001:db8:1::1", tcp(40001, 443))),
		c("v6_overlay_split_gray_side", "an IPv6 VM of tenant 9 whose split_hash6 is below the threshold goes gray",
			Overlay6(VIP6a, VNISplit, splitVM6(true), "2001:db8:1::1", tcp(1234, 80))),
		c("v6_overlay_split_base_side", "an IPv6 VM of tenant 9 whose split_hash6 is at or above the threshold stays on base",
			Overlay6(VIP6a, VNISplit, splitVM6(false), "2001:db8:1::1", tcp(1234, 80))),
		c("v6_overlay_rule_by_vip_dst_prefix", "a rule scoped to VIP 4 and an inner destination /48",
			Overlay6(VIP6b, VNIMixed, "2001:db8::7", "2001:db8:99:3::4", tcp(5555, 8080))),
		c("v6_overlay_rule_by_vip_other_vip", "the VIP-4 rule does not apply to the same flow sent to VIP 3",
			Overlay6(VIP6a, VNIMixed, "2001:db8::7", "2001:db8:99:3::4", tcp(5555, 8080))),
		c("v6_overlay_unknown_vni_tenant_zero", "a VNI with no vni_tenant entry gets tenant 0",
			Overlay6(VIP6a, VNINoTenant, "2001:db8::7", "2001:db8:1::1", tcp(33000, 80))),
		c("v6_overlay_pool_src_mask", "a pool whose src_mask is a /24 hashes the whole IPv6 source, and dst_mask 0 leaves the destination out",
			gray),
		c("v6_overlay_icmpv6_ports_zero", "inner ICMPv6 echo: proto 58, ports 0",
			Overlay6(VIP6a, VNIMixed, "2001:db8::7", "2001:db8:1::1", icmp6)),
		c("v6_overlay_fragment_first_ports_zero", "an inner first fragment (offset 0, M): proto from the fragment header, ports 0",
			innerFrag6(0, true)),
		c("v6_overlay_fragment_later_ports_zero", "an inner later fragment: the same flow fields as the first",
			innerFrag6(1232, false)),
		c("v6_overlay_other_proto", "inner ESP (50): proto 50, ports 0",
			Overlay6(VIP6a, VNIMixed, "2001:db8::7", "2001:db8:1::1", testpkt.L4{Proto: 50, Payload: []byte("espespespesp")})),
		c("v6_overlay_udp_zero_checksum_stays", "IPv6 VXLAN with outer UDP checksum 0 (RFC 6935): stays 0",
			set(base, l4+6, 0, 0)),
		c("v6_plain_tcp", "plain IPv6 TCP to the VIP: vni 0, outer fields hashed, TCP checksum updated over the 8 words of the new destination",
			PlainTo6(VIP6a, tcp(44321, 443))),
		c("v6_plain_udp", "plain IPv6 UDP: checksum updated",
			PlainTo6(VIP6a, udp(44321, 53))),
		c("v6_plain_udp_zero_checksum", "plain IPv6 UDP with checksum 0 keeps 0",
			set(PlainTo6(VIP6a, udp(44322, 53)), l4+6, 0, 0)),
		c("v6_plain_icmpv6", "plain ICMPv6 echo: ports 0, its checksum (which covers the pseudo-header) updated",
			PlainTo6(VIP6a, icmp6)),
		c("v6_plain_other_proto", "plain GRE over IPv6: forwarded, no L4 change",
			PlainTo6(VIP6a, testpkt.L4{Proto: 47, Payload: []byte{0, 0, 0x86, 0xdd, 1, 2, 3, 4}})),
		c("v6_hop_limit_2_forwarded", "hop limit 2 leaves as 1",
			set(base, ip6+7, 2)),
		c("v6_outer_v4_inner", "an IPv4 flow in IPv6 VXLAN: gray_rules, to VIP 3's IPv6 gray pool",
			Overlay6(VIP6a, VNICrossFamily, "10.0.0.7", "192.168.1.1", tcp(33000, 80))),
		c("v6_outer_v4_inner_default_pool", "an IPv4 flow in IPv6 VXLAN with no rule: the IPv6 VIP's default pool",
			v4in6),
		c("v6_outer_mirror_rule_not_mirrored", "an IPv6 outer frame meeting set_pool_mirror is served as set_pool, with no copy",
			Overlay6(VIP6a, VNIMirror6, "10.10.0.5", "192.168.1.1", tcp(33000, 80))),
		c("v4_outer_v6_inner", "an IPv6 flow in IPv4 VXLAN: gray_rules_v6, to VIP 1's IPv4 gray pool, the IPv6 key",
			Overlay6(VIP1, VNICrossFamily, "2001:db8::7", "2001:db8:1::1", tcp(33000, 80))),
		c("v4_outer_v6_inner_default_pool", "an IPv6 flow in IPv4 VXLAN with no rule: VIP 1's default pool, the outer UDP checksum zeroed as for IPv4",
			v6in4),
		c("mirror_copy_to_ipv6_backend_dropped", "an IPv4 frame whose mirror pool's backend is to_backend_v6: served, the copy made and dropped (backend_counter counts its hit)",
			Overlay(VIP1, VNIMirrorTo6, "10.12.0.5", "192.168.1.1", tcp(33000, 80))),
		c("v4_overlay_unchanged", "IPv4 in IPv4 VXLAN in this state: as in the basic state",
			Overlay(VIP1, VNIMixed, "10.0.0.7", "192.168.1.1", tcp(33000, 80))),

		c("pass_v6_not_vip", "IPv6 VXLAN to an address that is not a v6 VIP is not for us",
			notVIP),
		c("pass_v6_not_vip_even_if_broken", "a truncated IPv6 VXLAN frame to a non-VIP: not for us",
			notVIP[:l4+3]),
		c("pass_v6_not_vip_bad_version", "version 4 in an IPv6 header to a non-VIP: not for us",
			set(notVIP, ip6, 0x40)),
		c("pass_v6_mapped_ipv4_vip", "::ffff:10.255.0.1 is not the IPv4 VIP: vip_v6 misses",
			PlainTo6(netip.MustParseAddr("::ffff:10.255.0.1"), tcp(1, 2))),
		c("drop_ipv6_truncated", "Ethernet + 39 bytes of IPv6: before the VIP lookup", base[:ip6+39]),
		c("drop_ipv6_bad_version", "version 4 in an IPv6 header to a VIP", set(base, ip6, 0x45)),
		c("drop_ipv6_ext_hop_by_hop", "an outer hop-by-hop header", set(base, ip6+6, 0)),
		c("drop_ipv6_ext_routing", "an outer routing header", set(base, ip6+6, 43)),
		c("drop_ipv6_ext_fragment", "an outer fragment header", set(base, ip6+6, 44)),
		c("drop_ipv6_ext_ah", "an outer AH header", set(base, ip6+6, 51)),
		c("drop_ipv6_ext_dest_opts", "an outer destination options header", set(base, ip6+6, 60)),
		c("drop_v6_udp_truncated", "IPv6 UDP with 7 bytes of header", base[:l4+7]),
		c("drop_v6_tcp_truncated", "plain IPv6 TCP with 19 bytes of header", PlainTo6(VIP6a, tcp(1, 2))[:l4+19]),
		c("drop_v6_icmpv6_truncated", "plain ICMPv6 with 3 bytes", PlainTo6(VIP6a, icmp6)[:l4+3]),
		c("v6_plain_icmpv6_4_bytes", "plain ICMPv6 with exactly its 4-byte type, code and checksum: forwarded",
			PlainTo6(VIP6a, icmp6)[:l4+4]),
		c("drop_v6_vxlan_truncated", "IPv6 VXLAN header cut at 7 bytes", base[:l4+8+7]),
		c("drop_v6_vxlan_bad_flags", "IPv6 VXLAN, I flag clear", set(base, l4+8, 0)),
		c("drop_v6_inner_eth_truncated", "inner Ethernet cut at 13 bytes", base[:innerEth+13]),
		c("drop_v6_inner_not_ip", "inner ARP ethertype in IPv6 VXLAN", set(base, innerEth+12, 0x08, 0x06)),
		c("drop_inner_ipv6_truncated", "inner IPv6 cut at 39 bytes", base[:inIP+39]),
		c("drop_inner_ipv6_truncated_in_v4", "inner IPv6 in IPv4 VXLAN cut at 39 bytes", v6in4[:inIP4o+39]),
		c("drop_inner_ipv6_malformed", "inner version 4 behind an IPv6 ethertype", set(base, inIP, 0x45)),
		c("drop_inner_ipv6_malformed_in_v4", "inner version 4 behind an IPv6 ethertype, IPv4 VXLAN", set(v6in4, inIP4o, 0x45)),
		c("drop_inner_ipv4_malformed_in_v6", "inner version 6 behind an IPv4 ethertype, IPv6 VXLAN", set(v4in6, inIP, 0x65)),
		c("drop_inner_ipv6_ext_hop_by_hop", "an inner hop-by-hop header", set(base, inIP+6, 0)),
		c("drop_inner_ipv6_ext_routing", "an inner routing header", set(base, inIP+6, 43)),
		c("drop_inner_ipv6_ext_ah", "an inner AH header", set(base, inIP+6, 51)),
		c("drop_inner_ipv6_ext_dest_opts", "an inner destination options header", set(base, inIP+6, 60)),
		c("drop_inner_ipv6_fragment_truncated", "an inner fragment header cut at 7 bytes", innerFrag6(0, true)[:inIP+40+7]),
		c("v6_inner_fragment_header_only", "an inner fragment header and nothing after it: forwarded, ports 0", innerFrag6(0, true)[:inIP+40+8]),
		c("drop_inner_ipv6_l4_truncated", "inner IPv6 TCP cut at 3 bytes", base[:inIP+40+3]),
		c("drop_v6_hop_limit_1", "outer hop limit 1 would leave as 0", set(base, ip6+7, 1)),
		c("drop_v6_hop_limit_0", "outer hop limit 0", set(base, ip6+7, 0)),
		c("drop_v6_no_backend_empty_pool", "a gray_rules_v6 rule to a pool with no buckets",
			Overlay6(VIP6a, VNIEmptyPool, "2001:db8::7", "2001:db8:1::1", tcp(33000, 80))),
		c("drop_v6_no_backend_missing_backend", "a pool's buckets name a backend with no entry",
			Overlay6(VIP6a, VNIGhost6, "2001:db8::7", "2001:db8:1::1", tcp(33000, 80))),
		c("drop_backend_family_v6_outer", "an IPv6 outer frame reaching a to_backend (IPv4) entry: BACKEND_FAMILY",
			Overlay6(VIP6a, VNIFamily, "2001:db8::7", "2001:db8:1::1", tcp(33000, 80))),
		c("drop_backend_family_v4_outer", "an IPv4 outer frame reaching a to_backend_v6 entry: BACKEND_FAMILY",
			Overlay6(VIP1, VNIFamily, "2001:db8::7", "2001:db8:1::1", tcp(33000, 80))),

		v("v6_vlan_tagged_stripped", "tagged VID 100 on port 1, served on an untagged port: the tag is removed",
			tag(base, VIDAccepted)),
		v("v6_vlan_tagged_rewritten", "tagged VID 100 with PCP 5 and DEI, to port 3: VID 300, PCP and DEI kept",
			tag(gray, 0xb000|VIDAccepted)),
		v("v6_vlan_untagged_pushed", "untagged IPv6, to port 3: a tag VID 300 (PCP 0) is pushed", gray),
		v("v6_vlan_tagged_plain_icmpv6", "plain ICMPv6, tagged: its checksum updated behind the tag, which is removed",
			tag(PlainTo6(VIP6a, icmp6), VIDAccepted)),
		v("drop_v6_vlan_not_accepted", "IPv6 tagged VID 101 on port 1: VLAN_NOT_ACCEPTED", tag(base, VIDAccepted+1)),
		v("drop_v6_vlan_ipv6_truncated", "tag, then 39 bytes of IPv6", tag(base, VIDAccepted)[:18+39]),
	}
}

// StateIPv6 is the name of the state of the IPv6 cases.
const StateIPv6 = "ipv6"

// GenerateIPv6 builds the IPv6 vectors file (ipv6.json), computing
// expectations with the model.
func GenerateIPv6() (*File, error) {
	f := &File{
		Comment: "graygw IPv6 pipeline test vectors (docs/pipeline.md; issue 19), kept apart from pipeline.json until every target implements IPv6. Generated by `make vectors` from testvectors/ipv6.go; expectations computed by the Go reference model. backend_select fill: bucket b -> fill[b % len(fill)]. expect.ipv6: the flow is IPv6 (rule indexes gray_rules_v6, hash_key is the 42-byte key6).",
		Buckets: pipeline.Buckets,
		States:  map[string]State{StateIPv6: IPv6State()},
	}
	return f, expect(f, ipv6Inputs())
}

// expect runs every case over its state in f with the model and appends it to
// f.Cases with its expectation.
func expect(f *File, cases []Case) error {
	states := map[string]*model.State{}
	for name, s := range f.States {
		m, err := s.Model()
		if err != nil {
			return fmt.Errorf("state %s: %w", name, err)
		}
		states[name] = m
	}
	for _, c := range cases {
		frame, _ := c.Frame()
		c.Expect = ExpectFrom(model.ProcessPort(states[c.State], c.InPort, frame))
		f.Cases = append(f.Cases, c)
	}
	return nil
}
