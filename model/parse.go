package model

import (
	"encoding/binary"

	"github.com/graygw/graygw/pipeline"
)

// Header lengths and the offsets of an outer IPv4 frame (no options).
const (
	ethLen    = 14
	ipv4Len   = 20
	ipv6Len   = 40
	offIP     = ethLen
	offL4     = offIP + ipv4Len
	offL4v6   = offIP + ipv6Len
	udpLen    = 8
	tcpLen    = 20
	icmpv6Len = 4 // type, code, checksum
	fragLen   = 8 // the IPv6 fragment header
	vxlanLen  = 8
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
)

// Packet is what the parser extracts from a frame.
type Packet struct {
	// OuterDst is valid once the 20-byte outer IPv4 header was read (Reason is not
	// EthTruncated, NotIPv4 or IPv4Truncated).
	OuterDst uint32
	// Outer6: the outer header is IPv6 (ethertype 0x86DD); OuterDst6 is its
	// destination, valid once its 40 bytes were read (Reason is not
	// IPV6_TRUNCATED).
	Outer6    bool
	OuterDst6 [16]byte
	TTL       uint8 // the outer TTL or hop limit
	Overlay   bool  // VXLAN
	// Flow holds the flow fields (Tenant left 0: it comes from a table). For
	// an IPv6 flow (IPv6 true) it holds the VNI, proto and ports and zero
	// addresses, and Flow6 the whole flow.
	Flow  pipeline.FlowKey
	IPv6  bool
	Flow6 pipeline.FlowKey6
	// Reason is the first problem met, None when the whole parse succeeded.
	Reason pipeline.Reason
	// Tagged: the frame carries one 802.1Q tag after its MACs, whose TCI
	// (PCP, DEI, VID) is TCI. Everything else was parsed as if the tag were
	// not there (Untag).
	Tagged bool
	TCI    uint16
}

// VID is the tag's VLAN id.
func (p Packet) VID() uint16 { return p.TCI & 0x0fff }

// Parse extracts the fields of frame, reading nothing past its end. It stops at the
// first problem and records it in Packet.Reason (docs/pipeline.md §1). One
// 802.1Q tag is read and set aside: a tagged frame shorter than its tag is
// ETH_TRUNCATED, and the rest is parsed as the frame without the tag.
func Parse(frame []byte) Packet {
	if len(frame) < ethLen || binary.BigEndian.Uint16(frame[12:]) != pipeline.EtherVLAN {
		return parseUntagged(frame)
	}
	if len(frame) < ethLen+pipeline.VLANTagLen {
		return Packet{Reason: pipeline.EthTruncated, Tagged: true}
	}
	p := parseUntagged(Untag(frame))
	p.Tagged, p.TCI = true, binary.BigEndian.Uint16(frame[14:])
	return p
}

// Untag returns a copy of a tagged frame without its tag: the MACs, then
// everything after the TCI (the encapsulated ethertype first).
func Untag(frame []byte) []byte {
	out := make([]byte, 0, len(frame)-pipeline.VLANTagLen)
	out = append(out, frame[:12]...)
	return append(out, frame[12+pipeline.VLANTagLen:]...)
}

// tag returns a copy of an untagged frame with an 802.1Q tag of tci after
// its MACs.
func tag(frame []byte, tci uint16) []byte {
	out := make([]byte, 0, len(frame)+pipeline.VLANTagLen)
	out = append(out, frame[:12]...)
	out = append(out, pipeline.EtherVLAN>>8, pipeline.EtherVLAN&0xff, byte(tci>>8), byte(tci))
	return append(out, frame[12:]...)
}

// parseUntagged is Parse of a frame whose outer ethertype is not 802.1Q.
func parseUntagged(frame []byte) Packet {
	var p Packet
	if len(frame) < ethLen {
		p.Reason = pipeline.EthTruncated
		return p
	}
	var l4 int
	switch binary.BigEndian.Uint16(frame[12:]) {
	case etherIPv4:
		l4 = p.outer4(frame)
	case etherIPv6:
		l4 = p.outer6(frame)
	default:
		p.Reason = pipeline.NotIPv4 // neither IPv4 nor IPv6
	}
	if p.Reason == pipeline.None {
		p.outerL4(frame, l4)
	}
	if p.IPv6 {
		p.Flow = pipeline.FlowKey{VNI: p.Flow6.VNI, Proto: p.Flow6.Proto, SPort: p.Flow6.SPort, DPort: p.Flow6.DPort}
	}
	return p
}

// outer4 reads the outer IPv4 header and returns the offset of what follows.
func (p *Packet) outer4(frame []byte) int {
	if len(frame) < offIP+ipv4Len {
		p.Reason = pipeline.IPv4Truncated
		return 0
	}
	ip := frame[offIP:]
	p.OuterDst = binary.BigEndian.Uint32(ip[16:])
	p.TTL = ip[8]
	if ip[0] != 0x45 {
		p.Reason = pipeline.IPv4Malformed
		return 0
	}
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		p.Reason = pipeline.IPv4Fragment
		return 0
	}
	p.Flow = pipeline.FlowKey{Src: binary.BigEndian.Uint32(ip[12:]), Dst: p.OuterDst, Proto: ip[9]}
	return offL4
}

// outer6 reads the outer IPv6 header and returns the offset of what follows.
// Outer extension headers, fragments included, are not supported.
func (p *Packet) outer6(frame []byte) int {
	if len(frame) < offIP+ipv6Len {
		p.Reason = pipeline.IPv6Truncated
		return 0
	}
	ip := frame[offIP:]
	p.Outer6 = true
	copy(p.OuterDst6[:], ip[24:40])
	p.TTL = ip[7]
	if ip[0]>>4 != 6 {
		p.Reason = pipeline.IPv6Malformed
		return 0
	}
	if extension(ip[6]) || ip[6] == protoFragment {
		p.Reason = pipeline.IPv6Extension
		return 0
	}
	p.IPv6 = true
	p.Flow6 = pipeline.FlowKey6{Dst: p.OuterDst6, Proto: ip[6]}
	copy(p.Flow6.Src[:], ip[8:24])
	return offL4v6
}

