package p4info

import (
	"bytes"
	"errors"
	"testing"
)

// The examples of the spec's tables "Valid/Invalid Bytestring Encoding" (§8.3),
// unsigned ones.
func TestCheckWidthSpecExamples(t *testing.T) {
	valid := []struct {
		width     int32
		in, canon []byte
	}{
		{8, []byte{0x63}, []byte{0x63}},
		{16, []byte{0x00, 0x63}, []byte{0x63}},
		{16, []byte{0x63}, []byte{0x63}},
		{16, []byte{0x30, 0x64}, []byte{0x30, 0x64}},
		{16, []byte{0x00, 0x30, 0x64}, []byte{0x30, 0x64}},
		{12, []byte{0x00, 0x63}, []byte{0x63}},
		{12, []byte{0x63}, []byte{0x63}},
		{12, []byte{0x00, 0x00, 0x63}, []byte{0x63}},
		{16, []byte{0x00, 0x00}, []byte{0x00}},
		{9, []byte{0x01, 0xff}, []byte{0x01, 0xff}},
	}
	for _, c := range valid {
		got, err := Normalize(c.in, c.width)
		if err != nil || !bytes.Equal(got, c.canon) {
			t.Errorf("Normalize(%x, %d) = %x, %v; want %x", c.in, c.width, got, err, c.canon)
		}
	}
	invalid := []struct {
		width int32
		in    []byte
		want  error
	}{
		{8, []byte{0x01, 0x63}, ErrTooWide},
		{8, []byte{}, ErrEmptyBytes},
		{16, []byte{0x01, 0x00, 0x63}, ErrTooWide},
		{12, []byte{0x10, 0x63}, ErrTooWide},
		{12, []byte{0x01, 0x00, 0x63}, ErrTooWide},
		{12, []byte{0x00, 0x40, 0x63}, ErrTooWide},
		{9, []byte{0x02, 0x00}, ErrTooWide},
	}
	for _, c := range invalid {
		if err := CheckWidth(c.in, c.width); !errors.Is(err, c.want) {
			t.Errorf("CheckWidth(%x, %d) = %v, want %v", c.in, c.width, err, c.want)
		}
	}
}

func TestEncodeDecodeUint(t *testing.T) {
	cases := []struct {
		v uint64
		b []byte
	}{
		{0, []byte{0}}, {1, []byte{1}}, {0xff, []byte{0xff}}, {0x100, []byte{1, 0}},
		{0xc0a80101, []byte{0xc0, 0xa8, 1, 1}}, {1<<64 - 1, bytes.Repeat([]byte{0xff}, 8)},
	}
	for _, c := range cases {
		if got := EncodeUint(c.v); !bytes.Equal(got, c.b) {
			t.Errorf("EncodeUint(%#x) = %x, want %x", c.v, got, c.b)
		}
		if got, err := DecodeUint(c.b); err != nil || got != c.v {
			t.Errorf("DecodeUint(%x) = %#x, %v", c.b, got, err)
		}
	}
	if v, err := DecodeUint([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 7}); err != nil || v != 7 {
		t.Errorf("DecodeUint(padded 7) = %d, %v", v, err)
	}
	if _, err := DecodeUint([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0}); !errors.Is(err, ErrTooWide) {
		t.Errorf("DecodeUint(65 bits) = %v", err)
	}
	if _, err := DecodeUint(nil); !errors.Is(err, ErrEmptyBytes) {
		t.Errorf("DecodeUint(nil) = %v", err)
	}
}

func TestMask(t *testing.T) {
	cases := []struct {
		width, plen int32
		want        []byte
	}{
		{32, 8, []byte{0xff, 0, 0, 0}},
		{32, 32, []byte{0xff, 0xff, 0xff, 0xff}},
		{24, 12, []byte{0xff, 0xf0, 0x00}},
		{9, 1, []byte{0x01, 0x00}},
		{9, 9, []byte{0x01, 0xff}},
		{16, 0, []byte{0}},
	}
	for _, c := range cases {
		if got := Mask(c.width, c.plen); !bytes.Equal(got, c.want) {
			t.Errorf("Mask(%d, %d) = %x, want %x", c.width, c.plen, got, c.want)
		}
	}
}

func TestBitLen(t *testing.T) {
	for _, c := range []struct {
		b []byte
		n int
	}{{nil, 0}, {[]byte{0, 0}, 0}, {[]byte{1}, 1}, {[]byte{0, 0x80}, 8}, {[]byte{1, 0}, 9}} {
		if got := BitLen(c.b); got != c.n {
			t.Errorf("BitLen(%x) = %d, want %d", c.b, got, c.n)
		}
	}
}
