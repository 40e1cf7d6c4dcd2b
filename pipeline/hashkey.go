package pipeline

import (
	"encoding/binary"
	"hash/crc32"
)

// FlowKey holds the fields that feed the hash, in the order they are laid out.
// VNI uses the low 24 bits.
type FlowKey struct {
	VNI    uint32
	Tenant uint16
	Src    uint32
	Dst    uint32
	Proto  uint8
	SPort  uint16
	DPort  uint16
}

// HashKeyLen is the length of the serialized hash key.
const HashKeyLen = 18

// Bytes lays the key out big-endian: vni(24) tenant(16) src(32) dst(32) proto(8)
// sport(16) dport(16).
func (k FlowKey) Bytes() [HashKeyLen]byte {
	var b [HashKeyLen]byte
	b[0], b[1], b[2] = byte(k.VNI>>16), byte(k.VNI>>8), byte(k.VNI)
	binary.BigEndian.PutUint16(b[3:], k.Tenant)
	binary.BigEndian.PutUint32(b[5:], k.Src)
	binary.BigEndian.PutUint32(b[9:], k.Dst)
	b[13] = k.Proto
	binary.BigEndian.PutUint16(b[14:], k.SPort)
	binary.BigEndian.PutUint16(b[16:], k.DPort)
	return b
}

// And returns the key with every field ANDed with the same field of mask.
func (k FlowKey) And(mask FlowKey) FlowKey {
	return FlowKey{
		VNI: k.VNI & mask.VNI & MaxVNI, Tenant: k.Tenant & mask.Tenant,
		Src: k.Src & mask.Src, Dst: k.Dst & mask.Dst, Proto: k.Proto & mask.Proto,
		SPort: k.SPort & mask.SPort, DPort: k.DPort & mask.DPort,
	}
}

// AllOnes is the hash mask of a pool without a pool_hash entry: every field counts.
var AllOnes = FlowKey{VNI: MaxVNI, Tenant: 0xffff, Src: 0xffffffff, Dst: 0xffffffff,
	Proto: 0xff, SPort: 0xffff, DPort: 0xffff}

// CRC is CRC32/IEEE of the serialized key (v1model HashAlgorithm.crc32, TNA CRC32).
func (k FlowKey) CRC() uint32 {
	b := k.Bytes()
	return crc32.ChecksumIEEE(b[:])
}

// Bucket is the consistent-hash bucket of the key: the low bits of its CRC.
func (k FlowKey) Bucket() uint16 { return uint16(k.CRC() & (Buckets - 1)) }

// SplitHash is the sticky split hash of a VM: the low 16 bits of CRC32 over
// vni(24) ++ src(32), so a VM (a VNI and an inner source) is always on one side.
func SplitHash(vni, src uint32) uint16 {
	var b [7]byte
	b[0], b[1], b[2] = byte(vni>>16), byte(vni>>8), byte(vni)
	binary.BigEndian.PutUint32(b[3:], src)
	return uint16(crc32.ChecksumIEEE(b[:]))
}

// FlowKey6 holds the fields that feed the hash of an IPv6 flow (inner IPv6 in
// VXLAN, or plain IPv6 to a v6 VIP), in the order they are laid out. VNI uses
// the low 24 bits; Src and Dst are big-endian IPv6 addresses.
type FlowKey6 struct {
	VNI      uint32
	Tenant   uint16
	Src, Dst [16]byte
	Proto    uint8
	SPort    uint16
	DPort    uint16
}

// FlowOf is the layout of FlowKey (A uint32) and FlowKey6 (A [16]byte) with
// the address type a parameter, so that code alike for both families (a
// table's key decoded, a key drawn) is written once and converted to either:
// FlowKey(FlowOf[uint32]{...}), FlowKey6(FlowOf[[16]byte]{...}).
type FlowOf[A any] struct {
	VNI      uint32
	Tenant   uint16
	Src, Dst A
	Proto    uint8
	SPort    uint16
	DPort    uint16
}

// HashKey6Len is the length of the serialized IPv6 hash key.
const HashKey6Len = 42

// SplitKey6Len is the length of the IPv6 split key: vni(24) ++ src(128).
const SplitKey6Len = 19

// Bytes lays the key out big-endian: vni(24) tenant(16) src(128) dst(128)
// proto(8) sport(16) dport(16).
func (k FlowKey6) Bytes() [HashKey6Len]byte {
	var b [HashKey6Len]byte
	b[0], b[1], b[2] = byte(k.VNI>>16), byte(k.VNI>>8), byte(k.VNI)
	binary.BigEndian.PutUint16(b[3:], k.Tenant)
	copy(b[5:], k.Src[:])
	copy(b[21:], k.Dst[:])
	b[37] = k.Proto
	binary.BigEndian.PutUint16(b[38:], k.SPort)
	binary.BigEndian.PutUint16(b[40:], k.DPort)
	return b
}

// And returns the key with every field ANDed with the same field of mask.
func (k FlowKey6) And(mask FlowKey6) FlowKey6 {
	out := FlowKey6{VNI: k.VNI & mask.VNI & MaxVNI, Tenant: k.Tenant & mask.Tenant, Proto: k.Proto & mask.Proto,
		SPort: k.SPort & mask.SPort, DPort: k.DPort & mask.DPort}
	for i := range out.Src {
		out.Src[i] = k.Src[i] & mask.Src[i]
		out.Dst[i] = k.Dst[i] & mask.Dst[i]
	}
	return out
}

// AllOnes6 is the IPv6 hash mask of a pool without a pool_hash entry.
var AllOnes6 = AllOnes.Mask6()

// Mask6 is the IPv6 meaning of a pool's set_hash_mask (docs/pipeline.md §6):
// an address mask of 0 leaves the 128-bit address out, any other value hashes
// it whole (an IPv4 prefix mask has no IPv6 meaning); the other fields are
// masked as for IPv4.
func (m FlowKey) Mask6() FlowKey6 {
	out := FlowKey6{VNI: m.VNI & MaxVNI, Tenant: m.Tenant, Proto: m.Proto, SPort: m.SPort, DPort: m.DPort}
	if m.Src != 0 {
		out.Src = allOnes128
	}
	if m.Dst != 0 {
		out.Dst = allOnes128
	}
	return out
}

var allOnes128 = [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// CRC is CRC32/IEEE of the serialized 42-byte key.
func (k FlowKey6) CRC() uint32 {
	b := k.Bytes()
	return crc32.ChecksumIEEE(b[:])
}

// Bucket is the consistent-hash bucket of the key: the low bits of its CRC.
func (k FlowKey6) Bucket() uint16 { return uint16(k.CRC() & (Buckets - 1)) }

// SplitHash6 is the sticky split hash of an IPv6 VM: the low 16 bits of CRC32
// over vni(24) ++ src(128), 19 bytes.
func SplitHash6(vni uint32, src [16]byte) uint16 {
	var b [SplitKey6Len]byte
	b[0], b[1], b[2] = byte(vni>>16), byte(vni>>8), byte(vni)
	copy(b[3:], src[:])
	return uint16(crc32.ChecksumIEEE(b[:]))
}
