// Package testpkt builds the Ethernet frames graygw's tests and test vectors send:
// plain IPv4 TCP/UDP/ICMP and VXLAN-encapsulated ones, with valid checksums unless a
// test asks otherwise. It depends on nothing but internal/checksum (the prober's
// checksums too), so every test package can use it.
package testpkt

import (
	"encoding/binary"
	"net/netip"

	"github.com/graygw/graygw/internal/checksum"
)

// IP protocol numbers.
const (
	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17
)

// L4 describes the transport part of a packet. Payload follows the L4 header.
type L4 struct {
	Proto        uint8
	SPort, DPort uint16 // TCP/UDP; for ICMP echo, SPort is the identifier, DPort the sequence
	Payload      []byte
}

// IP describes an IPv4 header. Zero TTL means 64.
type IP struct {
	Src, Dst netip.Addr
	TTL      uint8
	ID       uint16
	Flags    uint16 // the flags+fragment-offset word, e.g. 0x2000 for MF
}

// Eth describes an Ethernet header.
type Eth struct {
	Dst, Src [6]byte
}

// MAC parses "aa:bb:cc:dd:ee:ff" and panics on a bad literal (test data only).
func MAC(s string) [6]byte {
	var m [6]byte
	if len(s) != 17 {
		panic("testpkt: bad MAC " + s)
	}
	for i := 0; i < 6; i++ {
		m[i] = hexByte(s[i*3], s[i*3+1])
	}
	return m
}

func hexByte(a, b byte) byte {
	v := func(c byte) byte {
		switch {
		case c >= '0' && c <= '9':
			return c - '0'
		case c >= 'a' && c <= 'f':
			return c - 'a' + 10
		case c >= 'A' && c <= 'F':
			return c - 'A' + 10
		}
		panic("testpkt: bad hex digit")
	}
	return v(a)<<4 | v(b)
}

// Plain returns Ethernet / IPv4 / L4.
func Plain(eth Eth, ip IP, l4 L4) []byte {
	return append(ethHdr(eth, 0x0800), ipv4Packet(ip, l4)...)
}

// VXLAN returns Ethernet / IPv4 / UDP(sport -> 4789) / VXLAN(vni) / inner frame.
func VXLAN(eth Eth, outer IP, sport uint16, vni uint32, inner []byte) []byte {
	return Plain(eth, outer, vxlan(sport, vni, inner))
}

// vxlan is the UDP datagram (sport -> 4789) of a VXLAN header (vni) and the
// inner frame.
func vxlan(sport uint16, vni uint32, inner []byte) L4 {
	vx := make([]byte, 8, 8+len(inner))
	vx[0] = 0x08
	vx[4], vx[5], vx[6] = byte(vni>>16), byte(vni>>8), byte(vni)
	return L4{Proto: ProtoUDP, SPort: sport, DPort: 4789, Payload: append(vx, inner...)}
}

func ethHdr(eth Eth, ethertype uint16) []byte {
	b := make([]byte, 14)
	copy(b, eth.Dst[:])
	copy(b[6:], eth.Src[:])
	binary.BigEndian.PutUint16(b[12:], ethertype)
	return b
}

func ipv4Packet(ip IP, l4 L4) []byte {
	src, dst := ip.Src.As4(), ip.Dst.As4()
	l4b := segment(l4, netip.AddrFrom4(src), netip.AddrFrom4(dst))
	h := make([]byte, 20, 20+len(l4b))
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4b)))
	binary.BigEndian.PutUint16(h[4:], ip.ID)
	binary.BigEndian.PutUint16(h[6:], ip.Flags)
	h[8] = ip.TTL
	if h[8] == 0 {
		h[8] = 64
	}
	h[9] = l4.Proto
	copy(h[12:], src[:])
	copy(h[16:], dst[:])
	binary.BigEndian.PutUint16(h[10:], Checksum(h))
	return append(h, l4b...)
}

