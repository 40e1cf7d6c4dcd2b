//go:build linux

package difftest

import (
	"context"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// TestIPv6VectorsOnBMv2 runs the IPv6 vectors (testvectors.IPv6, issue 19) on
// the v1model program: each frame into its case's port must leave exactly as
// the model says, on its port, or not at all, and drop_reasons must count each
// dropped frame under the model's reason (a frame not for us included: P4
// drops and counts what XDP passes). The state goes to BMv2 only: the agent
// takes IPv6 entries once its dataplanes implement IPv6.
func TestIPv6VectorsOnBMv2(t *testing.T) {
	ssg, program := requirements(t)
	tl := newLab(t, ssg, program)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f, err := testvectors.IPv6()
	if err != nil {
		t.Fatal(err)
	}
	b := p4rtest.Builder{T: t, Info: tl.info}
	for name, st := range f.States {
		if err := tl.bmv2.write(ctx, [][]*p4v1.Update{append(p4rtest.StateUpdates(t, b, st), mirrorSession())}); err != nil {
			t.Fatalf("state %s: %v", name, err)
		}
		if len(f.States) > 1 {
			t.Fatalf("%d IPv6 states: the test loads one at a time, extend it", len(f.States))
		}
	}
	drops := func() Counts {
		c, err := tl.counters(ctx, tl.bmv2, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	before := drops()
	want := map[pipeline.Reason]uint64{}
	forwarded := 0
	for _, c := range f.Cases {
		frame, err := c.Frame()
		if err != nil {
			t.Fatalf("case %s: %v", c.Name, err)
		}
		out := map[int][]string{}
		switch c.Expect.Verdict {
		case "forward":
			forwarded++
			out[int(c.Expect.Port)] = []string{c.Expect.Packet}
		default: // drop, or pass (not for us): BMv2 drops and counts both
			r, err := pipeline.ParseReason(c.Expect.Reason)
			if err != nil {
				t.Fatalf("case %s: %v", c.Name, err)
			}
			want[r]++
		}
		if cp := c.Expect.Copy; cp != nil && cp.Sent {
			t.Fatalf("case %s: a mirror copy of an IPv6 vector (IPv6 outer frames are never mirrored, IPv6 flows have no mirror rule)", c.Name)
		}
		if got := tl.sendOn(t, tl.bmv2, int(c.InPort), frame); !sameOut(got, out) {
			t.Errorf("case %s (port %d): bmv2 sent %v, want %v", c.Name, c.InPort, got, out)
		}
	}
	got := sub(drops(), before)
	for r := range pipeline.Reason(pipeline.NumReasons) {
		if r == pipeline.None {
			continue
		}
		if got.Drops[r].Packets != want[r] {
			t.Errorf("drop_reasons[%s] += %d, want %d", r, got.Drops[r].Packets, want[r])
		}
	}
	t.Logf("%d IPv6 cases on BMv2: %d forwarded, drops %v", len(f.Cases), forwarded, want)
}