// outerL4 reads the outer L4 header at l4, and the overlay behind a VXLAN
// port.
func (p *Packet) outerL4(frame []byte, l4 int) {
	proto := p.Flow.Proto
	if p.Outer6 {
		proto = p.Flow6.Proto
	}
	need := 0
	switch {
	case proto == protoTCP:
		need = tcpLen
	case proto == protoUDP:
		need = udpLen
	case proto == protoICMPv6 && p.Outer6:
		need = icmpv6Len // its checksum is rewritten (§8); ports 0
	default:
		return // plain, ports 0
	}
	if len(frame) < l4+need {
		p.Reason = pipeline.L4Truncated
		return
	}
	if proto == protoICMPv6 {
		return
	}
	sport, dport := binary.BigEndian.Uint16(frame[l4:]), binary.BigEndian.Uint16(frame[l4+2:])
	if proto != protoUDP || dport != pipeline.VXLANPort {
		p.setPorts(sport, dport)
		return
	}
	p.overlay(frame, l4+udpLen)
}

func (p *Packet) setPorts(sport, dport uint16) {
	if p.IPv6 {
		p.Flow6.SPort, p.Flow6.DPort = sport, dport
	} else {
		p.Flow.SPort, p.Flow.DPort = sport, dport
	}
}

// overlay reads the VXLAN header at vx and the inner frame behind it.
func (p *Packet) overlay(frame []byte, vx int) {
	p.Overlay = true
	p.IPv6, p.Flow, p.Flow6 = false, pipeline.FlowKey{}, pipeline.FlowKey6{}
	if len(frame) < vx+vxlanLen {
		p.Reason = pipeline.VXLANTruncated
		return
	}
	if frame[vx]&0x08 == 0 {
		p.Reason = pipeline.VXLANBadFlags
		return
	}
	vni := uint32(frame[vx+4])<<16 | uint32(frame[vx+5])<<8 | uint32(frame[vx+6])
	p.Flow.VNI = vni
	inner := vx + vxlanLen
	if len(frame) < inner+ethLen {
		p.Reason = pipeline.InnerTruncated
		return
	}
	switch binary.BigEndian.Uint16(frame[inner+12:]) {
	case etherIPv4:
		p.inner4(frame, inner+ethLen)
	case etherIPv6:
		p.IPv6, p.Flow6.VNI = true, vni
		p.inner6(frame, inner+ethLen)
	default:
		p.Reason = pipeline.InnerNotIPv4
	}
}

// inner4 reads the inner IPv4 header at in and its ports.
func (p *Packet) inner4(frame []byte, in int) {
	if len(frame) < in+ipv4Len {
		p.Reason = pipeline.InnerTruncated
		return
	}
	ip := frame[in:]
	if ip[0] != 0x45 {
		p.Reason = pipeline.InnerIPv4Malformed
		return
	}
	p.Flow.Src = binary.BigEndian.Uint32(ip[12:])
	p.Flow.Dst = binary.BigEndian.Uint32(ip[16:])
	p.Flow.Proto = ip[9]
	fragment := binary.BigEndian.Uint16(ip[6:])&0x3fff != 0
	if fragment || (p.Flow.Proto != protoTCP && p.Flow.Proto != protoUDP) {
		return
	}
	p.innerPorts(frame, in+ipv4Len)
}

// inner6 reads the inner IPv6 header at in: its ports behind TCP or UDP, the
// protocol behind a fragment header (ports 0), other extension headers
// dropped (docs/pipeline.md §1).
func (p *Packet) inner6(frame []byte, in int) {
	if len(frame) < in+ipv6Len {
		p.Reason = pipeline.InnerTruncated
		return
	}
	ip := frame[in:]
	if ip[0]>>4 != 6 {
		p.Reason = pipeline.InnerIPv6Malformed
		return
	}
	copy(p.Flow6.Src[:], ip[8:24])
	copy(p.Flow6.Dst[:], ip[24:40])
	next := ip[6]
	p.Flow6.Proto = next
	switch {
	case next == protoTCP || next == protoUDP:
		p.innerPorts(frame, in+ipv6Len)
	case next == protoFragment:
		if len(frame) < in+ipv6Len+fragLen {
			p.Reason = pipeline.InnerTruncated
			return
		}
		p.Flow6.Proto = frame[in+ipv6Len] // every fragment, the first too: ports 0
	case extension(next):
		p.Reason = pipeline.InnerIPv6Extension
	}
}

// innerPorts reads the inner source and destination ports at l4.
func (p *Packet) innerPorts(frame []byte, l4 int) {
	if len(frame) < l4+4 {
		p.Reason = pipeline.InnerTruncated
		return
	}
	p.setPorts(binary.BigEndian.Uint16(frame[l4:]), binary.BigEndian.Uint16(frame[l4+2:]))
}

// extension reports whether an IPv6 next header is an extension header that
// is not walked: hop-by-hop, routing, AH, destination options (the fragment
// header, also an extension, is told apart by its callers).
func extension(next uint8) bool {
	switch next {
	case protoHopByHop, protoRouting, protoAH, protoDestOpts:
		return true
	}
	return false
}

// Protocol numbers (IPv4 protocol, IPv6 next header).
const (
	protoHopByHop = 0
	protoTCP      = 6
	protoUDP      = 17
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51
	protoICMPv6   = 58
	protoDestOpts = 60
)
