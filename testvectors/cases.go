package testvectors

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/pipeline"
)

// Addresses and identities of the "basic" state, exported so tests in other
// packages can build further packets against the same tables.
var (
	VIP1       = netip.MustParseAddr("10.255.0.1")
	VIP2       = netip.MustParseAddr("10.255.0.2")
	NotAVIP    = netip.MustParseAddr("10.255.0.99")
	ClientVTEP = netip.MustParseAddr("10.1.0.10")
	GatewayMAC = testpkt.MAC("02:00:00:00:00:01")
	ClientMAC  = testpkt.MAC("02:00:00:00:00:aa")
	VMMAC      = testpkt.MAC("02:00:00:00:10:01")
	RouterMAC  = testpkt.MAC("02:00:00:00:10:fe")
)

// The VNIs of the basic state and what each shows.
const (
	VNIMixed       = 5001 // one VM moved to gray, with exceptions
	VNIAllGray     = 5002 // whole VPC moved
	VNIEmptyPool   = 5003 // rule to a pool with no buckets
	VNIGhostBE     = 5004 // rule to a pool whose buckets name a missing backend
	VNINoTenant    = 5005 // no vni_tenant entry
	VNISplit       = 5009 // tenant 9: sticky 50% split
	PoolBase       = 1
	PoolGray       = 2
	SplitThreshold = 32768

	// The "mirror" state (docs/pipeline.md §10): basic plus these rules.
	VNIMirrorAll       = 5010 // every frame served by base, copied to gray
	VNIMirrorHalf      = 5011 // sampled 1 in 2, per VM
	VNIMirrorNoBackend = 5012 // mirror pool with no backend: copy made, not sent
	VNIMirrorServedOut = 5013 // served pool with no backend: dropped, no copy
	MirrorIDAll        = 1
	MirrorIDHalf       = 2
)

// MirrorState is BasicState with set_pool_mirror rules, a state of its own so
// that a target without mirroring (XDP, docs/xdp.md) can skip it.
func MirrorState() State {
	s := BasicState()
	mirror := func(prio int32, match map[string]Ternary, pool, mpool uint16, sample uint16, id uint16) RuleEntry {
		return RuleEntry{Priority: prio, Action: "set_pool_mirror", Match: match,
			Params: map[string]uint64{"pool_id": uint64(pool), "mirror_pool": uint64(mpool), "sample": uint64(sample), "mirror_id": uint64(id)}}
	}
	vni := func(v uint32) map[string]Ternary { return map[string]Ternary{"vni": {uint64(v), 0xffffff}} }
	s.GrayRules = append(s.GrayRules,
		mirror(80, vni(VNIMirrorAll), PoolBase, PoolGray, pipeline.SampleAll, MirrorIDAll),
		mirror(80, vni(VNIMirrorHalf), PoolBase, PoolGray, pipeline.Sample(2), MirrorIDHalf),
		mirror(80, vni(VNIMirrorNoBackend), PoolBase, 4, pipeline.SampleAll, MirrorIDAll),
		mirror(80, vni(VNIMirrorServedOut), 4, PoolGray, pipeline.SampleAll, MirrorIDAll),
		// Plain TCP (vni 0) to VIP 2: the copy's TCP checksum follows its new destination.
		mirror(5, map[string]Ternary{"vip_id": {2, 0xffff}, "vni": {0, 0xffffff}, "inner_proto": {6, 0xff}},
			PoolBase, PoolGray, pipeline.SampleAll, MirrorIDAll),
	)
	return s
}

// The "vlan" state (802.1Q, docs/pipeline.md §1, §8): basic plus port
// entries. Port 1 accepts VID 100 (the frames of these cases come in on port 1
// unless said otherwise), port 3 (the gray pool's) sends tagged with VID 300,
// ports 1 and 2 (base) untagged; and three mirror rules, so that a copy is
// tagged, untagged or retagged where its served frame is not, or is:
// VNIMirrorAll served by base and copied to gray, VNIVLANMirrorBack served by
// gray and copied to base, VNIVLANMirrorGray2 served by gray and copied to
// pool PoolGray2 (backend 23, on port 3 too).
const (
	VLANInPort         = 1
	VIDAccepted        = 100
	VIDGrayPort        = 300
	VNIVLANMirrorBack  = 5014
	VNIVLANMirrorGray2 = 5015
	PoolGray2          = 6
)