// segment returns l4 as the payload of an IP packet from src to dst: a TCP
// SYN, a UDP datagram or an ICMP echo request (ICMPv6 in IPv6) with valid
// checksums, but UDP to the VXLAN port over IPv4, which carries checksum 0 as
// Linux sends it; any other protocol (ICMP in IPv6 too) as its bare payload.
func segment(l4 L4, src, dst netip.Addr) []byte {
	switch {
	case l4.Proto == ProtoTCP || l4.Proto == ProtoUDP:
		b := transport(l4)
		if l4.Proto == ProtoTCP {
			binary.BigEndian.PutUint16(b[16:], checksum.L4(ProtoTCP, src, dst, b))
		} else if src.Is6() || l4.DPort != 4789 {
			c := checksum.L4(ProtoUDP, src, dst, b)
			if c == 0 {
				c = 0xffff // 0 means none (RFC 768)
			}
			binary.BigEndian.PutUint16(b[6:], c)
		}
		return b
	case l4.Proto == ProtoICMP && src.Is4(), l4.Proto == ProtoICMPv6 && src.Is6():
		b := make([]byte, 8, 8+len(l4.Payload))
		binary.BigEndian.PutUint16(b[4:], l4.SPort)
		binary.BigEndian.PutUint16(b[6:], l4.DPort)
		b = append(b, l4.Payload...)
		if src.Is4() {
			b[0] = 8 // echo request
			binary.BigEndian.PutUint16(b[2:], Checksum(b))
		} else {
			b[0] = 128 // echo request; the checksum covers the pseudo-header
			binary.BigEndian.PutUint16(b[2:], checksum.L4(ProtoICMPv6, src, dst, b))
		}
		return b
	}
	return append([]byte(nil), l4.Payload...)
}

// transport is a TCP (SYN) or UDP header with l4's ports and payload, its
// checksum field 0.
func transport(l4 L4) []byte {
	if l4.Proto == ProtoTCP {
		b := make([]byte, 20, 20+len(l4.Payload))
		binary.BigEndian.PutUint16(b[0:], l4.SPort)
		binary.BigEndian.PutUint16(b[2:], l4.DPort)
		binary.BigEndian.PutUint32(b[4:], 1) // seq
		b[12] = 5 << 4                       // data offset
		b[13] = 0x02                         // SYN
		binary.BigEndian.PutUint16(b[14:], 65535)
		return append(b, l4.Payload...)
	}
	b := make([]byte, 8, 8+len(l4.Payload))
	binary.BigEndian.PutUint16(b[0:], l4.SPort)
	binary.BigEndian.PutUint16(b[2:], l4.DPort)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(l4.Payload)))
	return append(b, l4.Payload...)
}

// Inner returns an inner Ethernet frame for VXLAN.
func Inner(eth Eth, ip IP, l4 L4) []byte { return Plain(eth, ip, l4) }

// Checksum is the Internet checksum (RFC 1071) of b.
func Checksum(b []byte) uint16 { return checksum.Internet(b) }

// L4Checksum is the Internet checksum of seg with the IPv4 pseudo-header: with seg's
// checksum field zeroed it is the value to write there; over a segment whose field
// is filled in, it is 0 when the segment is intact.
func L4Checksum(src, dst [4]byte, proto uint8, seg []byte) uint16 {
	return checksum.L4(proto, netip.AddrFrom4(src), netip.AddrFrom4(dst), seg)
}

// L4ChecksumOK reports whether the TCP or UDP segment in an IPv4 packet (starting
// at the IPv4 header, ihl 5) has a valid checksum (UDP checksum 0 counts as valid).
func L4ChecksumOK(ipPkt []byte) bool {
	return len(ipPkt) >= 20 &&
		segmentOK(ipPkt[9], netip.AddrFrom4([4]byte(ipPkt[12:16])), netip.AddrFrom4([4]byte(ipPkt[16:20])), ipPkt[20:])
}

// segmentOK reports whether segment seg of protocol proto from src to dst has
// a valid checksum, for L4ChecksumOK and L4ChecksumOK6: a UDP one of 0
// carries none, which counts as valid.
func segmentOK(proto uint8, src, dst netip.Addr, seg []byte) bool {
	noUDPChecksum := proto == ProtoUDP && len(seg) >= 8 && seg[6] == 0 && seg[7] == 0
	return noUDPChecksum || checksum.L4(proto, src, dst, seg) == 0
}

// Tag returns a copy of frame with an 802.1Q tag of tci (PCP, DEI, VID) after
// its MACs.
func Tag(frame []byte, tci uint16) []byte {
	out := make([]byte, 0, len(frame)+4)
	out = append(out, frame[:12]...)
	out = append(out, 0x81, 0x00, byte(tci>>8), byte(tci))
	return append(out, frame[12:]...)
}
