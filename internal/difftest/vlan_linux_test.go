//go:build linux

package difftest

import (
	"testing"
	"time"

	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// TestVLANVectors runs the vectors' vlan state (802.1Q, docs/pipeline.md §1,
// §8) on the XDP program and on the v1model program, each frame into its
// case's port: every frame leaves tagged, retagged or untagged exactly as the
// model says, on its port (a mirror copy too: XDP's tc program and BMv2's
// recirculation each tag it for its own port), or not at all; and
// drop_reasons, read over P4Runtime, counts VLAN_NOT_ACCEPTED once per
// refused frame.
func TestVLANVectors(t *testing.T) {
	tl, ctx := vectorLab(t, 2*time.Minute)
	f, _, _ := tl.loadState(ctx, t, testvectors.StateVLAN)
	tl.onBoth(t, func(t *testing.T, tg *target) {
		refusedCount := func() int {
			return tl.indexed(ctx, t, tg, pipeline.CounterDropReasons, int64(pipeline.VLANNotAccepted))
		}
		before := refusedCount()
		refused, n := 0, 0
		for _, c := range f.Cases {
			frame, _ := c.Frame()
			if c.State != testvectors.StateVLAN || len(frame) < MinLen(frame) {
				continue // no veth carries it (TestShortFramesOnBMv2 covers such frames)
			}
			n++
			want := map[int][]string{}
			if c.Expect.Verdict == "forward" {
				want[int(c.Expect.Port)] = append(want[int(c.Expect.Port)], c.Expect.Packet)
			}
			if cp := c.Expect.Copy; cp != nil && cp.Sent {
				want[int(cp.Port)] = append(want[int(cp.Port)], cp.Packet)
			}
			if c.Expect.Reason == pipeline.VLANNotAccepted.String() {
				refused++
			}
			if got := tl.sendOn(t, tg, int(c.InPort), frame); !sameOut(got, want) {
				t.Errorf("case %s (port %d): %s sent %v, want %v", c.Name, c.InPort, tg.name, got, want)
			}
		}
		if got := refusedCount() - before; got != refused {
			t.Errorf("drop_reasons[VLAN_NOT_ACCEPTED] += %d, want %d", got, refused)
		}
		t.Logf("%d vlan cases, %d refused", n, refused)
	})
}