// VLANState is BasicState with 802.1Q port entries and three mirror rules.
func VLANState() State {
	s := BasicState()
	s.VLANAccept = []VLANAcceptEntry{{IngressPort: VLANInPort, VID: VIDAccepted}}
	s.PortVLAN = []PortVLANEntry{{EgressPort: 3, VID: VIDGrayPort}}
	mirror := func(vni uint32, pool, mpool uint16) RuleEntry {
		return RuleEntry{Priority: 80, Action: "set_pool_mirror", Match: map[string]Ternary{"vni": {uint64(vni), 0xffffff}},
			Params: map[string]uint64{"pool_id": uint64(pool), "mirror_pool": uint64(mpool), "sample": pipeline.SampleAll, "mirror_id": MirrorIDAll}}
	}
	s.GrayRules = append(s.GrayRules, mirror(VNIMirrorAll, PoolBase, PoolGray), mirror(VNIVLANMirrorBack, PoolGray, PoolBase),
		mirror(VNIVLANMirrorGray2, PoolGray, PoolGray2))
	s.BackendSelect = append(s.BackendSelect, SelectFill{PoolID: PoolGray2, Fill: []uint16{23}})
	s.Backend = append(s.Backend, BackendEntry{BackendID: 23, Port: 3, SMAC: "02:00:00:00:03:03", DMAC: "02:00:00:00:17:17", UnderlayIP: "10.3.0.23"})
	return s
}

// mirrorVM returns an inner source in VNIMirrorHalf that is sampled (in true)
// or not.
func mirrorVM(in bool) string {
	return vmWhose("10.11.0.%d", VNIMirrorHalf, func(h uint16) bool { return (h <= pipeline.Sample(2)) == in })
}

// vmWhose returns the first inner source of the /24 format (with %d for its
// last byte, from 1) whose split hash in vni satisfies ok.
func vmWhose(format string, vni uint32, ok func(splitHash uint16) bool) string {
	for i := 1; i < 250; i++ {
		src := fmt.Sprintf(format, i)
		if ok(pipeline.SplitHash(vni, uint32(ip32(src)))) {
			return src
		}
	}
	panic("testvectors: no VM of " + format + " found")
}

