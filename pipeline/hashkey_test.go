package pipeline

import (
	"encoding/hex"
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
