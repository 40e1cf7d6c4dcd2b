// Package checksum computes the Internet checksum (RFC 1071) of IP headers
// and of TCP, UDP, ICMP and ICMPv6 segments with their IPv4 or IPv6
// pseudo-header. The controller's prober builds its frames with it, and so do
// the test packet builders (internal/testpkt) and the tests that build frames
// by hand, so that one implementation serves production and tests alike.
package checksum

import (
	"encoding/binary"
	"net/netip"
)

// Internet is the Internet checksum (RFC 1071) of b: the one's complement of
// the one's complement sum of its 16-bit words, an odd last byte padded with
// zero. Over data whose checksum field is zero it is the value to write
// there; over data whose field is filled in it is 0 when the data is intact.
func Internet(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// L4 is the Internet checksum of segment seg of protocol proto with the
// pseudo-header of src and dst: the IPv4 one (RFC 793, RFC 768) when src is
// an IPv4 address, the IPv6 one (RFC 8200 section 8.1, for TCP, UDP and
// ICMPv6 alike) when it is an IPv6 address. With seg's checksum field zero
// it is the value to write there; over a segment whose field is filled in it
// is 0 when the segment is intact. A UDP checksum of 0 goes on the wire as
// 0xFFFF (RFC 768): that is the caller's to do.
func L4(proto uint8, src, dst netip.Addr, seg []byte) uint16 {
	var ph []byte
	if src.Is6() {
		s, d := src.As16(), dst.As16()
		ph = make([]byte, 40, 40+len(seg))
		copy(ph[0:16], s[:])
		copy(ph[16:32], d[:])
		binary.BigEndian.PutUint32(ph[32:], uint32(len(seg)))
		ph[39] = proto
	} else {
		s, d := src.As4(), dst.As4()
		ph = make([]byte, 12, 12+len(seg))
		copy(ph[0:4], s[:])
		copy(ph[4:8], d[:])
		ph[9] = proto
		binary.BigEndian.PutUint16(ph[10:], uint16(len(seg)))
	}
	return Internet(append(ph, seg...))
}
