package pipeline

import (
	"encoding/hex"
	"net/netip"
	"testing"
)

// The vector verified on BMv2 (../shared/p4c/REPORT.md).
func TestHashKeyMatchesBMv2Vector(t *testing.T) {
	k := FlowKey{VNI: 5001, Tenant: 7, Src: 0x0a000005, Dst: 0xc0a80101, Proto: 6, SPort: 12345, DPort: 80}
	b := k.Bytes()
	if got, want := hex.EncodeToString(b[:]), "0013890007"+"0a000005"+"c0a80101"+"06"+"3039"+"0050"; got != want {
		t.Fatalf("key bytes = %s, want %s", got, want)
	}
	if got := k.CRC(); got != 0x88134cb6 {
		t.Fatalf("crc = %#x, want 0x88134cb6", got)
	}
	if got := k.Bucket(); got != 3254 {
		t.Fatalf("bucket = %d, want 3254", got)
	}
	if got := SplitHash(5001, 0x0a000005); got != 26947 {
		t.Fatalf("split hash = %d, want 26947", got)
	}
}

// The IPv6 check vector of docs/pipeline.md §6 (the crc and split hash also
// computed with Python's zlib.crc32 over the same bytes).
func TestHashKey6Vector(t *testing.T) {
	src, dst := netip.MustParseAddr("2001:db8::5").As16(), netip.MustParseAddr("2001:db8:1::1").As16()
	k := FlowKey6{VNI: 5001, Tenant: 7, Src: src, Dst: dst, Proto: 6, SPort: 12345, DPort: 80}
	b := k.Bytes()
	want := "001389" + "0007" + "20010db8000000000000000000000005" + "20010db8000100000000000000000001" + "06" + "3039" + "0050"
	if got := hex.EncodeToString(b[:]); got != want {
		t.Fatalf("key6 bytes = %s, want %s", got, want)
	}
	if got := k.CRC(); got != 0xf129bcf6 {
		t.Fatalf("crc = %#x, want 0xf129bcf6", got)
	}
	if got := k.Bucket(); got != 3318 {
		t.Fatalf("bucket = %d, want 3318", got)
	}
	if got := SplitHash6(5001, src); got != 14388 {
		t.Fatalf("split hash6 = %d, want 14388", got)
	}
}

// A pool's IPv6 masks: an address mask of 0 leaves the address out, any other
// value keeps all 128 bits; the other fields mask as for IPv4.
func TestMask6(t *testing.T) {
	m := FlowKey{VNI: 0xff0000, Tenant: 0x00ff, Src: 0xffffff00, Dst: 0, Proto: 0x0f, SPort: 0xff00, DPort: 0xffff}
	src, dst := netip.MustParseAddr("2001:db8::5").As16(), netip.MustParseAddr("2001:db8:1::1").As16()
	k := FlowKey6{VNI: 0xabcdef, Tenant: 0x1234, Src: src, Dst: dst, Proto: 17, SPort: 0x1234, DPort: 53}
	got := k.And(m.Mask6())
	want := FlowKey6{VNI: 0xab0000, Tenant: 0x0034, Src: src, Proto: 1, SPort: 0x1200, DPort: 53}
	if got != want {
		t.Fatalf("And(Mask6) = %+v, want %+v", got, want)
	}
	if k.And(AllOnes6) != k {
		t.Fatal("And(AllOnes6) changed the key")
	}
	if (FlowKey{Src: 1}).Mask6().Src != AllOnes6.Src {
		t.Fatal("a one-bit src mask does not hash the whole IPv6 source")
	}
}

func TestAndMasksEachField(t *testing.T) {
	k := FlowKey{VNI: 0xabcdef, Tenant: 0x1234, Src: 0x0a0b0c0d, Dst: 0x01020304, Proto: 17, SPort: 1000, DPort: 53}
	m := FlowKey{VNI: 0xff0000, Src: 0xffffff00, DPort: 0xffff}
	got := k.And(m)
	want := FlowKey{VNI: 0xab0000, Src: 0x0a0b0c00, DPort: 53}
	if got != want {
		t.Fatalf("And = %+v, want %+v", got, want)
	}
	if k.And(AllOnes) != k {
		t.Fatal("And(AllOnes) changed the key")
	}
}

func TestReasonNamesRoundTrip(t *testing.T) {
	for r := Reason(0); r < NumReasons; r++ {
		got, err := ParseReason(r.String())
		if err != nil || got != r {
			t.Fatalf("ParseReason(%q) = %v, %v", r.String(), got, err)
		}
	}
	if _, err := ParseReason("BOGUS"); err == nil {
		t.Fatal("ParseReason accepted an unknown name")
	}
	if !NotVIP.NotForUs() || !NotIPv4.NotForUs() || TTLExpired.NotForUs() {
		t.Fatal("NotForUs misclassifies")
	}
}
