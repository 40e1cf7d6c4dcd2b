package maglev

import "hash/fnv"

// perm is one backend's preference order over the M buckets of a table: at(r) is its
// r-th choice and rank(b) the position of bucket b in that order (rank(at(r)) == r).
// It is an interface only so that tests can compare alternatives (perm_test.go).
type perm interface {
	at(r uint32) uint32
	rank(b uint32) uint32
}

// mixer is a keyed bijection of [0, M) for M a power of two, the backend's permutation
// of the buckets. Two rounds of (add a key, multiply by an odd constant, xorshift);
// each step is invertible modulo 2^k, so the whole is a permutation and rank is its
// inverse.
//
// The paper's permutation offset + r·skip (mod M) needs a prime M. Taken modulo a power
// of two it is still a permutation when skip is odd, but an affine one: every backend
// then ranks b and b+M/2 exactly M/2 apart, and the table comes out striped (see
// TestPermutationStructure and docs/maglev.md). The xorshift steps break that
// structure.
type mixer struct {
	k1, k2 uint32 // additive keys
	a1, a2 uint32 // odd multipliers
	i1, i2 uint32 // their inverses modulo 2^32
	shift  uint32 // xorshift distance, ceil(bits/2)
	bits   uint32 // log2 M
	mask   uint32 // M-1
}

func newMixer(id string, m int) perm {
	h1, h2 := hashID(id)
	p := mixer{
		k1: uint32(h1), k2: uint32(h1 >> 32),
		a1: uint32(h2) | 1, a2: uint32(h2>>32) | 1,
		mask: uint32(m - 1),
	}
	for 1<<p.bits < m {
		p.bits++
	}
	p.shift = (p.bits + 1) / 2
	p.i1, p.i2 = inverse(p.a1), inverse(p.a2)
	return p
}

func (p mixer) at(r uint32) uint32 {
	x := (r + p.k1) * p.a1 & p.mask
	x ^= x >> p.shift
	x = (x + p.k2) * p.a2 & p.mask
	return x ^ x>>p.shift
}

func (p mixer) rank(b uint32) uint32 {
	x := p.unshift(b)
	x = (x*p.i2 - p.k2) & p.mask
	x = p.unshift(x)
	return (x*p.i1 - p.k1) & p.mask
}

// unshift inverts x ^= x>>shift on bits-bit values: y ^ y>>s ^ y>>2s ^ ... telescopes
// to x ^ x>>(n·s), which is x once n·s >= bits.
func (p mixer) unshift(y uint32) uint32 {
	x := y
	for s := p.shift; s < p.bits; s += p.shift {
		x ^= y >> s
	}
	return x
}

// hashID returns two 64-bit values derived from id. FNV-1a is fixed by its
// specification, so every controller computes the same permutation for an ID;
// splitmix64 spreads FNV's weak low bits and separates the two values.
func hashID(id string) (uint64, uint64) {
	f := fnv.New64a()
	f.Write([]byte(id))
	h1 := splitmix64(f.Sum64())
	return h1, splitmix64(h1)
}

// splitmix64 is the finalizer of Steele et al.'s SplitMix64 generator.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// inverse returns the multiplicative inverse of odd a modulo 2^32. Newton's iteration
// doubles the number of correct low bits each step (a·a = 1 mod 8 gives 3 to start).
func inverse(a uint32) uint32 {
	x := a
	for range 4 {
		x *= 2 - a*x
	}
	return x
}
