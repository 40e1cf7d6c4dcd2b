// Package testpkt builds the Ethernet frames graygw's tests and test vectors send:
// plain IPv4 TCP/UDP/ICMP and VXLAN-encapsulated ones, with valid checksums unless a
// test asks otherwise. It has no dependencies so every test package can use it.
package testpkt

import (
	"encoding/binary"
	"net/netip"
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
	vx := make([]byte, 8, 8+len(inner))
	vx[0] = 0x08
	vx[4], vx[5], vx[6] = byte(vni>>16), byte(vni>>8), byte(vni)
	vx = append(vx, inner...)
	return Plain(eth, outer, L4{Proto: ProtoUDP, SPort: sport, DPort: 4789, Payload: vx})
}

func ethHdr(eth Eth, ethertype uint16) []byte {
	b := make([]byte, 14)
	copy(b, eth.Dst[:])
	copy(b[6:], eth.Src[:])
	binary.BigEndian.PutUint16(b[12:], ethertype)
	return b
}

func ipv4Packet(ip IP, l4 L4) []byte {
	var l4b []byte
	src, dst := ip.Src.As4(), ip.Dst.As4()
	switch l4.Proto {
	case ProtoTCP:
		l4b = make([]byte, 20, 20+len(l4.Payload))
		binary.BigEndian.PutUint16(l4b[0:], l4.SPort)
		binary.BigEndian.PutUint16(l4b[2:], l4.DPort)
		binary.BigEndian.PutUint32(l4b[4:], 1) // seq
		l4b[12] = 5 << 4                       // data offset
		l4b[13] = 0x02                         // SYN
		binary.BigEndian.PutUint16(l4b[14:], 65535)
		l4b = append(l4b, l4.Payload...)
		binary.BigEndian.PutUint16(l4b[16:], L4Checksum(src, dst, ProtoTCP, l4b))
	case ProtoUDP:
		l4b = make([]byte, 8, 8+len(l4.Payload))
		binary.BigEndian.PutUint16(l4b[0:], l4.SPort)
		binary.BigEndian.PutUint16(l4b[2:], l4.DPort)
		binary.BigEndian.PutUint16(l4b[4:], uint16(8+len(l4.Payload)))
		l4b = append(l4b, l4.Payload...)
		if l4.DPort != 4789 { // VXLAN over IPv4 sends checksum 0, as Linux does
			c := L4Checksum(src, dst, ProtoUDP, l4b)
			if c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(l4b[6:], c)
		}
	case ProtoICMP:
		l4b = make([]byte, 8, 8+len(l4.Payload))
		l4b[0] = 8 // echo request
		binary.BigEndian.PutUint16(l4b[4:], l4.SPort)
		binary.BigEndian.PutUint16(l4b[6:], l4.DPort)
		l4b = append(l4b, l4.Payload...)
		binary.BigEndian.PutUint16(l4b[2:], Checksum(l4b))
	default:
		l4b = append([]byte(nil), l4.Payload...)
	}
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

// Inner returns an inner Ethernet frame for VXLAN.
func Inner(eth Eth, ip IP, l4 L4) []byte { return Plain(eth, ip, l4) }

// Checksum is the Internet checksum (RFC 1071) of b.
func Checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// L4Checksum is the Internet checksum of seg with the IPv4 pseudo-header: with seg's
// checksum field zeroed it is the value to write there; over a segment whose field
// is filled in, it is 0 when the segment is intact.
func L4Checksum(src, dst [4]byte, proto uint8, seg []byte) uint16 {
	ph := make([]byte, 12, 12+len(seg))
	copy(ph, src[:])
	copy(ph[4:], dst[:])
	ph[9] = proto
	binary.BigEndian.PutUint16(ph[10:], uint16(len(seg)))
	return Checksum(append(ph, seg...))
}

// L4ChecksumOK reports whether the TCP or UDP segment in an IPv4 packet (starting
// at the IPv4 header, ihl 5) has a valid checksum (UDP checksum 0 counts as valid).
func L4ChecksumOK(ipPkt []byte) bool {
	if len(ipPkt) < 20 {
		return false
	}
	proto, seg := ipPkt[9], ipPkt[20:]
	return noUDPChecksum(proto, seg) || L4Checksum([4]byte(ipPkt[12:16]), [4]byte(ipPkt[16:20]), proto, seg) == 0
}

// noUDPChecksum reports a UDP segment whose checksum field is 0: it carries
// none, which L4ChecksumOK and L4ChecksumOK6 count as valid.
func noUDPChecksum(proto uint8, seg []byte) bool {
	return proto == ProtoUDP && len(seg) >= 8 && seg[6] == 0 && seg[7] == 0
}

// Tag returns a copy of frame with an 802.1Q tag of tci (PCP, DEI, VID) after
// its MACs.
func Tag(frame []byte, tci uint16) []byte {
	out := make([]byte, 0, len(frame)+4)
	out = append(out, frame[:12]...)
	out = append(out, 0x81, 0x00, byte(tci>>8), byte(tci))
	return append(out, frame[12:]...)
}
