// Package difftest draws random table states and random frames for the
// differential test that runs them through every implementation of the
// pipeline (docs/pipeline.md) and requires the same result from each: the
// reference model, the XDP program behind the agent and the v1model program on
// BMv2 (difftest_linux_test.go; docs/testing.md says how to run and reproduce
// it). What is here needs no root: the generator, and the counters a batch of
// frames should move.
package difftest

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// Ports is the number of gateway ports the states use (0..Ports-1); the test
// wires every one of them to an interface on both targets.
const Ports = 4

// MinFrame is the shortest frame the test sends: a veth carries nothing
// shorter than an Ethernet header (AF_PACKET pads or refuses it), so
// ETH_TRUNCATED is left to the model's and the XDP program's own tests.
const MinFrame = 14

// MaxFrame is the longest frame the test sends: a 1500-byte MTU.
const MaxFrame = 1514

// MinLen is the length of the shortest prefix of frame that a veth delivers
// to AF_PACKET and libpcap as it is: an Ethernet header, and for an 802.1Q or
// 802.1ad frame 6 bytes more. The receiving kernel strips the tag before any
// tap sees the frame (taps get it back as metadata) and drops a frame too
// short for skb_vlan_untag (tag and the next ethertype).
func MinLen(frame []byte) int {
	if len(frame) >= MinFrame {
		if et := binary.BigEndian.Uint16(frame[12:]); et == 0x8100 || et == 0x88a8 {
			return MinFrame + 6
		}
	}
	return MinFrame
}

// Gen draws table states and frames from small sets of values, so that VIPs,
// gray rules and buckets really match the frames. The same seed draws the
// same states and frames.
type Gen struct {
	// IPv6 makes State draw the IPv6 tables (vip_v6, gray_rules_v6, backends
	// with an IPv6 underlay) and Frame IPv6 frames, outer and inner (issue
	// 19). Off, no frame carries an IPv6 header: a target that does not
	// implement IPv6 yet must pass. Set it before the first draw.
	IPv6 bool

	rng   *rand.Rand
	vips  []netip.Addr
	vnis  []uint32
	srcs  []uint32
	dsts  []uint32
	ports []uint16
	vips6 []netip.Addr
	srcs6 [][16]byte
	dsts6 [][16]byte
}

// The addresses frames come from and go to.
var (
	clientMAC  = testpkt.MAC("02:00:00:00:00:aa")
	gatewayMAC = testpkt.MAC("02:00:00:00:00:01")
	vmMAC      = testpkt.MAC("02:00:00:00:10:01")
	routerMAC  = testpkt.MAC("02:00:00:00:10:fe")
	clientVTEP = netip.MustParseAddr("10.1.0.10")
)

// poolIDs are the pool ids states draw from: small ones, ones past the XDP
// program's 64 pool slots, and the controller's slot-1 versions (B+32768).
var poolIDs = []uint16{0, 1, 2, 5, 63, 64, 65, 1000, 4095, 32767, 32768, 32769, 40000, 65534, 65535}

// noBucketsPool is named by some rules and never given buckets.
const noBucketsPool = 70

// mirrorIDs are the mirror ids mirror rules draw from: two rules may share
// one, and the last cell of mirror_counter is among them.
var mirrorIDs = []uint16{0, 1, 2, pipeline.MirrorIDs - 1}

