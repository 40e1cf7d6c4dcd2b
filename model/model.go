package model

import (
	"encoding/binary"

	"github.com/graygw/graygw/pipeline"
)

// Verdict is what happens to a packet.
type Verdict uint8

// Verdicts.
const (
	Forward Verdict = iota
	Drop
	NotForUs // XDP_PASS on Linux, dropped by the P4 programs
)

func (v Verdict) String() string {
	return [...]string{"forward", "drop", "pass"}[v]
}

// Result is the decision for one packet, with the trace of how it was reached.
type Result struct {
	Verdict Verdict
	Reason  pipeline.Reason
	Port    uint16 // Forward only
	Frame   []byte // Forward only: the rewritten frame (a copy)

	VIPHit bool
	VIP    VIP
	// Flow is the flow with Tenant filled in, unmasked. For an IPv6 flow
	// (IPv6 true) Flow6 holds it, and Flow its VNI, tenant, proto and ports
	// with zero addresses.
	Flow  pipeline.FlowKey
	IPv6  bool
	Flow6 pipeline.FlowKey6
	// Rule is the index of the winning gray_rules entry of an IPv4 flow,
	// RuleV6 of the winning gray_rules_v6 entry of an IPv6 flow; -1 for none.
	Rule      int
	RuleV6    int
	Pool      uint16
	SplitHash uint16            // split_pool and a mirroring set_pool_mirror only
	HashKey   pipeline.FlowKey  // masked; IPv4 flows
	HashKey6  pipeline.FlowKey6 // masked; IPv6 flows
	CRC       uint32
	Bucket    uint16
	BackendID uint16

	// Copy is the mirror copy (docs/pipeline.md §10), nil when the frame is not
	// mirrored (no set_pool_mirror rule, a VM not sampled, an IPv6 outer
	// header, or a served frame not forwarded).
	Copy *Copy
}

// Copy is a mirror copy: the received frame run through steps 5-8 for the
// mirror pool and marked. Sent is false when the mirror pool has no backend
// for it, or a backend entry of the other family (the copy was made, counted
// in mirror_counter, and dropped). Only IPv4 flows in IPv4 outer frames are
// mirrored.
type Copy struct {
	MirrorID  uint16
	Pool      uint16
	HashKey   pipeline.FlowKey
	CRC       uint32
	Bucket    uint16
	BackendID uint16
	Sent      bool
	// BackendFamily: the backend entry the copy reached is to_backend_v6 (a
	// controller error, as BACKEND_FAMILY for a served frame): the entry was
	// hit (backend_counter counts it) but the copy is not sent.
	BackendFamily bool
	Port          uint16 // Sent only
	Frame         []byte // Sent only
}

// Process runs frame, received on port 0, through the pipeline over s
// (ProcessPort).
func Process(s *State, frame []byte) Result { return ProcessPort(s, 0, frame) }

// ProcessPort runs frame, received on port inPort, through the pipeline over s.
// The frame is not modified.
func ProcessPort(s *State, inPort uint16, frame []byte) Result {
	r := Result{Rule: -1, RuleV6: -1}
	p := Parse(frame)
	switch p.Reason {
	case pipeline.EthTruncated, pipeline.IPv4Truncated, pipeline.IPv6Truncated:
		return r.drop(p.Reason)
	case pipeline.NotIPv4:
		r.Verdict, r.Reason = NotForUs, p.Reason
		return r
	}
	var vip VIP
	var ok bool
	if p.Outer6 {
		vip, ok = s.VIPsV6[p.OuterDst6]
	} else {
		vip, ok = s.VIPs[p.OuterDst]
	}
	if !ok {
		r.Verdict, r.Reason = NotForUs, pipeline.NotVIP
		return r
	}
	r.VIPHit, r.VIP = true, vip
	if p.Tagged && !s.VLANAccept[PortVID{inPort, p.VID()}] {
		return r.drop(pipeline.VLANNotAccepted)
	}
	if p.Reason != pipeline.None {
		return r.drop(p.Reason)
	}
	if p.TTL <= 1 {
		return r.drop(pipeline.TTLExpired)
	}

	r.Flow, r.IPv6, r.Flow6 = p.Flow, p.IPv6, p.Flow6
	r.Flow.Tenant = s.Tenants[p.Flow.VNI] // miss: tenant 0
	r.Flow6.Tenant = r.Flow.Tenant
	r.Pool = vip.DefaultPool
	var mirror *GrayRule
	if r.IPv6 {
		r.grayRuleV6(s, vip.ID)
	} else {
		mirror = r.grayRule(s, vip.ID, p.Outer6)
	}

	var be Backend
	if r.IPv6 {
		r.HashKey6, r.CRC, r.Bucket, r.BackendID, be, ok = s.selectBackend6(r.Pool, r.Flow6)
	} else {
		r.HashKey, r.CRC, r.Bucket, r.BackendID, be, ok = s.selectBackend(r.Pool, r.Flow)
	}
	if !ok {
		return r.drop(pipeline.NoBackend)
	}
	if be.IPv6 != p.Outer6 {
		return r.drop(pipeline.BackendFamily) // a controller error: the entry is another family's
	}
	if p.Tagged {
		frame = Untag(frame) // rewritten untagged, tagged for its port last
	}
	r.Verdict, r.Port = Forward, be.Port
	if p.Outer6 {
		r.Frame = s.egressTag(rewrite6(frame, p, be), p, be.Port)
	} else {
		r.Frame = s.egressTag(rewrite(frame, p, be), p, be.Port)
	}
	if mirror != nil && r.SplitHash <= mirror.Sample {
		r.Copy = s.mirror(frame, p, r.Flow, mirror)
	}
	return r
}

