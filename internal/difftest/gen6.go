package difftest

import (
	"net/netip"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// The IPv6 half of the generator (Gen.IPv6; docs/pipeline.md, issue 19).

// vipIDs6 are the IPv6 VIPs' ids: apart from the IPv4 ones (a controller
// gives every VIP its own), but 65535, which both may draw.
var vipIDs6 = []uint16{10, 11, 12, 13}

// state6 draws the IPv6 tables into s over the pools of the IPv4 draw: IPv6
// VIPs, gray_rules_v6 over a few masks, and backends 10i+4..10i+6 with an
// IPv6 underlay beside the IPv4 10i..10i+2 (10i+7 is named by buckets but
// missing).
func (g *Gen) state6(s *model.State, pools []uint16) {
	pool := func() uint16 { return pools[g.pick(len(pools))] }
	var ids []uint16
	for i, a := range g.vips6 {
		if i == 0 || g.pick(2) == 0 {
			s.VIPsV6[a.As16()] = model.VIP{ID: vipIDs6[i], DefaultPool: pool()}
			ids = append(ids, vipIDs6[i])
		}
	}
	newMask := func() model.GrayRuleV6 {
		vipMask, m := drawRuleMask(g, []uint16{0xffff, 0xffff, 0x00ff}, g.mask128)
		return model.GrayRuleV6{VIPMask: vipMask, Mask: pipeline.FlowKey6(m)}
	}
	s.GrayRulesV6 = append(s.GrayRulesV6, drawRules(g, 20, newMask, model.RuleIDV6, func(r *model.GrayRuleV6, prio int32, _ []model.GrayRuleV6) {
		r.Priority = prio
		r.VIPID = ids[g.pick(len(ids))]
		r.Match = pipeline.FlowKey6(drawFlow(g, g.srcs6, g.dsts6, [3]uint8{6, 17, 58}))
		r.VIPID &= r.VIPMask
		r.Match = r.Match.And(r.Mask)
		r.Action, r.Pool = model.SetPool, pool()
		if g.pick(3) == 0 {
			r.Action, r.Threshold = model.SplitPool, g.threshold6()
		}
		if g.pick(10) == 0 {
			r.Pool = noBucketsPool
		}
	})...)
	for i := range uint16(6) {
		for j := range uint16(3) {
			s.Backends[10*i+4+j] = model.Backend{Port: uint16(g.pick(Ports)), IPv6: true,
				SMAC: [6]byte{2, 0, 0, 0, 1, byte(g.pick(Ports))}, DMAC: [6]byte{2, 0, 0, 0xb6, byte(i), byte(j)},
				UnderlayIPv6: [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 2, 14: byte(i), 15: byte(j)}}
		}
	}
}

// mask128 is all ones, zero, a random prefix or random bits.
func (g *Gen) mask128() [16]byte {
	var m [16]byte
	switch g.pick(7) {
	case 0, 1:
		return pipeline.AllOnes6.Src
	case 2, 3:
		return m
	case 4:
		for i := range m {
			m[i] = byte(g.rng.Uint32())
		}
		return m
	}
	n := 1 + g.pick(127)
	for i := range m {
		switch {
		case n >= 8*(i+1):
			m[i] = 0xff
		case n > 8*i:
			m[i] = 0xff << (8 - (n - 8*i))
		}
	}
	return m
}

// threshold6 is threshold with the split hashes of IPv6 VMs.
func (g *Gen) threshold6() uint16 {
	if g.pick(3) == 1 {
		h := pipeline.SplitHash6(g.vnis[g.pick(len(g.vnis))], g.srcs6[g.pick(len(g.srcs6))])
		return h + uint16(g.pick(3)) - 1
	}
	return g.threshold()
}

// l4v6 is l4 with ICMPv6 for ICMP, and now and then ESP (50) or no next
// header (59).
func (g *Gen) l4v6() testpkt.L4 {
	l4 := g.l4short()
	switch l4.Proto {
	case testpkt.ProtoICMP:
		l4.Proto = testpkt.ProtoICMPv6
	case 47:
		l4.Proto = [...]uint8{47, 50, testpkt.ProtoNoNext}[g.pick(3)]
	}
	return l4
}

// frame6 draws a frame with an IPv6 header: IPv6 VXLAN carrying IPv6 or
// IPv4, IPv4 VXLAN carrying IPv6, or plain IPv6; to an IPv6 VIP of s (or
// the IPv4 VIP for IPv6 in IPv4 VXLAN) or not; aimed at a gray_rules_v6
// rule or not; now and then with an extension header, outer or inner.
func (g *Gen) frame6(s *model.State, eth testpkt.Eth) []byte {
	vip := g.vips6[g.pick(len(g.vips6))]
	if g.pick(4) > 0 {
		vip = g.vips6[0]
	}
	vni, src, dst, l4 := g.vnis[g.pick(len(g.vnis))], g.srcs6[g.pick(len(g.srcs6))], g.dsts6[g.pick(len(g.dsts6))], g.l4v6()
	if len(s.GrayRulesV6) > 0 && g.pick(3) == 0 { // aimed at a rule's values
		r := s.GrayRulesV6[g.pick(len(s.GrayRulesV6))]
		for a, v := range s.VIPsV6 {
			if v.ID == r.VIPID {
				vip = netip.AddrFrom16(a)
			}
		}
		vni, src, dst = r.Match.VNI, r.Match.Src, r.Match.Dst
		l4.Proto, l4.SPort, l4.DPort = r.Match.Proto, r.Match.SPort, r.Match.DPort
	}
	in := testpkt.IP6{Src: netip.AddrFrom16(src), Dst: netip.AddrFrom16(dst)}
	switch g.pick(8) {
	case 0: // an inner fragment, first or not
		in.ExtProto, in.Ext = testpkt.ProtoFragment, testpkt.FragmentHeader(l4.Proto, uint16(g.pick(2)*1232), g.pick(2) == 0, 7)
	case 1: // an extension header that is not walked, 8 bytes of it
		in.ExtProto, in.Ext = [...]uint8{0, 43, 51, 60}[g.pick(4)], []byte{l4.Proto, 0, 1, 4, 0, 0, 0, 0}
	}
	inner := testpkt.Inner6(testpkt.Eth{Dst: routerMAC, Src: vmMAC}, in, l4)
	outer := testpkt.IP6{Src: netip.MustParseAddr("2001:db8:f::10"), Dst: vip, HopLimit: [...]uint8{0, 0, 0, 1, 2, 255}[g.pick(6)]}
	if g.pick(16) == 0 { // an outer extension header
		outer.ExtProto, outer.Ext = [...]uint8{0, 43, 44, 51, 60}[g.pick(5)], []byte{testpkt.ProtoUDP, 0, 0, 0, 0, 0, 0, 0}
	}
	sport := 49152 + uint16(g.pick(16384))
	var b []byte
	outer6, inner6 := true, 0 // the inner IPv6 header's offset, 0: none
	switch g.pick(6) {
	case 0, 1: // IPv6 in IPv6 VXLAN
		b = testpkt.VXLAN6(eth, outer, sport, vni, inner)
		inner6 = 14 + 40 + len(outer.Ext) + 8 + 8 + 14
	case 2: // IPv4 in IPv6 VXLAN
		ip := testpkt.IP{Src: addr(g.srcs[g.pick(len(g.srcs))]), Dst: addr(g.dsts[g.pick(len(g.dsts))])}
		b = testpkt.VXLAN6(eth, outer, sport, vni, testpkt.Inner(testpkt.Eth{Dst: routerMAC, Src: vmMAC}, ip, g.l4short()))
	case 3: // IPv6 in IPv4 VXLAN, to an IPv4 VIP
		b = g.overlayInner(eth, g.vips[g.pick(2)], vni, inner)
		outer6, inner6 = false, 14+20+8+8+14
	default: // plain IPv6
		outer.Src = netip.AddrFrom16(src)
		b = testpkt.Plain6(eth, outer, l4)
	}
	if g.pick(4) == 0 && len(b) >= 14+40+8 && b[14+6] == testpkt.ProtoUDP {
		b[14+40+6], b[14+40+7] = 0, 0 // a UDP checksum of 0 (RFC 6935 for VXLAN)
	}
	// A version other than 6, outer or inner: the random breaks of Frame
	// reach the two MALFORMED reasons too seldom for every 3000-frame run
	// to see both (about one run in ten missed the inner one).
	switch g.pick(24) {
	case 0:
		if outer6 {
			b[14] = b[14]&0x0f | g.notSix()<<4
		}
	case 1:
		if inner6 > 0 && len(b) > inner6 {
			b[inner6] = b[inner6]&0x0f | g.notSix()<<4
		}
	}
	return b
}

// notSix draws an IP version nibble other than 6.
func (g *Gen) notSix() byte {
	v := byte(g.pick(15))
	if v >= 6 {
		v++
	}
	return v
}

// overlayInner is an IPv4 VXLAN frame to vip carrying inner, an inner frame
// as built (an IPv6 one, say).
func (g *Gen) overlayInner(eth testpkt.Eth, vip netip.Addr, vni uint32, inner []byte) []byte {
	outer := testpkt.IP{Src: clientVTEP, Dst: vip, TTL: [...]uint8{0, 0, 1, 255}[g.pick(4)]}
	return testpkt.VXLAN(eth, outer, 49152+uint16(g.pick(16384)), vni, inner)
}

// sharpen6 is Sharpen for a frame f with an IPv6 outer header that s
// forwards as r: its L4 checksum (TCP, ICMPv6, UDP when not 0, VXLAN's outer
// UDP included) received as 0x0000 or 0xffff, or set so that its update
// comes out 0x0000 or 0xffff (sent as 0xffff for UDP).
func (g *Gen) sharpen6(s *model.State, f []byte, p model.Packet, r model.Result) {
	const l4 = 14 + 40
	if p.Tagged {
		return // the offsets are an untagged frame's
	}
	var off int
	udp := false
	switch f[14+6] {
	case testpkt.ProtoTCP:
		off = l4 + 16
	case testpkt.ProtoICMPv6:
		off = l4 + 2
	case testpkt.ProtoUDP:
		if f[l4+6] == 0 && f[l4+7] == 0 {
			return // stays 0
		}
		off, udp = l4+6, true
	default:
		return
	}
	target := [...]uint16{0x0000, 0xffff}[g.pick(2)]
	if !udp && g.pick(2) == 0 { // received as is
		f[off], f[off+1] = byte(target>>8), byte(target)
		return
	}
	nu := s.Backends[r.BackendID].UnderlayIPv6
	for c := 1; c < 1<<16; c++ {
		if model.UpdateChecksum128(uint16(c), p.OuterDst6, nu) == target {
			f[off], f[off+1] = byte(c>>8), byte(c)
			return
		}
	}
}

// l4short is l4 with a payload short enough for the longest IPv6 frame
// (IPv6 in IPv6 VXLAN, an 8-byte extension header) to fit MaxFrame.
func (g *Gen) l4short() testpkt.L4 {
	l4 := g.l4()
	l4.Payload = l4.Payload[:min(len(l4.Payload), MaxFrame-14-40-8-8-14-40-8-20)]
	return l4
}