// NewGen returns a generator seeded with seed.
func NewGen(seed uint64) *Gen {
	a4 := func(ss ...string) []uint32 {
		out := make([]uint32, len(ss))
		for i, s := range ss {
			out[i] = ip32(netip.MustParseAddr(s))
		}
		return out
	}
	a6 := func(ss ...string) [][16]byte {
		out := make([][16]byte, len(ss))
		for i, s := range ss {
			out[i] = netip.MustParseAddr(s).As16()
		}
		return out
	}
	return &Gen{
		rng: rand.New(rand.NewPCG(seed, 0x64696666)),
		vips6: []netip.Addr{netip.MustParseAddr("2001:db8:ff::1"), netip.MustParseAddr("2001:db8:ff::2"),
			netip.MustParseAddr("2001:db8:ff::3"), netip.MustParseAddr("2001:db8:ff::99")},
		srcs6: a6("2001:db8::5", "2001:db8::6", "2001:db8:1::5", "fe80::1", "2001:db8:c::7"),
		dsts6: a6("2001:db8:1::1", "2001:db8:1::2", "2001:db8:99::4", "2001:4860::8888", "2001:db8:ff::1"),
		vips: []netip.Addr{netip.MustParseAddr("10.255.0.1"), netip.MustParseAddr("10.255.0.2"),
			netip.MustParseAddr("10.255.0.3"), netip.MustParseAddr("10.255.0.99")},
		vnis:  []uint32{0, 1, 5001, 5002, 5009, 0xabcdef, pipeline.MaxVNI},
		srcs:  a4("10.0.0.5", "10.0.0.6", "10.0.1.5", "192.168.1.1", "198.51.100.7"),
		dsts:  a4("192.168.1.1", "192.168.1.2", "172.16.3.4", "8.8.8.8", "10.255.0.1"),
		ports: []uint16{0, 22, 53, 80, 443, 4789, 40000},
	}
}

func (g *Gen) pick(n int) int { return g.rng.IntN(n) }

func ip32(a netip.Addr) uint32 { b := a.As4(); return binary.BigEndian.Uint32(b[:]) }

