package vipindex

import (
	"math/rand/v2"
	"testing"
)

// TestCrowded: nine addresses of one home make a neighbourhood past Probe,
// eight do not; an address whose home is Probe cells away is no neighbour.
func TestCrowded(t *testing.T) {
	const home = 4242
	nine := WithHome(home, 9)
	for _, a := range nine {
		if Home(a) != home {
			t.Fatalf("WithHome: %#x has home %d, want %d", a, Home(a), home)
		}
	}
	if got := Crowded(nine); len(got) != 9 {
		t.Fatalf("9 of one home: neighbourhood of %d, want 9", len(got))
	}
	if got := Crowded(append(nine[:8:8], nine[0])); len(got) != 8 {
		t.Fatalf("8 of one home (one twice): neighbourhood of %d, want 8", len(got))
	}
	// Homes wrap around: cell Size-1 and cell Probe-2 are Probe-1 apart.
	wrap := append(WithHome(Size-1, 8), WithHome(Probe-2, 1)...)
	if got := Crowded(wrap); len(got) != 9 {
		t.Fatalf("around the end: neighbourhood of %d, want 9", len(got))
	}
	apart := append(WithHome(Size-1, 8), WithHome(Probe-1, 1)...)
	if got := Crowded(apart); len(got) != 8 {
		t.Fatalf("Probe cells apart: neighbourhood of %d, want 8", len(got))
	}
	if Crowded(nil) != nil {
		t.Fatal("no addresses: a neighbourhood")
	}
}

// TestRealSetsNeverCrowded: the address sets an operator picks stay far from
// the bound (docs/controller.md): blocks of 1024 consecutive addresses crowd
// at most 3 VIPs in one window's reach, 512 random addresses at most Probe.
// (768 and more random ones do cross it now and then: documented.)
func TestRealSetsNeverCrowded(t *testing.T) {
	for _, base := range []uint32{0x0a000000, 0x0aff0000, 0xac100000, 0xc0a80000, 0x64400000} {
		seq := make([]uint32, 1024)
		for i := range seq {
			seq[i] = base + uint32(i)
		}
		if n := len(Crowded(seq)); n > 3 {
			t.Fatalf("1024 consecutive addresses from %#x: %d VIPs for one window", base, n)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		set := make([]uint32, 512)
		for i := range set {
			set[i] = r.Uint32()
		}
		if n := len(Crowded(set)); n > Probe {
			t.Fatalf("512 random addresses: %d VIPs for one window", n)
		}
	}
}