// grayRule applies gray_rules to an IPv4 flow (step 4) and returns the
// winning rule when it mirrors. In an IPv6 outer frame (outer6) a
// set_pool_mirror acts as set_pool: no sampling, no copy.
func (r *Result) grayRule(s *State, vipID uint16, outer6 bool) (mirror *GrayRule) {
	i := bestRule(s.GrayRules, func(g *GrayRule) (bool, int32) { return g.Matches(vipID, r.Flow), g.Priority })
	if i < 0 {
		return nil
	}
	r.Rule = i
	rule := &s.GrayRules[i]
	switch rule.Action {
	case SetPool:
		r.Pool = rule.Pool
	case SplitPool:
		r.SplitHash = pipeline.SplitHash(r.Flow.VNI, r.Flow.Src)
		if r.SplitHash < rule.Threshold {
			r.Pool = rule.Pool
		}
	case SetPoolMirror:
		r.Pool = rule.Pool
		if outer6 {
			return nil
		}
		r.SplitHash = pipeline.SplitHash(r.Flow.VNI, r.Flow.Src)
		return rule
	}
	return nil
}

// grayRuleV6 applies gray_rules_v6 to an IPv6 flow (step 4).
func (r *Result) grayRuleV6(s *State, vipID uint16) {
	best := bestRule(s.GrayRulesV6, func(g *GrayRuleV6) (bool, int32) { return g.Matches(vipID, r.Flow6), g.Priority })
	if best < 0 {
		return
	}
	r.RuleV6 = best
	rule := &s.GrayRulesV6[best]
	switch rule.Action {
	case SplitPool:
		r.SplitHash = pipeline.SplitHash6(r.Flow6.VNI, r.Flow6.Src)
		if r.SplitHash < rule.Threshold {
			r.Pool = rule.Pool
		}
	default:
		r.Pool = rule.Pool
	}
}

// selectBackend6 is selectBackend for an IPv6 flow: the pool's masks as
// IPv6 masks (pipeline.FlowKey.Mask6), the 42-byte key6.
func (s *State) selectBackend6(pool uint16, flow pipeline.FlowKey6) (key pipeline.FlowKey6, crc uint32, bucket, id uint16, be Backend, ok bool) {
	mask, found := s.PoolHash[pool]
	if !found {
		mask = pipeline.AllOnes
	}
	key = flow.And(mask.Mask6())
	crc = key.CRC()
	bucket = uint16(crc & (pipeline.Buckets - 1))
	id, be, ok = s.backendAt(pool, bucket)
	return key, crc, bucket, id, be, ok
}

// selectBackend is steps 5-8 for pool: the masked key, its CRC and bucket, and
// the backend (ok false: NO_BACKEND).
func (s *State) selectBackend(pool uint16, flow pipeline.FlowKey) (key pipeline.FlowKey, crc uint32, bucket, id uint16, be Backend, ok bool) {
	mask, found := s.PoolHash[pool]
	if !found {
		mask = pipeline.AllOnes
	}
	key = flow.And(mask)
	crc = key.CRC()
	bucket = uint16(crc & (pipeline.Buckets - 1))
	id, be, ok = s.backendAt(pool, bucket)
	return key, crc, bucket, id, be, ok
}

// backendAt is steps 7-8: the backend of a pool's bucket (ok false:
// NO_BACKEND; id is 0 when the bucket has no entry).
func (s *State) backendAt(pool, bucket uint16) (id uint16, be Backend, ok bool) {
	if id, ok = s.BackendSelect[SelectKey{pool, bucket}]; !ok {
		return 0, be, false
	}
	be, ok = s.Backends[id]
	return id, be, ok
}

// mirror makes the copy of a served frame for rule's mirror pool (§10): the
// received frame, rewritten for the mirror pool's backend and marked.
func (s *State) mirror(frame []byte, p Packet, flow pipeline.FlowKey, rule *GrayRule) *Copy {
	c := &Copy{MirrorID: rule.MirrorID, Pool: rule.MirrorPool}
	var be Backend
	c.HashKey, c.CRC, c.Bucket, c.BackendID, be, c.Sent = s.selectBackend(rule.MirrorPool, flow)
	if c.Sent && be.IPv6 != p.Outer6 {
		c.Sent, c.BackendFamily = false, true
	}
	if !c.Sent {
		return c
	}
	c.Port = be.Port
	c.Frame = rewrite(frame, p, be)
	markMirror(c.Frame)
	c.Frame = s.egressTag(c.Frame, p, be.Port)
	return c
}

