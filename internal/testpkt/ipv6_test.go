package testpkt

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// IPv6 frames carry a consistent header (version, payload length, next
// header, addresses) and L4 checksums that verify, and stop verifying when
// a byte of the segment or of the pseudo-header's addresses changes.
func TestIPv6FramesAndChecksums(t *testing.T) {
	ip := IP6{Src: netip.MustParseAddr("2001:db8::5"), Dst: netip.MustParseAddr("2001:db8:1::1")}
	for _, l4 := range []L4{
		{Proto: ProtoTCP, SPort: 1, DPort: 2, Payload: []byte("odd")},
		{Proto: ProtoUDP, SPort: 1, DPort: 2, Payload: []byte("even")},
		{Proto: ProtoICMPv6, SPort: 1, DPort: 2},
	} {
		f := Plain6(Eth{}, ip, l4)
		p := f[14:]
		if binary.BigEndian.Uint16(f[12:]) != 0x86dd || p[0]>>4 != 6 || p[6] != l4.Proto || p[7] != 64 ||
			int(binary.BigEndian.Uint16(p[4:])) != len(p)-40 || netip.AddrFrom16([16]byte(p[24:40])) != ip.Dst {
			t.Fatalf("proto %d: header %x", l4.Proto, p[:40])
		}
		if !L4ChecksumOK6(p) {
			t.Fatalf("proto %d: checksum does not verify", l4.Proto)
		}
		for _, off := range []int{len(p) - 1, 24 + 15} { // the last byte, the destination's last
			b := append([]byte(nil), p...)
			b[off] ^= 1
			if L4ChecksumOK6(b) {
				t.Fatalf("proto %d: byte %d changed and the checksum still verifies", l4.Proto, off)
			}
		}
	}
	frag := IP6{Src: ip.Src, Dst: ip.Dst, ExtProto: ProtoFragment, Ext: FragmentHeader(ProtoTCP, 1232, true, 7)}
	p := Plain6(Eth{}, frag, L4{Proto: ProtoTCP})[14:]
	if p[6] != ProtoFragment || p[40] != ProtoTCP || binary.BigEndian.Uint16(p[42:]) != 1232|1 || binary.BigEndian.Uint32(p[44:]) != 7 {
		t.Fatalf("fragment header %x", p[40:48])
	}
}
