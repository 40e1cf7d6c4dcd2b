package maglev

import (
	"fmt"
	"math"
	"testing"
)

func TestInverse(t *testing.T) {
	for _, a := range []uint32{1, 3, 5, 0xdeadbeef, 0xffffffff, 0x80000001} {
		if got := a * inverse(a); got != 1 {
			t.Errorf("%#x * inverse = %#x", a, got)
		}
	}
}

// TestPermutation checks that every backend's order is a permutation of the buckets
// and that rank inverts it, for every table size.
func TestPermutation(t *testing.T) {
	for m := 1; m <= MaxSize; m *= 2 {
		for _, id := range []string{"a", "be-00", "10.0.0.1:8080"} {
			p := newMixer(id, m)
			seen := make([]bool, m)
			for r := range uint32(m) {
				b := p.at(r)
				if int(b) >= m || seen[b] {
					t.Fatalf("m=%d %q: at(%d) = %d repeats or is out of range", m, id, r, b)
				}
				seen[b] = true
				if got := p.rank(b); got != r {
					t.Fatalf("m=%d %q: rank(at(%d)) = %d", m, id, r, got)
				}
			}
		}
	}
}

// affine is the paper's permutation, offset + r·skip, taken modulo a power of two
// with an odd skip (so gcd(skip, M) = 1). It is kept here, not in the package, as the
// baseline that TestPermutationStructure compares mixer against.
type affine struct{ offset, skip, inv, mask uint32 }

func newAffine(id string, m int) perm {
	h1, h2 := hashID(id)
	mask := uint32(m - 1)
	skip := uint32(h2)&mask | 1
	return affine{offset: uint32(h1) & mask, skip: skip, inv: inverse(skip), mask: mask}
}

func (p affine) at(r uint32) uint32   { return (p.offset + r*p.skip) & p.mask }
func (p affine) rank(b uint32) uint32 { return ((b - p.offset) * p.inv) & p.mask }

// buildWith is Build with another permutation.
func buildWith(t testing.TB, newPerm func(string, int) perm, bs []Backend, m int) *Table {
	s, err := newSet(bs, m)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range s.ids {
		s.perm[i] = newPerm(id, m)
	}
	owner := make([]int32, m)
	for b := range owner {
		owner[b] = -1
	}
	s.fill(owner, make([]int, len(s.ids)))
	return s.table(owner)
}

// TestPermutationStructure measures how often buckets b and b+d (mod M) land on the
// same backend, averaged over 50 sets of N equal backends. For a table without
// structure that is 1/N whatever d. The affine permutation ranks b and b+M/2 exactly
// M/2 apart for every backend, and the fill turns that into stripes; the mixer must
// stay within 0.02 of 1/N.
func TestPermutationStructure(t *testing.T) {
	const m, sets = 4096, 50
	perms := []struct {
		name string
		new  func(string, int) perm
	}{{"affine", newAffine}, {"mixer", newMixer}}
	for _, p := range perms {
		for _, n := range []int{2, 8} {
			tables := make([]*Table, sets)
			for s := range tables {
				bs := equal(n)
				for i := range bs {
					bs[i].ID = fmt.Sprintf("set%d-%s", s, bs[i].ID)
				}
				tables[s] = buildWith(t, p.new, bs, m)
			}
			line := fmt.Sprintf("%-6s N=%d (1/N = %.3f): same backend at distance", p.name, n, 1/float64(n))
			for _, d := range []int{1, 64, 1024, 2048} {
				same := 0
				for _, tb := range tables {
					for b := range m {
						if tb.owner[b] == tb.owner[(b+d)%m] {
							same++
						}
					}
				}
				frac := float64(same) / m / sets
				line += fmt.Sprintf(" %d: %.3f", d, frac)
				if p.name == "mixer" && math.Abs(frac-1/float64(n)) > 0.02 {
					t.Errorf("mixer N=%d d=%d: %.3f of bucket pairs share a backend, want %.3f", n, d, frac, 1/float64(n))
				}
			}
			t.Log(line)
		}
	}
}

// TestMeasurePermutationDisruption compares the from-scratch disruption of the two
// permutations (Build(S) vs Build(S minus one), as a multiple of the minimum).
func TestMeasurePermutationDisruption(t *testing.T) {
	for _, p := range []struct {
		name string
		new  func(string, int) perm
	}{{"affine", newAffine}, {"mixer", newMixer}} {
		var sum float64
		var count int
		for n := 2; n <= 64; n++ {
			bs := equal(n)
			for _, x := range sample(n) {
				before := buildWith(t, p.new, bs, 4096)
				after := buildWith(t, p.new, without(bs, x), 4096)
				sum += float64(len(before.Diff(after))) / float64(before.Counts()[bs[x].ID])
				count++
			}
		}
		t.Logf("%-6s from-scratch Build, remove one of N=2..64 equal backends: moved/minimum mean %.2f", p.name, sum/float64(count))
	}
}
