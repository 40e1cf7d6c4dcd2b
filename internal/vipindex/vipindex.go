// Package vipindex is the model of the XDP dataplane's vip_index (docs/xdp.md,
// "vip_index"): the cells an IPv4 VIP may live in, and a conservative test of
// whether a set of VIPs could find one's cells taken. It is plain Go, so the
// controller checks plans with the very hash package bpf and the packet use.
package vipindex

import "slices"

// Sizes and hash of vip_index, as VIP_INDEX_LOG, VIP_PROBE and VIP_HASH_MUL
// in bpf/include/consts.h.
const (
	// Log: the index holds 1 << Log cells.
	Log = 13
	// Size is the number of cells.
	Size = 1 << Log
	// Probe is the number of cells of an address's window, from its home:
	// an address lives in one of them, or is refused (bpf.ErrFull).
	Probe = 8
	// HashMul is the multiplier of Home (Fibonacci hashing).
	HashMul = 0x9e3779b1
)

// Home is the first cell of addr's window: the top Log bits of addr*HashMul,
// addr being the address as a number (10.0.0.1 = 0x0a000001), as vip_of in
// bpf/graygw.c computes it.
func Home(addr uint32) uint32 { return addr * HashMul >> (32 - Log) }

// Crowded returns the worst crowding of addrs: an address and the most other
// ones that could hold its window's Probe cells at once (a matching of
// addresses to cells, each in its own window), sorted, the address first;
// nil for no addresses. Duplicates count once. The agent can refuse an
// address of the set, whatever order they come and go in, only if the result
// has more than Probe addresses: the address and Probe others holding its
// cells. The converse need not hold (the test is conservative): the agent
// takes the first free cell of a window, not any.
func Crowded(addrs []uint32) []uint32 {
	byHome := make(map[uint32][]uint32, len(addrs))
	seen := make(map[uint32]bool, len(addrs))
	for _, a := range addrs {
		if !seen[a] {
			seen[a] = true
			byHome[Home(a)] = append(byHome[Home(a)], a)
		}
	}
	var best []uint32
	for a := range seen {
		c := fillers(a, byHome)
		if len(c) > len(best) || len(c) == len(best) && a < best[0] {
			best = c
		}
	}
	if len(best) > 1 {
		slices.Sort(best[1:])
	}
	return best
}

// fillers returns a and the most other addresses of byHome that could hold
// a's window's cells at once: each cell of the window, in order, goes to the
// free candidate whose reach in the window ends first (optimal for intervals).
func fillers(a uint32, byHome map[uint32][]uint32) []uint32 {
	type cand struct {
		addr   uint32
		lo, hi int // the cells of a's window it may hold, 0..Probe-1
	}
	h := Home(a)
	var cs []cand
	for o := -(Probe - 1); o < Probe; o++ {
		for _, b := range byHome[(h+Size+uint32(o))%Size] {
			if b != a {
				cs = append(cs, cand{b, max(0, o), min(Probe-1, o+Probe-1)})
			}
		}
	}
	out := []uint32{a}
	for cell := range Probe {
		pick := -1
		for i, c := range cs {
			if c.lo <= cell && cell <= c.hi && (pick < 0 || c.hi < cs[pick].hi) {
				pick = i
			}
		}
		if pick >= 0 {
			out = append(out, cs[pick].addr)
			cs = slices.Delete(cs, pick, pick+1)
		}
	}
	return out
}

// WithHome returns n distinct addresses (n <= 512) whose home is home: the
// hash inverted, addresses chosen to collide (for tests and demonstrations).
func WithHome(home uint32, n int) []uint32 {
	inv := uint32(HashMul) // Newton's iteration for the inverse mod 2^32
	for range 5 {
		inv *= 2 - HashMul*inv
	}
	out := make([]uint32, 0, n)
	for j := range uint32(n) {
		out = append(out, ((home%Size)<<(32-Log)|(j+1)*977)*inv)
	}
	return out
}
