// Package model is the reference model of the graygw pipeline (docs/pipeline.md): given
// table state and a frame it returns the decision (forward with the rewritten frame,
// drop with a reason, or not for us). It is the oracle the XDP and P4 dataplanes are
// tested against, so it favours plainness over speed.
package model

import (
	"encoding/binary"

	"github.com/graygw/graygw/pipeline"
)

// Header offsets within an outer frame (IPv4 without options).
const (
	ethLen    = 14
	ipv4Len   = 20
	offIP     = ethLen
	offL4     = offIP + ipv4Len
	udpLen    = 8
	tcpLen    = 20
	vxlanLen  = 8
	offVXLAN  = offL4 + udpLen
	offInner  = offVXLAN + vxlanLen
	offInIP   = offInner + ethLen
	offInL4   = offInIP + ipv4Len
	etherIPv4 = 0x0800
)

// Packet is what the parser extracts from a frame.
type Packet struct {
	// OuterDst is valid once the 20-byte outer IPv4 header was read (Reason is not
	// EthTruncated, NotIPv4 or IPv4Truncated).
	OuterDst uint32
	TTL      uint8
	Overlay  bool // VXLAN
	// Flow holds the flow fields (Tenant left 0: it comes from a table).
	Flow pipeline.FlowKey
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
	if binary.BigEndian.Uint16(frame[12:]) != etherIPv4 {
		p.Reason = pipeline.NotIPv4
		return p
	}
	if len(frame) < offIP+ipv4Len {
		p.Reason = pipeline.IPv4Truncated
		return p
	}
	ip := frame[offIP:]
	p.OuterDst = binary.BigEndian.Uint32(ip[16:])
	p.TTL = ip[8]
	if ip[0] != 0x45 {
		p.Reason = pipeline.IPv4Malformed
		return p
	}
	if binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 {
		p.Reason = pipeline.IPv4Fragment
		return p
	}
	proto := ip[9]
	p.Flow = pipeline.FlowKey{Src: binary.BigEndian.Uint32(ip[12:]), Dst: p.OuterDst, Proto: proto}
	switch proto {
	case protoTCP:
		if len(frame) < offL4+tcpLen {
			p.Reason = pipeline.L4Truncated
			return p
		}
	case protoUDP:
		if len(frame) < offL4+udpLen {
			p.Reason = pipeline.L4Truncated
			return p
		}
	default:
		return p // plain, ports 0
	}
	p.Flow.SPort = binary.BigEndian.Uint16(frame[offL4:])
	p.Flow.DPort = binary.BigEndian.Uint16(frame[offL4+2:])
	if proto != protoUDP || p.Flow.DPort != pipeline.VXLANPort {
		return p
	}

	p.Overlay = true
	p.Flow = pipeline.FlowKey{}
	if len(frame) < offVXLAN+vxlanLen {
		p.Reason = pipeline.VXLANTruncated
		return p
	}
	vx := frame[offVXLAN:]
	if vx[0]&0x08 == 0 {
		p.Reason = pipeline.VXLANBadFlags
		return p
	}
	p.Flow.VNI = uint32(vx[4])<<16 | uint32(vx[5])<<8 | uint32(vx[6])
	if len(frame) < offInner+ethLen {
		p.Reason = pipeline.InnerTruncated
		return p
	}
	if binary.BigEndian.Uint16(frame[offInner+12:]) != etherIPv4 {
		p.Reason = pipeline.InnerNotIPv4
		return p
	}
	if len(frame) < offInIP+ipv4Len {
		p.Reason = pipeline.InnerTruncated
		return p
	}
	in := frame[offInIP:]
	if in[0] != 0x45 {
		p.Reason = pipeline.InnerIPv4Malformed
		return p
	}
	p.Flow.Src = binary.BigEndian.Uint32(in[12:])
	p.Flow.Dst = binary.BigEndian.Uint32(in[16:])
	p.Flow.Proto = in[9]
	fragment := binary.BigEndian.Uint16(in[6:])&0x3fff != 0
	if fragment || (p.Flow.Proto != protoTCP && p.Flow.Proto != protoUDP) {
		return p
	}
	if len(frame) < offInL4+4 {
		p.Reason = pipeline.InnerTruncated
		return p
	}
	p.Flow.SPort = binary.BigEndian.Uint16(frame[offInL4:])
	p.Flow.DPort = binary.BigEndian.Uint16(frame[offInL4+2:])
	return p
}

const (
	protoTCP = 6
	protoUDP = 17
)
