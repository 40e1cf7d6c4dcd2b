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

	VIPHit    bool
	VIP       VIP
	Flow      pipeline.FlowKey // with Tenant filled in, unmasked
	Rule      int              // index of the winning gray rule, -1 for none
	Pool      uint16
	SplitHash uint16           // split_pool only
	HashKey   pipeline.FlowKey // masked
	CRC       uint32
	Bucket    uint16
	BackendID uint16
}

// Process runs frame through the pipeline over s. The frame is not modified.
func Process(s *State, frame []byte) Result {
	r := Result{Rule: -1}
	p := Parse(frame)
	switch p.Reason {
	case pipeline.EthTruncated, pipeline.IPv4Truncated:
		return r.drop(p.Reason)
	case pipeline.NotIPv4:
		r.Verdict, r.Reason = NotForUs, p.Reason
		return r
	}
	vip, ok := s.VIPs[p.OuterDst]
	if !ok {
		r.Verdict, r.Reason = NotForUs, pipeline.NotVIP
		return r
	}
	r.VIPHit, r.VIP = true, vip
	if p.Reason != pipeline.None {
		return r.drop(p.Reason)
	}
	if p.TTL <= 1 {
		return r.drop(pipeline.TTLExpired)
	}

	r.Flow = p.Flow
	r.Flow.Tenant = s.Tenants[p.Flow.VNI] // miss: tenant 0
	r.Pool = vip.DefaultPool
	if i := bestRule(s.GrayRules, vip.ID, r.Flow); i >= 0 {
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
		}
	}

	mask, ok := s.PoolHash[r.Pool]
	if !ok {
		mask = pipeline.AllOnes
	}
	r.HashKey = r.Flow.And(mask)
	r.CRC = r.HashKey.CRC()
	r.Bucket = uint16(r.CRC & (pipeline.Buckets - 1))

	id, ok := s.BackendSelect[SelectKey{r.Pool, r.Bucket}]
	if !ok {
		return r.drop(pipeline.NoBackend)
	}
	r.BackendID = id
	be, ok := s.Backends[id]
	if !ok {
		return r.drop(pipeline.NoBackend)
	}
	r.Verdict, r.Port = Forward, be.Port
	r.Frame = rewrite(frame, p, be)
	return r
}

func (r Result) drop(reason pipeline.Reason) Result {
	r.Verdict, r.Reason = Drop, reason
	return r
}

// bestRule returns the index of the matching rule with the highest priority (the
// first such rule on a tie), or -1.
func bestRule(rules []GrayRule, vipID uint16, k pipeline.FlowKey) int {
	best := -1
	for i := range rules {
		if rules[i].Matches(vipID, k) && (best < 0 || rules[i].Priority > rules[best].Priority) {
			best = i
		}
	}
	return best
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