// BasicState is the table state most cases run over.
func BasicState() State {
	exact32 := uint64(0xffffffff)
	return State{
		VIP: []VIPEntry{
			{DstAddr: VIP1.String(), VIPID: 1, DefaultPool: PoolBase},
			{DstAddr: VIP2.String(), VIPID: 2, DefaultPool: PoolBase},
		},
		VNITenant: []TenantEntry{
			{VNI: VNIMixed, TenantID: 7}, {VNI: VNIAllGray, TenantID: 8},
			{VNI: VNIEmptyPool, TenantID: 3}, {VNI: VNIGhostBE, TenantID: 4},
			{VNI: VNISplit, TenantID: 9}, {VNI: 0, TenantID: 100},
		},
		GrayRules: []RuleEntry{
			{Priority: 100, Action: "set_pool", Params: map[string]uint64{"pool_id": PoolGray},
				Match: map[string]Ternary{"vni": {VNIMixed, 0xffffff}, "inner_src": {ip32("10.0.0.5"), exact32}}},
			{Priority: 50, Action: "set_pool", Params: map[string]uint64{"pool_id": PoolGray},
				Match: map[string]Ternary{"vni": {VNIAllGray, 0xffffff}}},
			{Priority: 200, Action: "set_pool", Params: map[string]uint64{"pool_id": PoolGray},
				Match: map[string]Ternary{"vni": {VNIMixed, 0xffffff}, "inner_src": {ip32("10.0.0.6"), exact32},
					"inner_dst": {ip32("192.168.1.1"), exact32}, "inner_proto": {6, 0xff},
					"inner_sport": {40000, 0xffff}, "inner_dport": {443, 0xffff}}},
			{Priority: 10, Action: "split_pool", Params: map[string]uint64{"pool_gray": PoolGray, "threshold": SplitThreshold},
				Match: map[string]Ternary{"tenant_id": {9, 0xffff}}},
			{Priority: 150, Action: "set_pool", Params: map[string]uint64{"pool_id": PoolBase},
				Match: map[string]Ternary{"vni": {VNIMixed, 0xffffff}, "inner_src": {ip32("10.0.0.5"), exact32},
					"inner_dport": {22, 0xffff}}},
			{Priority: 60, Action: "set_pool", Params: map[string]uint64{"pool_id": 4},
				Match: map[string]Ternary{"vni": {VNIEmptyPool, 0xffffff}}},
			{Priority: 60, Action: "set_pool", Params: map[string]uint64{"pool_id": 5},
				Match: map[string]Ternary{"vni": {VNIGhostBE, 0xffffff}}},
			{Priority: 70, Action: "set_pool", Params: map[string]uint64{"pool_id": PoolGray},
				Match: map[string]Ternary{"vip_id": {2, 0xffff}, "inner_dst": {ip32("172.16.0.0"), 0xffff0000}}},
		},
		PoolHash: []PoolHash{
			// The gray pool hashes a VM (vni, src) only, so all its flows share a backend.
			{PoolID: PoolGray, VNIMask: 0xffffff, SrcMask: 0xffffffff},
		},
		BackendSelect: []SelectFill{
			{PoolID: PoolBase, Fill: []uint16{11, 12, 13}},
			{PoolID: PoolGray, Fill: []uint16{21, 22}},
			{PoolID: 5, Fill: []uint16{99}},
		},
		Backend: []BackendEntry{
			{BackendID: 11, Port: 1, SMAC: "02:00:00:00:01:01", DMAC: "02:00:00:00:0b:0b", UnderlayIP: "10.2.0.11"},
			{BackendID: 12, Port: 1, SMAC: "02:00:00:00:01:01", DMAC: "02:00:00:00:0c:0c", UnderlayIP: "10.2.0.12"},
			{BackendID: 13, Port: 2, SMAC: "02:00:00:00:02:02", DMAC: "02:00:00:00:0d:0d", UnderlayIP: "10.2.0.13"},
			{BackendID: 21, Port: 3, SMAC: "02:00:00:00:03:03", DMAC: "02:00:00:00:15:15", UnderlayIP: "10.3.0.21"},
			{BackendID: 22, Port: 3, SMAC: "02:00:00:00:03:03", DMAC: "02:00:00:00:16:16", UnderlayIP: "10.3.0.22"},
		},
	}
}

func ip32(s string) uint64 {
	b := netip.MustParseAddr(s).As4()
	return uint64(binary.BigEndian.Uint32(b[:]))
}

// Overlay builds a VXLAN frame from the client VTEP to vip carrying an inner packet.
func Overlay(vip netip.Addr, vni uint32, src, dst string, l4 testpkt.L4) []byte {
	inner := testpkt.Inner(testpkt.Eth{Dst: RouterMAC, Src: VMMAC},
		testpkt.IP{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst)}, l4)
	return testpkt.VXLAN(testpkt.Eth{Dst: GatewayMAC, Src: ClientMAC},
		testpkt.IP{Src: ClientVTEP, Dst: vip}, 49152+uint16(vni%1000), vni, inner)
}

// PlainTo builds a plain IPv4 frame from a client to dst.
func PlainTo(dst netip.Addr, l4 testpkt.L4) []byte {
	return testpkt.Plain(testpkt.Eth{Dst: GatewayMAC, Src: ClientMAC},
		testpkt.IP{Src: netip.MustParseAddr("198.51.100.7"), Dst: dst}, l4)
}

func tcp(sport, dport uint16) testpkt.L4 {
	return testpkt.L4{Proto: testpkt.ProtoTCP, SPort: sport, DPort: dport, Payload: []byte("graygw")}
}

func udp(sport, dport uint16) testpkt.L4 {
	return testpkt.L4{Proto: testpkt.ProtoUDP, SPort: sport, DPort: dport, Payload: []byte("graygw-udp")}
}

// splitVM returns an inner source in VNISplit whose split hash is on the gray side
// (gray true) or the base side of SplitThreshold.
func splitVM(gray bool) string {
	return vmWhose("10.9.0.%d", VNISplit, func(h uint16) bool { return (h < SplitThreshold) == gray })
}