// egressTag gives an untagged output frame the tag of its egress port
// (port_vlan, docs/pipeline.md §8): none without an entry; else the port's
// VID, keeping the received tag's PCP and DEI (0 when it had none).
func (s *State) egressTag(out []byte, p Packet, port uint16) []byte {
	vid, ok := s.PortVLAN[port]
	if !ok {
		return out
	}
	tci := vid & 0x0fff
	if p.Tagged {
		tci |= p.TCI & 0xf000
	}
	return tag(out, tci)
}

// markMirror sets the outer DSCP to MirrorDSCP, keeping ECN, and recomputes
// the IPv4 header checksum.
func markMirror(out []byte) {
	ip := out[offIP:]
	ip[1] = pipeline.MirrorDSCP<<2 | ip[1]&3
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ipv4Checksum(ip[:ipv4Len]))
}

func (r Result) drop(reason pipeline.Reason) Result {
	r.Verdict, r.Reason = Drop, reason
	return r
}

// bestRule returns the index of the matching rule with the highest priority
// (the first such rule on a tie), or -1; match says whether a rule matches
// and its priority.
func bestRule[R any](rules []R, match func(*R) (bool, int32)) int {
	best, bestPrio := -1, int32(0)
	for i := range rules {
		if ok, prio := match(&rules[i]); ok && (best < 0 || prio > bestPrio) {
			best, bestPrio = i, prio
		}
	}
	return best
}

// rewrite6 applies to_backend_v6 to a copy of an IPv6 outer frame
// (docs/pipeline.md §8): MACs, outer destination, hop limit - 1 and every L4
// checksum that covers the pseudo-header, updated for the new destination.
func rewrite6(frame []byte, p Packet, be Backend) []byte {
	out := append([]byte(nil), frame...)
	copy(out[0:6], be.DMAC[:])
	copy(out[6:12], be.SMAC[:])
	ip := out[offIP:]
	var oldDst [16]byte
	copy(oldDst[:], ip[24:40])
	copy(ip[24:40], be.UnderlayIPv6[:])
	ip[7]--

	var c []byte
	zeroStays := false // UDP: a zero checksum (none) stays, a zero result is sent as 0xffff
	switch {
	case p.Overlay, ip[6] == protoUDP:
		c, zeroStays = out[offL4v6+6:], true
	case ip[6] == protoTCP:
		c = out[offL4v6+16:]
	case ip[6] == protoICMPv6: // unlike ICMPv4, ICMPv6 covers the pseudo-header
		c = out[offL4v6+2:]
	default:
		return out
	}
	old := binary.BigEndian.Uint16(c)
	if zeroStays && old == 0 {
		return out
	}
	n := UpdateChecksum128(old, oldDst, be.UnderlayIPv6)
	if zeroStays && n == 0 {
		n = 0xffff
	}
	binary.BigEndian.PutUint16(c, n)
	return out
}

// rewrite applies to_backend to a copy of frame (docs/pipeline.md §8).
func rewrite(frame []byte, p Packet, be Backend) []byte {
	out := append([]byte(nil), frame...)
	copy(out[0:6], be.DMAC[:])
	copy(out[6:12], be.SMAC[:])
	ip := out[offIP:]
	oldDst := binary.BigEndian.Uint32(ip[16:])
	binary.BigEndian.PutUint32(ip[16:], be.UnderlayIP)
	ip[8]--
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ipv4Checksum(ip[:ipv4Len]))

	switch {
	case p.Overlay:
		out[offL4+6], out[offL4+7] = 0, 0
	case ip[9] == protoTCP:
		c := out[offL4+16:]
		binary.BigEndian.PutUint16(c, UpdateChecksum32(binary.BigEndian.Uint16(c), oldDst, be.UnderlayIP))
	case ip[9] == protoUDP:
		c := out[offL4+6:]
		if old := binary.BigEndian.Uint16(c); old != 0 {
			n := UpdateChecksum32(old, oldDst, be.UnderlayIP)
			if n == 0 {
				n = 0xffff
			}
			binary.BigEndian.PutUint16(c, n)
		}
	}
	return out
}

func ipv4Checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	return ^fold(sum)
}

func fold(sum uint32) uint16 {
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

// UpdateChecksum32 updates an Internet checksum for a 32-bit field changing from
// old to new: RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), one 16-bit word at a time.
func UpdateChecksum32(hc uint16, old, new uint32) uint16 {
	sum := uint32(^hc) +
		uint32(^uint16(old>>16)) + uint32(^uint16(old)) +
		uint32(uint16(new>>16)) + uint32(uint16(new))
	return ^fold(sum)
}

// UpdateChecksum128 updates an Internet checksum for a 128-bit field (an IPv6
// address) changing from old to new: RFC 1624 eqn. 3 over its eight 16-bit
// words.
func UpdateChecksum128(hc uint16, old, new [16]byte) uint16 {
	sum := uint32(^hc)
	for i := 0; i < 16; i += 2 {
		sum += uint32(^binary.BigEndian.Uint16(old[i:])) + uint32(binary.BigEndian.Uint16(new[i:]))
	}
	return ^fold(sum)
}
