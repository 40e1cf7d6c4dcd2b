package p4info

import (
	"errors"
	"fmt"
	"math/bits"
)

// Byte-string errors (P4Runtime spec §8.3 "Bytestrings").
var (
	// ErrEmptyBytes: a zero-length byte string, which the spec always rejects.
	ErrEmptyBytes = errors.New("p4info: empty byte string")
	// ErrTooWide: the value needs more bits than the P4Info bitwidth allows.
	ErrTooWide = errors.New("p4info: value wider than its bitwidth")
)

// BitLen is the number of significant bits of the big-endian unsigned value b
// (0 for zero).
func BitLen(b []byte) int {
	for i, c := range b {
		if c != 0 {
			return (len(b)-i-1)*8 + bits.Len8(c)
		}
	}
	return 0
}

// Canonical returns the shortest representation of the unsigned value b: leading
// zero bytes removed, one byte kept for zero (spec §8.3). The result shares b's
// storage. An empty b stays empty.
func Canonical(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// CheckWidth reports whether b is an acceptable encoding of a bit<width> value:
// non-empty, and no more than width significant bits. Leading zero bytes are
// allowed (the spec requires servers to accept them).
func CheckWidth(b []byte, width int32) error {
	if len(b) == 0 {
		return ErrEmptyBytes
	}
	if n := BitLen(b); n > int(width) {
		return fmt.Errorf("%w: %d significant bits for bit<%d>", ErrTooWide, n, width)
	}
	return nil
}

// Normalize checks b against width (CheckWidth) and returns a canonical copy.
func Normalize(b []byte, width int32) ([]byte, error) {
	if err := CheckWidth(b, width); err != nil {
		return nil, err
	}
	return append([]byte(nil), Canonical(b)...), nil
}

// EncodeUint returns the canonical byte string of v.
func EncodeUint(v uint64) []byte {
	n := (bits.Len64(v) + 7) / 8
	if n == 0 {
		n = 1
	}
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	return b
}

// DecodeUint returns the value of the big-endian byte string b, which must be
// non-empty and fit in 64 bits.
func DecodeUint(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, ErrEmptyBytes
	}
	if BitLen(b) > 64 {
		return 0, fmt.Errorf("%w: more than 64 bits", ErrTooWide)
	}
	var v uint64
	for _, c := range Canonical(b) {
		v = v<<8 | uint64(c)
	}
	return v, nil
}

// Mask returns the canonical byte string of a mask of the top prefixLen bits of a
// bit<width> field (the LPM prefix expressed as a ternary mask).
func Mask(width, prefixLen int32) []byte {
	if prefixLen <= 0 || width <= 0 {
		return []byte{0}
	}
	prefixLen = min(prefixLen, width)
	nbytes := (width + 7) / 8
	b := make([]byte, nbytes)
	// bit i (0 = most significant of the width) lives at position width-1-i from
	// the least significant end.
	for i := int32(0); i < prefixLen; i++ {
		pos := width - 1 - i
		b[nbytes-1-pos/8] |= 1 << (pos % 8)
	}
	return Canonical(b)
}
