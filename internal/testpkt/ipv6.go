package testpkt

import (
	"encoding/binary"
	"net/netip"

	"github.com/graygw/graygw/internal/checksum"
)

// IPv6 next headers the tests use (besides ProtoTCP and ProtoUDP).
const (
	ProtoICMPv6   = 58
	ProtoHopByHop = 0
	ProtoRouting  = 43
	ProtoFragment = 44
	ProtoAH       = 51
	ProtoDestOpts = 60
	ProtoNoNext   = 59
)

// IP6 describes an IPv6 header. Zero HopLimit means 64. Ext, when set, is
// extension header bytes put between the IPv6 header and the L4 header:
// the IPv6 next header is then ExtProto, and Ext's own first byte must name
// the L4 protocol (FragmentHeader builds one).
type IP6 struct {
	Src, Dst  netip.Addr
	HopLimit  uint8
	FlowLabel uint32
	ExtProto  uint8
	Ext       []byte
}

// Plain6 returns Ethernet / IPv6 / L4. TCP, UDP and ICMPv6 (an echo request,
// SPort the identifier, DPort the sequence) get valid checksums over the IPv6
// pseudo-header; other protocols carry just the payload.
func Plain6(eth Eth, ip IP6, l4 L4) []byte {
	return append(ethHdr(eth, 0x86dd), ipv6Packet(ip, l4)...)
}

// Inner6 returns an inner Ethernet / IPv6 frame for VXLAN.
func Inner6(eth Eth, ip IP6, l4 L4) []byte { return Plain6(eth, ip, l4) }

// VXLAN6 returns Ethernet / IPv6 / UDP(sport -> 4789) / VXLAN(vni) / inner
// frame, with the outer UDP checksum filled in (as Linux sends VXLAN over
// IPv6 unless told udp6zerocsumtx).
func VXLAN6(eth Eth, outer IP6, sport uint16, vni uint32, inner []byte) []byte {
	return Plain6(eth, outer, vxlan(sport, vni, inner))
}

// FragmentHeader returns an 8-byte IPv6 fragment header for a fragment of a
// packet of protocol next at byte offset off (a multiple of 8), more
// fragments following when more.
func FragmentHeader(next uint8, off uint16, more bool, id uint32) []byte {
	b := make([]byte, 8)
	b[0] = next
	w := off &^ 7
	if more {
		w |= 1
	}
	binary.BigEndian.PutUint16(b[2:], w)
	binary.BigEndian.PutUint32(b[4:], id)
	return b
}

func ipv6Packet(ip IP6, l4 L4) []byte {
	src, dst := ip.Src.As16(), ip.Dst.As16()
	l4b := segment(l4, netip.AddrFrom16(src), netip.AddrFrom16(dst))
	next := l4.Proto
	if ip.Ext != nil {
		next = ip.ExtProto
		l4b = append(append([]byte(nil), ip.Ext...), l4b...)
	}
	h := make([]byte, 40, 40+len(l4b))
	binary.BigEndian.PutUint32(h[0:], 6<<28|ip.FlowLabel&0xfffff)
	binary.BigEndian.PutUint16(h[4:], uint16(len(l4b)))
	h[6] = next
	h[7] = ip.HopLimit
	if h[7] == 0 {
		h[7] = 64
	}
	copy(h[8:], src[:])
	copy(h[24:], dst[:])
	return append(h, l4b...)
}

// L4Checksum6 is the Internet checksum of seg with the IPv6 pseudo-header
// (RFC 8200 §8.1): with seg's checksum field zeroed it is the value to write
// there; over a segment whose field is filled in, it is 0 when it is intact.
func L4Checksum6(src, dst [16]byte, proto uint8, seg []byte) uint16 {
	return checksum.L4(proto, netip.AddrFrom16(src), netip.AddrFrom16(dst), seg)
}

// L4ChecksumOK6 reports whether the TCP, UDP or ICMPv6 segment right after
// an IPv6 header (no extension headers; ipPkt starts at the IPv6 header) has
// a valid checksum (UDP checksum 0 counts as valid).
func L4ChecksumOK6(ipPkt []byte) bool {
	return len(ipPkt) >= 40 &&
		segmentOK(ipPkt[6], netip.AddrFrom16([16]byte(ipPkt[8:24])), netip.AddrFrom16([16]byte(ipPkt[24:40])), ipPkt[40:])
}
