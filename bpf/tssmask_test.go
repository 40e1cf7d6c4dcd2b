//go:build linux

package bpf

import (
	"math/rand"
	"testing"
)

// The mask's cached top priority always equals the highest priority of its rules.
func TestTSSMaskTopTracksRules(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	m := newTSSMask(0)
	var live []int32
	for i := 0; i < 20000; i++ {
		if len(live) == 0 || rng.Intn(3) > 0 {
			p := int32(1 + rng.Intn(50))
			live = append(live, p)
			m.count(p, +1)
		} else {
			j := rng.Intn(len(live))
			m.count(live[j], -1)
			live = append(live[:j], live[j+1:]...)
		}
		var want int32
		for _, p := range live {
			want = max(want, p)
		}
		if got := m.maxPriority(); got != want {
			t.Fatalf("step %d: top %d, want %d", i, got, want)
		}
	}
}
