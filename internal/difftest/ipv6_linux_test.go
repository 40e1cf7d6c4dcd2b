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

// TestIPv6Vectors runs the IPv6 vectors (testvectors.IPv6, issue 19) on the
// XDP program and on the v1model program, both written through P4Runtime:
// each frame into its case's port must leave exactly as the model says, on
// its port, or not at all, and drop_reasons must count each frame not
// forwarded under the model's reason (a frame not for us included: XDP
// passes it to the kernel, P4 drops it, both count it).
func TestIPv6Vectors(t *testing.T) {
	tl, ctx := vectorLab(t, 3*time.Minute)
	f, err := testvectors.IPv6()
	if err != nil {
		t.Fatal(err)
	}
	b := p4rtest.Builder{T: t, Info: tl.info}
	if len(f.States) != 1 {
		t.Fatalf("%d IPv6 states: the test loads one, extend it", len(f.States))
	}
	for name, st := range f.States {
		if err := tl.xdp.write(ctx, [][]*p4v1.Update{p4rtest.StateUpdates(t, b, st)}); err != nil {
			t.Fatalf("state %s: %v", name, err)
		}
		if err := tl.bmv2.write(ctx, [][]*p4v1.Update{append(p4rtest.StateUpdates(t, b, st), mirrorSession())}); err != nil {
			t.Fatalf("state %s: %v", name, err)
		}
	}
	tl.onBoth(t, func(t *testing.T, tg *target) { runIPv6Vectors(ctx, t, tl, tg, f) })
}

func runIPv6Vectors(ctx context.Context, t *testing.T, tl *testLab, tg *target, f *testvectors.File) {
	drops := func() Counts {
		c, err := tl.counters(ctx, tg, nil)
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
		default: // drop, or pass (not for us): counted either way
			r, err := pipeline.ParseReason(c.Expect.Reason)
			if err != nil {
				t.Fatalf("case %s: %v", c.Name, err)
			}
			want[r]++
		}
		if cp := c.Expect.Copy; cp != nil && cp.Sent {
			t.Fatalf("case %s: a mirror copy of an IPv6 vector (IPv6 outer frames are never mirrored, IPv6 flows have no mirror rule)", c.Name)
		}
		if got := tl.sendOn(t, tg, int(c.InPort), frame); !sameOut(got, out) {
			t.Errorf("case %s (port %d): %s sent %v, want %v", c.Name, c.InPort, tg.name, got, out)
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
	t.Logf("%d IPv6 cases on %s: %d forwarded, drops %v", len(f.Cases), tg.name, forwarded, want)
}