func set(b []byte, off int, v ...byte) []byte {
	b = append([]byte(nil), b...)
	copy(b[off:], v)
	return b
}

// caseOf returns a maker of the cases of state whose frame comes in on
// inPort.
func caseOf(state string, inPort uint16) func(name, desc string, pkt []byte) Case {
	return func(name, desc string, pkt []byte) Case {
		return Case{Name: name, Description: desc, State: state, InPort: inPort, Packet: hex.EncodeToString(pkt)}
	}
}

// inputs returns the named input frames of every case, in order.
func inputs() []Case {
	base := Overlay(VIP1, VNIMixed, "10.0.0.7", "192.168.1.1", tcp(33000, 80))
	vxlanInnerIP := 14 + 20 + 8 + 8 + 14 // offset of the inner IPv4 header
	c, m, v := caseOf("basic", 0), caseOf(StateMirror, 0), caseOf(StateVLAN, VLANInPort)
	tag := testpkt.Tag
	gray := Overlay(VIP1, VNIAllGray, "10.5.5.5", "8.8.8.8", udp(4000, 53))
	return []Case{
		c("overlay_default_pool", "VXLAN TCP from a VM with no gray rule goes to the VIP's default (base) pool", base),
		c("overlay_vm_cutover", "the one VM moved to gray (vni 5001, src 10.0.0.5) goes to the gray pool",
			Overlay(VIP1, VNIMixed, "10.0.0.5", "192.168.1.1", tcp(33000, 80))),
		c("overlay_vm_cutover_other_flow_same_backend", "another flow of the moved VM lands on the same gray backend (gray pool hashes vni+src)",
			Overlay(VIP1, VNIMixed, "10.0.0.5", "192.168.7.7", udp(5353, 53))),
		c("overlay_higher_priority_exception", "the moved VM's ssh (dport 22) matches a higher-priority rule back to base",
			Overlay(VIP1, VNIMixed, "10.0.0.5", "192.168.1.1", tcp(33001, 22))),
		c("overlay_vni_cutover", "every VM of the VPC moved as a whole (vni 5002) goes gray",
			Overlay(VIP1, VNIAllGray, "10.5.5.5", "8.8.8.8", udp(4000, 53))),
		c("overlay_flow_cutover", "exactly one TCP 5-tuple moved to gray",
			Overlay(VIP1, VNIMixed, "10.0.0.6", "192.168.1.1", tcp(40000, 443))),
		c("overlay_flow_cutover_neighbour_stays", "the same VM's next source port is not the moved flow and stays on base",
			Overlay(VIP1, VNIMixed, "10.0.0.6", "192.168.1.1", tcp(40001, 443))),
		c("overlay_split_gray_side", "a VM of tenant 9 whose split hash is below the threshold goes gray",
			Overlay(VIP1, VNISplit, splitVM(true), "192.168.1.1", tcp(1234, 80))),
		c("overlay_split_base_side", "a VM of tenant 9 whose split hash is at or above the threshold stays on base",
			Overlay(VIP1, VNISplit, splitVM(false), "192.168.1.1", tcp(1234, 80))),
		c("overlay_rule_by_vip", "a rule scoped to VIP 2 and an inner destination prefix",
			Overlay(VIP2, VNIMixed, "10.0.0.7", "172.16.3.4", tcp(5555, 8080))),
		c("overlay_rule_by_vip_other_vip", "the VIP-2 rule does not apply to the same flow sent to VIP 1",
			Overlay(VIP1, VNIMixed, "10.0.0.7", "172.16.3.4", tcp(5555, 8080))),
		c("overlay_unknown_vni_tenant_zero", "a VNI with no vni_tenant entry gets tenant 0",
			Overlay(VIP1, VNINoTenant, "10.0.0.7", "192.168.1.1", tcp(33000, 80))),
		c("overlay_inner_icmp_ports_zero", "inner ICMP echo hashes with ports 0",
			Overlay(VIP1, VNIMixed, "10.0.0.7", "192.168.1.1", testpkt.L4{Proto: testpkt.ProtoICMP, SPort: 77, DPort: 1})),
		c("overlay_inner_fragment_ports_zero", "an inner non-first fragment is hashed with ports 0",
			innerFragment(Overlay(VIP1, VNIMixed, "10.0.0.7", "192.168.1.1", testpkt.L4{Proto: testpkt.ProtoTCP, Payload: []byte("xxxxxxxxxxxxxxxxxxxxxxxx")}))),
		c("overlay_inner_other_proto", "inner GRE (47) hashes with ports 0",
			Overlay(VIP1, VNIMixed, "10.0.0.7", "192.168.1.1", testpkt.L4{Proto: 47, Payload: []byte{0, 0, 8, 0}})),
		c("plain_tcp", "plain TCP to the VIP: vni 0, outer fields hashed, TCP checksum updated for the new destination",
			PlainTo(VIP1, tcp(44321, 443))),
		c("plain_udp", "plain UDP to the VIP with a checksum: checksum updated",
			PlainTo(VIP1, udp(44321, 53))),
		c("plain_udp_zero_checksum", "plain UDP with checksum 0 keeps 0",
			set(PlainTo(VIP1, udp(44322, 53)), 14+20+6, 0, 0)),
		c("plain_icmp", "plain ICMP echo to the VIP: ports 0, ICMP untouched",
			PlainTo(VIP1, testpkt.L4{Proto: testpkt.ProtoICMP, SPort: 9, DPort: 1, Payload: []byte("ping")})),
		c("plain_other_proto", "plain GRE to the VIP: forwarded with ports 0",
			PlainTo(VIP1, testpkt.L4{Proto: 47, Payload: []byte{0, 0, 8, 0, 1, 2, 3, 4}})),
		c("ttl_2_forwarded", "TTL 2 leaves as 1",
			set(base, 14+8, 2)),
		c("bad_outer_checksum_corrected", "a wrong received IPv4 checksum is not checked and leaves recomputed",
			set(base, 14+10, 0xde, 0xad)),

		c("drop_eth_truncated", "a 10-byte frame", base[:10]),
		c("pass_not_ipv4", "ARP is not for us", arp()),
		c("drop_ipv4_truncated", "Ethernet + 19 bytes of IPv4", base[:14+19]),
		c("pass_not_vip", "VXLAN to an address that is not a VIP is not for us",
			Overlay(NotAVIP, VNIMixed, "10.0.0.7", "192.168.1.1", tcp(33000, 80))),
		c("pass_not_vip_even_if_broken", "a truncated VXLAN packet to a non-VIP is not for us, not dropped",
			Overlay(NotAVIP, VNIMixed, "10.0.0.7", "192.168.1.1", tcp(33000, 80))[:14+20+8+3]),
		c("pass_not_vip_ipv4_options", "IPv4 options on a non-VIP packet: not for us",
			set(Overlay(NotAVIP, VNIMixed, "10.0.0.7", "192.168.1.1", tcp(33000, 80)), 14, 0x46)),
		c("drop_ipv4_options", "IPv4 options (ihl 6) to a VIP are not supported", set(base, 14, 0x46)),
		c("drop_ipv4_bad_version", "IPv4 version 6 in an IPv4 ethertype", set(base, 14, 0x65)),
		c("drop_ipv4_fragment_mf", "outer first fragment (MF)", set(base, 14+6, 0x20, 0x00)),
		c("drop_ipv4_fragment_offset", "outer non-first fragment", set(base, 14+6, 0x00, 0x10)),
		c("drop_tcp_truncated", "plain TCP with 19 bytes of header", PlainTo(VIP1, tcp(1, 2))[:14+20+19]),
		c("drop_udp_truncated", "UDP with 7 bytes of header", base[:14+20+7]),
		c("drop_vxlan_truncated", "VXLAN header cut at 7 bytes", base[:14+20+8+7]),
		c("drop_vxlan_bad_flags", "VXLAN I flag clear", set(base, 14+20+8, 0x00)),
		c("drop_inner_eth_truncated", "inner Ethernet cut at 13 bytes", base[:14+20+8+8+13]),
		c("drop_inner_not_ipv4", "inner ARP ethertype: neither IPv4 nor IPv6", set(base, 14+20+8+8+12, 0x08, 0x06)),
		c("drop_inner_ipv4_truncated", "inner IPv4 cut at 19 bytes", base[:vxlanInnerIP+19]),
		c("drop_inner_ipv4_malformed", "inner IPv4 with options", set(base, vxlanInnerIP, 0x46)),
		c("drop_inner_l4_truncated", "inner TCP cut at 3 bytes", base[:vxlanInnerIP+20+3]),
		c("drop_ttl_expired_1", "outer TTL 1 would leave as 0", set(base, 14+8, 1)),
		c("drop_ttl_expired_0", "outer TTL 0", set(base, 14+8, 0)),
		c("drop_no_backend_empty_pool", "a rule points at a pool with no backend_select entries",
			Overlay(VIP1, VNIEmptyPool, "10.0.0.7", "192.168.1.1", tcp(33000, 80))),
		c("drop_no_backend_missing_backend", "a pool's buckets name a backend with no backend entry",
			Overlay(VIP1, VNIGhostBE, "10.0.0.7", "192.168.1.1", tcp(33000, 80))),

		m("mirror_copy", "a mirrored VPC: served by base as set_pool would, a copy to gray's backend marked DSCP 1",
			Overlay(VIP1, VNIMirrorAll, "10.10.0.5", "192.168.1.1", tcp(33000, 80))),
		m("mirror_copy_keeps_ecn_ttl_2", "the copy keeps the received ECN bits (DSCP EF becomes LE) and leaves with TTL 1 like the served frame",
			set(set(Overlay(VIP1, VNIMirrorAll, "10.10.0.6", "192.168.1.1", udp(5353, 53)), 14+1, 0xb9), 14+8, 2)),
		m("mirror_copy_plain_tcp", "plain TCP mirrored: the copy's TCP checksum is updated for gray's backend",
			PlainTo(VIP2, tcp(44321, 443))),
		m("mirror_sampled_in", "1-in-2 sampling: a VM whose split hash is <= sample is mirrored",
			Overlay(VIP1, VNIMirrorHalf, mirrorVM(true), "192.168.1.1", tcp(1234, 80))),
		m("mirror_sampled_out", "1-in-2 sampling: a VM whose split hash is > sample is served, not mirrored",
			Overlay(VIP1, VNIMirrorHalf, mirrorVM(false), "192.168.1.1", tcp(1234, 80))),
		m("mirror_no_mirror_backend", "the mirror pool has no backend: the copy is made (counted) and dropped, the served frame leaves",
			Overlay(VIP1, VNIMirrorNoBackend, "10.12.0.5", "192.168.1.1", tcp(33000, 80))),
		m("mirror_served_dropped", "the serving pool has no backend: NO_BACKEND, and no copy",
			Overlay(VIP1, VNIMirrorServedOut, "10.13.0.5", "192.168.1.1", tcp(33000, 80))),
		m("mirror_rule_other_vni", "the basic state's cases are unchanged in the mirror state: a VM with no rule",
			base),

		v("vlan_untagged_unchanged", "untagged, to an untagged port: as in the basic state", base),
		v("vlan_tagged_stripped", "tagged VID 100 on port 1 (accepted), served by base on an untagged port: the tag is removed",
			tag(base, VIDAccepted)),
		v("vlan_tagged_rewritten", "tagged VID 100 with PCP 5 and DEI, to the gray pool's port 3: VID 300, PCP and DEI kept",
			tag(gray, 0xb000|VIDAccepted)),
		v("vlan_untagged_pushed", "untagged, to the gray pool's port 3: a tag VID 300 (PCP 0) is pushed",
			gray),
		v("vlan_tagged_plain_tcp", "plain TCP, tagged: the TCP checksum is updated behind the tag, which is removed",
			tag(PlainTo(VIP1, tcp(44321, 443)), VIDAccepted)),
		v("vlan_tagged_split", "the split hashes the same fields tagged or not",
			tag(Overlay(VIP1, VNISplit, splitVM(true), "192.168.1.1", tcp(1234, 80)), VIDAccepted)),
		v("vlan_mirror_copy_tagged", "a mirrored VPC, tagged: served untagged on base's port, the copy tagged VID 300 on gray's",
			tag(Overlay(VIP1, VNIMirrorAll, "10.10.0.5", "192.168.1.1", tcp(33000, 80)), 0x6000|VIDAccepted)),
		v("vlan_mirror_copy_pushed", "a mirrored VPC, untagged: served untagged on base's port, the copy gets a tag (PCP 0) on gray's",
			Overlay(VIP1, VNIMirrorAll, "10.10.0.6", "192.168.1.1", tcp(33000, 80))),
		v("vlan_mirror_copy_untagged", "served by gray (tagged VID 300, PCP kept), the copy to base's untagged port loses the tag",
			tag(Overlay(VIP1, VNIVLANMirrorBack, "10.14.0.5", "192.168.1.1", tcp(33000, 80)), 0x4000|VIDAccepted)),
		v("vlan_mirror_copy_retagged", "served by gray and copied to another pool on the same tagged port: both VID 300, PCP kept",
			tag(Overlay(VIP1, VNIVLANMirrorGray2, "10.15.0.5", "192.168.1.1", udp(5353, 53)), 0xe000|VIDAccepted)),
		v("drop_vlan_not_accepted", "VID 101 is not accepted on port 1: VLAN_NOT_ACCEPTED",
			tag(base, VIDAccepted+1)),
		v("drop_vlan_priority_tag", "a priority tag (VID 0) is a tag like any other: not accepted on port 1",
			tag(base, 0x2000)),
		{Name: "drop_vlan_other_port", Description: "VID 100 is accepted on port 1 only: on port 2 it is VLAN_NOT_ACCEPTED",
			State: StateVLAN, InPort: 2, Packet: hex.EncodeToString(tag(base, VIDAccepted))},
		v("drop_vlan_not_accepted_before_ttl", "an unaccepted tag is reported before the rest of the parse (TTL 1)",
			tag(set(base, 14+8, 1), VIDAccepted+1)),
		v("drop_vlan_tagged_ttl_expired", "accepted, TTL 1: TTL_EXPIRED as untagged",
			tag(set(base, 14+8, 1), VIDAccepted)),
		v("pass_vlan_not_vip", "tagged, to an address that is not a VIP: not for us, whatever the VID",
			tag(Overlay(NotAVIP, VNIMixed, "10.0.0.7", "192.168.1.1", tcp(33000, 80)), 7)),
		v("pass_vlan_arp", "tagged ARP is not for us", tag(arp(), VIDAccepted)),
		v("pass_vlan_qinq", "QinQ (an 802.1ad S-tag first) is not parsed: NOT_IPV4",
			append(append(append([]byte{}, base[:12]...), 0x88, 0xa8, 0x00, 0x05), tag(base, VIDAccepted)[12:]...)),
		v("pass_vlan_double_tag", "two 802.1Q tags: not parsed, NOT_IPV4", tag(tag(base, VIDAccepted), VIDAccepted)),
		v("drop_vlan_tag_truncated", "a frame cut inside its tag: ETH_TRUNCATED", tag(base, VIDAccepted)[:16]),
		v("drop_vlan_ipv4_truncated", "tag, then 19 bytes of IPv4", tag(base, VIDAccepted)[:18+19]),
	}
}

func arp() []byte {
	b := make([]byte, 42)
	copy(b, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(b[6:], ClientMAC[:])
	b[12], b[13] = 0x08, 0x06
	return b
}

// innerFragment marks the inner IPv4 of an overlay frame as a non-first fragment
// and fixes its checksum.
func innerFragment(frame []byte) []byte {
	off := 14 + 20 + 8 + 8 + 14
	frame = set(frame, off+6, 0x00, 0x03)
	frame[off+10], frame[off+11] = 0, 0
	binary.BigEndian.PutUint16(frame[off+10:], testpkt.Checksum(frame[off:off+20]))
	return frame
}

// Generate builds the whole vectors file, computing expectations with the model.
func Generate() (*File, error) {
	f := &File{
		Comment: "graygw pipeline test vectors (docs/pipeline.md). Generated by `make vectors` from testvectors/cases.go; expectations computed by the Go reference model. backend_select fill: bucket b -> fill[b % len(fill)].",
		Buckets: pipeline.Buckets,
		States:  map[string]State{"basic": BasicState(), "mirror": MirrorState(), StateVLAN: VLANState()},
	}
	return f, expect(f, inputs())
}