func addr(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// mask32 is all ones, zero, a random prefix or, now and then, random bits
// (ternary matches and hash masks need not be prefixes).
func (g *Gen) mask32() uint32 {
	switch g.pick(7) {
	case 0, 1:
		return 0xffffffff
	case 2, 3:
		return 0
	case 4:
		return g.rng.Uint32()
	}
	return ^uint32(0) << (32 - (1 + g.pick(31)))
}

// drawRuleMask draws a gray rule's masks as an intent's rules have them:
// each field, in the key's order, set one time in three, the VIP id's mask
// from vipMasks and the addresses' from addr.
func drawRuleMask[A any](g *Gen, vipMasks []uint16, addr func() A) (vipMask uint16, m pipeline.FlowOf[A]) {
	some := func() bool { return g.pick(3) == 0 }
	if some() {
		vipMask = vipMasks[g.pick(len(vipMasks))]
	}
	if some() {
		m.VNI = [...]uint32{pipeline.MaxVNI, 0xff0000}[g.pick(2)]
	}
	if some() {
		m.Tenant = 0xffff
	}
	if some() {
		m.Src = addr()
	}
	if some() {
		m.Dst = addr()
	}
	if some() {
		m.Proto = 0xff
	}
	if some() {
		m.SPort = g.mask16()
	}
	if some() {
		m.DPort = g.mask16()
	}
	return vipMask, m
}

// drawRules draws up to n gray rules over 1-4 masks (newMask draws one), as
// an intent's rules are, with distinct priorities, since two matching rules
// of equal priority are a controller error. draw fills in rule r, a copy of
// one of the masks, given its priority and the rules drawn so far. A
// rule whose identity (id: model.RuleID, RuleIDV6) was drawn before is left
// out, as P4Runtime would refuse it.
func drawRules[R comparable](g *Gen, n int, newMask func() R, id func(R) R, draw func(r *R, prio int32, drawn []R)) []R {
	var masks []R
	for range 1 + g.pick(4) {
		masks = append(masks, newMask())
	}
	prios := g.rng.Perm(1000)
	seen := map[R]bool{}
	var rules []R
	for i := range g.pick(n) {
		r := masks[g.pick(len(masks))]
		draw(&r, int32(1+prios[i]), rules)
		if k := id(r); !seen[k] {
			seen[k] = true
			rules = append(rules, r)
		}
	}
	return rules
}

// drawFlow draws a rule's flow key: a VNI, tenant, addresses from srcs and
// dsts, a protocol of protos and ports of the generator's.
func drawFlow[A any](g *Gen, srcs, dsts []A, protos [3]uint8) pipeline.FlowOf[A] {
	return pipeline.FlowOf[A]{VNI: g.vnis[g.pick(len(g.vnis))], Tenant: uint16(g.pick(4)),
		Src: srcs[g.pick(len(srcs))], Dst: dsts[g.pick(len(dsts))],
		Proto: protos[g.pick(3)], SPort: g.ports[g.pick(len(g.ports))], DPort: g.ports[g.pick(len(g.ports))]}
}

func (g *Gen) mask16() uint16 {
	return [...]uint16{0xffff, 0, 0xff00, 0xfff0, 0xffff, 0, uint16(g.rng.Uint32())}[g.pick(7)]
}

// State draws every table but backend_select, which Fill adds once the frames
// are known (a full ring is 4096 entries a pool: too many to write per state).
// The pools that may own buckets are returned.
func (g *Gen) State() (*model.State, []uint16) {
	s := model.NewState()
	const nPools = 6
	var pools [nPools]uint16
	for i, j := range g.rng.Perm(len(poolIDs))[:nPools] {
		pools[i] = poolIDs[j]
	}
	pool := func() uint16 { return pools[g.pick(nPools)] }
	// VIP 1 always, then some of the others; 10.255.0.99 is one in a few
	// states. Their ids are distinct, drawn from 0..4 and 65535.
	ids := []uint16{0, 1, 2, 3, 4, 65535}
	g.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for i, a := range g.vips {
		if i == 0 || g.pick(2) == 0 {
			s.VIPs[ip32(a)] = model.VIP{ID: ids[i], DefaultPool: pool()}
		}
	}
	var vipIDs []uint16
	for _, v := range s.VIPs {
		vipIDs = append(vipIDs, v.ID)
	}
	slices.Sort(vipIDs)
	for _, v := range g.vnis {
		if g.pick(3) > 0 {
			s.Tenants[v] = uint16(g.pick(4))
		}
	}
	newMask := func() model.GrayRule {
		vipMask, m := drawRuleMask(g, []uint16{0xffff, 0xffff, 0x00ff, 0xfffe}, g.mask32)
		return model.GrayRule{VIPMask: vipMask, Mask: pipeline.FlowKey(m)}
	}
	s.GrayRules = append(s.GrayRules, drawRules(g, 30, newMask, model.RuleID, func(r *model.GrayRule, prio int32, drawn []model.GrayRule) {
		r.Priority = prio
		r.VIPID = vipIDs[g.pick(len(vipIDs))]
		if g.pick(5) == 0 {
			r.VIPID = uint16(g.pick(6)) // maybe no VIP's
		}
		r.Match = pipeline.FlowKey(drawFlow(g, g.srcs, g.dsts, [3]uint8{6, 17, 1}))
		if n := len(drawn); n > 0 && g.pick(2) == 0 {
			// Overlap the previous rule: same value, same or another mask.
			prev := drawn[n-1]
			r.VIPID, r.Match = prev.VIPID, prev.Match
			if g.pick(2) == 0 {
				r.VIPMask, r.Mask = prev.VIPMask, prev.Mask
			}
		}
		// P4Runtime keys ternary entries by their masked value.
		r.VIPID &= r.VIPMask
		r.Match = r.Match.And(r.Mask)
		r.Action, r.Pool = model.SetPool, pool()
		switch g.pick(4) {
		case 0:
			r.Action, r.Threshold = model.SplitPool, g.threshold()
		case 1: // a mirror (docs/pipeline.md §10), maybe to the serving pool
			r.Action, r.MirrorPool, r.Sample = model.SetPoolMirror, pool(), g.threshold()
			if g.pick(2) == 0 {
				r.Sample = pipeline.SampleAll // what graygw mirror writes without --rate
			}
			r.MirrorID = mirrorIDs[g.pick(len(mirrorIDs))]
			if g.pick(10) == 0 {
				r.MirrorPool = noBucketsPool
			}
		}
		if g.pick(10) == 0 {
			r.Pool = noBucketsPool
		}
	})...)
	for _, p := range pools {
		if g.pick(2) == 0 {
			m := pipeline.FlowKey{VNI: [...]uint32{0, pipeline.MaxVNI, 0x00ffff}[g.pick(3)], Tenant: g.mask16(),
				Src: g.mask32(), Dst: g.mask32(), Proto: [...]uint8{0, 0xff, 0x0f}[g.pick(3)], SPort: g.mask16(), DPort: g.mask16()}
			if g.pick(3) == 0 { // every field whole or left out: XDP keeps such a mask in pool_slot's word
				whole := func(v, full uint32) uint32 { return v >> 31 * full }
				m = pipeline.FlowKey{VNI: m.VNI & 1 * pipeline.MaxVNI, Tenant: uint16(whole(uint32(m.Tenant)<<16, 0xffff)),
					Src: whole(m.Src, 0xffffffff), Dst: whole(m.Dst, 0xffffffff), Proto: m.Proto & 0x80 >> 7 * 0xff,
					SPort: uint16(whole(uint32(m.SPort)<<16, 0xffff)), DPort: uint16(whole(uint32(m.DPort)<<16, 0xffff))}
			}
			s.PoolHash[p] = m
		}
	}
	var owners []uint16
	for _, p := range pools {
		if g.pick(5) > 0 {
			owners = append(owners, p)
		}
	}
	// Backends 10i..10i+2 for pool index i; 10i+3 is named by buckets but
	// missing (NO_BACKEND at the backend table).
	for i := range uint16(nPools) {
		for j := range uint16(3) {
			s.Backends[10*i+j] = model.Backend{Port: uint16(g.pick(Ports)),
				SMAC: [6]byte{2, 0, 0, 0, 1, byte(g.pick(Ports))}, DMAC: [6]byte{2, 0, 0, 0xbe, byte(i), byte(j)},
				UnderlayIP: ip32(netip.MustParseAddr("10.2.0.1")) + uint32(10*i+j)}
		}
	}
	if g.IPv6 {
		g.state6(s, pools[:])
	}
	// 802.1Q: some ports accept some VIDs, some send tagged.
	for port := range uint16(Ports) {
		for _, vid := range vids {
			if g.pick(3) == 0 {
				s.VLANAccept[model.PortVID{Port: port, VID: vid}] = true
			}
		}
		if g.pick(2) == 0 {
			s.PortVLAN[port] = vids[1+g.pick(len(vids)-1)]
		}
	}
	return s, owners
}

// vids are the VIDs states accept and send, and frames carry (with 101,
// never accepted): 0 is a priority tag, 4094 the largest.
var vids = []uint16{0, 1, 100, 300, 4094}

// threshold draws a split_pool threshold or a set_pool_mirror sample: random,
// an extreme, or the split hash of a VM the frames use, give or take one (the
// comparison's edge).
func (g *Gen) threshold() uint16 {
	switch g.pick(3) {
	case 0:
		return [...]uint16{0, 1, 0x8000, 0xfffe, 0xffff}[g.pick(5)]
	case 1:
		h := pipeline.SplitHash(g.vnis[g.pick(len(g.vnis))], g.srcs[g.pick(len(g.srcs))])
		return h + uint16(g.pick(3)) - 1
	}
	return uint16(g.rng.Uint32())
}

// Fill adds backend_select entries to s: for each frame (or mirror copy) that
// reaches the bucket lookup of a pool in owners, that bucket (one in eight
// left empty, one in 32 for a copy), plus a few random buckets per owner, each naming backend
// 10i+0..3 where i is the owner's index in owners (10i+3 does not exist).
func (g *Gen) Fill(s *model.State, owners []uint16, frames [][]byte) {
	backendFor := func(p uint16, outer6 bool) uint16 {
		base := uint16(0)
		for i, q := range owners {
			if q == p {
				base = uint16(10 * (i % 6))
			}
		}
		// With IPv6, backends 10i+4..10i+6 have an IPv6 underlay (10i+7
		// is missing): mostly the frame's family, now and then the other
		// (BACKEND_FAMILY).
		if g.IPv6 && outer6 != (g.pick(10) == 0) {
			base += 4
		}
		return base + uint16(g.pick(4))
	}
	for _, p := range owners {
		for range 16 {
			s.BackendSelect[model.SelectKey{Pool: p, Bucket: uint16(g.pick(pipeline.Buckets))}] = backendFor(p, g.IPv6 && g.pick(2) == 0)
		}
	}
	fill := func(pool, bucket uint16, empty int, outer6 bool) {
		if !slices.Contains(owners, pool) || g.pick(empty) == 0 {
			return
		}
		k := model.SelectKey{Pool: pool, Bucket: bucket}
		if _, ok := s.BackendSelect[k]; !ok {
			s.BackendSelect[k] = backendFor(pool, outer6)
		}
	}
	for _, f := range frames {
		r := model.Process(s, f)
		outer6 := model.Parse(f).Outer6
		if r.Reason == pipeline.NoBackend {
			fill(r.Pool, r.Bucket, 8, outer6)
			r = model.Process(s, f) // served now: maybe a copy
		}
		if c := r.Copy; c != nil && !c.Sent {
			fill(c.Pool, c.Bucket, 32, outer6) // copies are rarer: leave fewer without
		}
	}
}

// Sharpen moves the L4 checksum of some frames that s forwards as plain TCP
// or UDP (IPv6: ICMPv6 and VXLAN's outer UDP too) onto the edges of the
// incremental update (docs/pipeline.md §8): a
// received 0x0000 or 0xffff (TCP), or the value whose update comes out 0x0000
// (sent as 0xffff for UDP) or 0xffff. Call it after Fill: it needs the
// backend. The checksum is not in the hash key, so the decision stays.
func (g *Gen) Sharpen(s *model.State, frames [][]byte) {
	for _, f := range frames {
		r := model.Process(s, f)
		if r.Verdict != model.Forward || g.pick(3) > 0 {
			continue
		}
		p := model.Parse(f)
		if p.Outer6 {
			g.sharpen6(s, f, p, r)
			continue
		}
		var off int
		switch {
		case p.Overlay || p.Tagged: // the offsets below are an untagged frame's
			continue
		case f[14+9] == testpkt.ProtoTCP:
			off = 14 + 20 + 16
		case f[14+9] == testpkt.ProtoUDP && binary.BigEndian.Uint16(f[14+20+6:]) != 0:
			off = 14 + 20 + 6
		default:
			continue
		}
		target := [...]uint16{0x0000, 0xffff, 0x0000, 0xffff}[g.pick(4)]
		if g.pick(2) == 0 && f[14+9] == testpkt.ProtoTCP { // received as is
			binary.BigEndian.PutUint16(f[off:], target)
			continue
		}
		nu := s.Backends[r.BackendID].UnderlayIP
		for c := range 1 << 16 {
			if model.UpdateChecksum32(uint16(c), p.OuterDst, nu) == target {
				binary.BigEndian.PutUint16(f[off:], uint16(c))
				break
			}
		}
	}
}

func (g *Gen) l4() testpkt.L4 {
	payload := make([]byte, g.pick(48))
	if g.pick(20) == 0 { // up to a full 1500-byte MTU
		payload = make([]byte, g.pick(1400))
	}
	for i := range payload {
		payload[i] = byte(g.rng.Uint32())
	}
	proto := [...]uint8{testpkt.ProtoTCP, testpkt.ProtoUDP, testpkt.ProtoICMP, 47}[g.pick(4)]
	return testpkt.L4{Proto: proto, SPort: g.ports[g.pick(len(g.ports))], DPort: g.ports[g.pick(len(g.ports))], Payload: payload}
}

// Frame draws a frame for state s: overlay or plain, to a VIP of s or not,
// aimed at a gray rule or not, then maybe broken (truncated, a parsed field
// changed, bits flipped, padded). It is never shorter than MinFrame.
func (g *Gen) Frame(s *model.State) []byte {
	vip := g.vips[g.pick(len(g.vips))]
	if g.pick(4) > 0 {
		vip = g.vips[0] // always a VIP
	}
	eth := testpkt.Eth{Dst: gatewayMAC, Src: clientMAC}
	var b []byte
	cuts, fields := cuts4, fields4
	switch k := g.pick(12); {
	case g.IPv6 && g.pick(3) == 0:
		b = g.frame6(s, eth)
		cuts, fields = cuts6, fields6
	case k < 3 && len(s.GrayRules) > 0: // aimed at a rule's values
		r := s.GrayRules[g.pick(len(s.GrayRules))]
		for a, v := range s.VIPs {
			if v.ID == r.VIPID {
				vip = addr(a)
			}
		}
		l4 := g.l4()
		l4.Proto, l4.SPort, l4.DPort = r.Match.Proto, r.Match.SPort, r.Match.DPort
		b = g.overlay(eth, vip, r.Match.VNI, r.Match.Src, r.Match.Dst, l4)
	case k < 8:
		b = g.overlay(eth, vip, g.vnis[g.pick(len(g.vnis))], g.srcs[g.pick(len(g.srcs))], g.dsts[g.pick(len(g.dsts))], g.l4())
	case k < 11:
		l4 := g.l4()
		if l4.Proto == testpkt.ProtoUDP && g.pick(4) == 0 {
			l4.DPort = 9999
		}
		b = testpkt.Plain(eth, testpkt.IP{Src: addr(g.srcs[g.pick(len(g.srcs))]), Dst: vip, TTL: uint8(g.pick(4))}, l4)
		if l4.Proto == testpkt.ProtoUDP && g.pick(4) == 0 {
			b[14+20+6], b[14+20+7] = 0, 0 // UDP without a checksum
		}
	case g.pick(2) == 0: // IPv4 to the VIP, noise from some offset on but its address
		b = testpkt.Plain(eth, testpkt.IP{Src: addr(g.srcs[0]), Dst: vip}, g.l4())
		for i := 14 + g.pick(len(b)-14); i < len(b); i++ {
			if i < 30 || i >= 34 {
				b[i] = byte(g.rng.Uint32())
			}
		}
	default: // not IPv4: ARP, IPv6, QinQ (802.1ad), VLAN-tagged IPv4 (parsed)
		b = testpkt.Plain(eth, testpkt.IP{Src: addr(g.srcs[0]), Dst: vip}, g.l4())
		et := [...]uint16{0x0806, 0x86dd, 0x8100, 0x88a8}[g.pick(4)]
		if et == 0x8100 || et == 0x88a8 {
			b = slices.Insert(b, 12, byte(et>>8), byte(et), 0x00, byte(g.pick(16)))
		} else {
			binary.BigEndian.PutUint16(b[12:], et)
		}
	}
	if g.pick(4) == 0 { // an 802.1Q tag: a VID of the states or 101, any PCP and DEI
		vid := uint16(101)
		if g.pick(4) > 0 {
			vid = vids[g.pick(len(vids))]
		}
		b = testpkt.Tag(b, uint16(g.pick(16))<<12|vid)
	}
	switch g.pick(10) {
	case 0: // truncated, often at or near a header boundary
		n := g.pick(len(b) + 1)
		if g.pick(2) == 0 {
			n = cuts[g.pick(len(cuts))] + g.pick(3) - 1
		}
		b = b[:min(max(n, MinLen(b)), len(b))]
	case 1, 2: // bits flipped in the headers
		for range 1 + g.pick(3) {
			i := g.pick(min(len(b), 92))
			b[i] ^= 1 << g.pick(8)
		}
	case 3: // a field the parser reads, set at random
		off := fields[g.pick(len(fields))]
		if off < len(b) {
			b[off] = byte(g.rng.Uint32())
		}
	case 4: // Ethernet padding after the IP packet
		b = append(b, make([]byte, 1+g.pick(30))...)
		b = b[:min(len(b), MaxFrame)]
	}
	if !g.IPv6 {
		hideIPv6(b)
	}
	return b
}

// Where Frame cuts frames (give or take a byte) and which bytes it sets at
// random: the header boundaries and parsed fields of an IPv4 frame, and of
// an IPv6 one (outer IPv6 40 bytes; IPv6 VXLAN's inner header at 14+40+16+14).
var (
	cuts4   = []int{14, 20, 33, 34, 41, 42, 49, 50, 53, 54, 57, 63, 64, 67, 68, 83, 84, 85, 87, 88}
	fields4 = []int{12, 13, 14, 14 + 6, 14 + 7, 14 + 8, 14 + 9, 14 + 20 + 2, 14 + 20 + 3, 14 + 20 + 8,
		14 + 20 + 8 + 8 + 12, 14 + 20 + 8 + 8 + 14, 14 + 20 + 8 + 8 + 14 + 6, 14 + 20 + 8 + 8 + 14 + 9}
	cuts6 = []int{14, 53, 54, 57, 58, 61, 62, 69, 70, 73, 74, 83, 84, 87, 88, 103, 104, 107, 108,
		123, 124, 127, 128, 131, 132, 135, 136}
	fields6 = []int{12, 13, 14, 14 + 6, 14 + 7, 14 + 40 + 2, 14 + 40 + 3, 14 + 40 + 6, 14 + 40 + 8,
		14 + 40 + 16 + 12, 14 + 40 + 16 + 13, 14 + 40 + 16 + 14, 14 + 40 + 16 + 14 + 6,
		14 + 20 + 8 + 8 + 14, 14 + 20 + 8 + 8 + 14 + 6, 14 + 40 + 16 + 14 + 40}
)

// hideIPv6 turns the IPv6 ethertype of frame, outer (after a tag) or inner
// (IPv4 VXLAN), into 0x86de (neither IPv4 nor IPv6), so that noise never
// makes an IPv6 frame while the generator's IPv6 is off.
func hideIPv6(b []byte) {
	off := 12
	if len(b) >= 18 && binary.BigEndian.Uint16(b[12:]) == pipeline.EtherVLAN {
		off = 16
	}
	if len(b) >= off+2 && binary.BigEndian.Uint16(b[off:]) == 0x86dd {
		b[off+1] = 0xde
	}
	if p := model.Parse(b); p.Overlay {
		inner := off + 2 + 20 + 8 + 8 + 12
		if len(b) >= inner+2 && binary.BigEndian.Uint16(b[inner:]) == 0x86dd {
			b[inner+1] = 0xde
		}
	}
}

// Ingress draws the port a frame enters.
func (g *Gen) Ingress() int { return g.pick(Ports) }

// overlay is a VXLAN frame to vip carrying an inner IPv4 packet.
func (g *Gen) overlay(eth testpkt.Eth, vip netip.Addr, vni, src, dst uint32, l4 testpkt.L4) []byte {
	ip := testpkt.IP{Src: addr(src), Dst: addr(dst)}
	if g.pick(10) == 0 {
		ip.Flags = [...]uint16{0x2000, 0x0010, 0x4000}[g.pick(3)] // MF, an offset, DF
	}
	inner := testpkt.Inner(testpkt.Eth{Dst: routerMAC, Src: vmMAC}, ip, l4)
	outer := testpkt.IP{Src: clientVTEP, Dst: vip, TTL: [...]uint8{0, 0, 0, 1, 2, 255}[g.pick(6)]}
	b := testpkt.VXLAN(eth, outer, 49152+uint16(g.pick(16384)), vni, inner)
	if g.pick(2) == 0 { // a sender that fills the optional outer UDP checksum
		binary.BigEndian.PutUint16(b[14+20+6:], uint16(g.rng.Uint32()))
	}
	return b
}
