package checksum

import (
	"encoding/hex"
	"net/netip"
	"testing"
)

// The headers and segments below, checksum fields filled in, and their
// checksums come from scapy, an implementation of its own.

func TestInternet(t *testing.T) {
	check := func(what, data string, want uint16) {
		t.Helper()
		b, _ := hex.DecodeString(data)
		if got := Internet(b); got != want {
			t.Errorf("%s: Internet = %#04x, want %#04x", what, got, want)
		}
	}
	check("RFC 1071 section 3 example", "0001f203f4f5f6f7", 0x220d)
	check("odd length: the last byte padded", "0001f203f4f5f6", 0x2304)
	check("nothing", "", 0xffff)
	check("an IPv4 header, checksum field zeroed", "450000230001000040110000c0000201c6336402", 0x8e92)
	check("the same header as sent: intact", "450000230001000040118e92c0000201c6336402", 0)
}

func TestL4(t *testing.T) {
	v4s, v4d := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2")
	v6s, v6d := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	// check: seg as sent, its checksum want at off.
	check := func(what string, proto uint8, src, dst netip.Addr, sent string, off int, want uint16) {
		t.Helper()
		seg, _ := hex.DecodeString(sent)
		if got := L4(proto, src, dst, seg); got != 0 {
			t.Errorf("%s: L4 over the segment as sent = %#04x, want 0 (intact)", what, got)
		}
		seg[off], seg[off+1] = 0, 0
		if got := L4(proto, src, dst, seg); got != want {
			t.Errorf("%s: L4 = %#04x, want %#04x", what, got, want)
		}
		if got := L4(proto, dst, src, seg); got != want {
			t.Errorf("%s: L4 with the addresses swapped = %#04x, want %#04x (the sum commutes)", what, got, want)
		}
		if got := L4(proto+1, src, dst, seg); got == want {
			t.Errorf("%s: L4 of another protocol = %#04x: the pseudo-header's protocol is not summed", what, got)
		}
	}
	check("UDP over IPv4", 17, v4s, v4d, "04d20035000fbd2e67726179677721", 6, 0xbd2e)
	check("TCP over IPv6", 6, v6s, v6d, "9c4001bb00000001000000005002ffff86080000677261796777", 16, 0x8608)
	check("ICMPv6 echo request", 58, v6s, v6d, "800045690009000170696e67", 2, 0x4569)
}
