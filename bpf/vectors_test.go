//go:build linux

package bpf

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"slices"
	"testing"

	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// TestVectors runs every committed test vector, pipeline.json's and
// ipv6.json's, through the program with BPF_PROG_TEST_RUN and compares it
// with the reference model's expectation: verdict, port, drop reason
// counter, direct counters and output bytes.
func TestVectors(t *testing.T) {
	skipUnlessBPF(t)
	f, err := testvectors.Committed()
	check(t, err)
	f6, err := testvectors.IPv6()
	check(t, err)
	if len(f.Cases) == 0 || len(f6.Cases) == 0 {
		t.Fatal("no test vectors")
	}
	t.Run("pipeline.json", func(t *testing.T) { runVectors(t, f) })
	t.Run("ipv6.json", func(t *testing.T) { runVectors(t, f6) })
}

func runVectors(t *testing.T, f *testvectors.File) {
	for stateName, st := range f.States {
		ms, err := st.Model()
		if err != nil {
			t.Fatalf("state %s: %v", stateName, err)
		}
		d := openTest(t)
		applyState(t, d, ms)
		ports := portsOf(ms)
		for _, c := range f.Cases {
			if c.State != stateName {
				continue
			}
			t.Run(c.Name, func(t *testing.T) {
				frame, err := c.Frame()
				if err != nil {
					t.Fatal(err)
				}
				if len(frame) < minFrame {
					t.Skipf("%d-byte frame: the kernel never runs XDP on less than %d bytes", len(frame), minFrame)
				}
				e := c.Expect
				reason, err := pipeline.ParseReason(e.Reason)
				if err != nil {
					t.Fatal(err)
				}
				// The expected port is the ingress: XDP_TX proves the port.
				aimPorts(t, d, ports, int(e.Port))
				receiveOn(t, d, c.InPort)
				before := counters(t, d, st, e)
				ret, out := run(t, d.Program(), frame)
				after := counters(t, d, st, e)

				// A mirrored frame goes up to graygw_tc (XDP_PASS), served
				// frame first, behind its mirror_meta.
				mirrored := e.Copy != nil && e.Copy.Sent
				var want uint32
				switch {
				case mirrored:
					want = xdpPass
				case e.Verdict == "forward":
					want = xdpTX
				case e.Verdict == "drop":
					want = xdpDrop
				case e.Verdict == "pass":
					want = xdpPass
				}
				if ret != want {
					t.Fatalf("verdict %s, want %s (%s: %s)", verdictName(ret), verdictName(want), e.Verdict, e.Reason)
				}
				n := uint64(len(frame))
				for i := range pipeline.NumReasons {
					got := after.drops[i].Packets - before.drops[i].Packets
					var wantN uint64
					if pipeline.Reason(i) == reason && reason != pipeline.None {
						wantN = 1
					}
					if got != wantN {
						t.Errorf("drop_reasons[%s] += %d, want %d", pipeline.Reason(i), got, wantN)
					}
				}
				if reason != pipeline.None && after.drops[reason].Bytes-before.drops[reason].Bytes != n {
					t.Errorf("drop_reasons[%s] bytes += %d, want %d", reason, after.drops[reason].Bytes-before.drops[reason].Bytes, n)
				}
				// Every reason past NOT_VIP is met after the VIP's lookup
				// but IPV6_TRUNCATED, IPV4_TRUNCATED's twin.
				if e.VIPID != 0 || (reason > pipeline.NotVIP && reason != pipeline.IPv6Truncated) {
					if got := after.vip - before.vip; got != n {
						t.Errorf("vip counter bytes += %d, want %d", got, n)
					}
				}
				if e.Rule >= 0 {
					if got := after.rule - before.rule; got != n {
						t.Errorf("gray rule %d counter bytes += %d, want %d", e.Rule, got, n)
					}
				}
				if e.Verdict != "forward" {
					return
				}
				if got := after.backend - before.backend; got != n {
					t.Errorf("backend %d counter bytes += %d, want %d", e.BackendID, got, n)
				}
				wantOut, _ := hex.DecodeString(e.Packet)
				if mirrored {
					checkMirrorMeta(t, d, out, wantOut, e)
					return
				}
				if !bytes.Equal(out, wantOut) {
					t.Fatalf("output differs\n got %x\nwant %x", out, wantOut)
				}
				// Another port than the ingress: redirect, same bytes.
				aimPorts(t, d, ports, -1)
				ret, out = run(t, d.Program(), frame)
				if ret != xdpRedirect || !bytes.Equal(out, wantOut) {
					t.Fatalf("via another port: verdict %s, output equal %v; want REDIRECT, true", verdictName(ret), bytes.Equal(out, wantOut))
				}
			})
		}
	}
}

type snapshot struct {
	drops              [pipeline.NumReasons]Counter
	vip, rule, backend uint64 // bytes of the direct counters the case touches
}

func counters(t *testing.T, d *Dataplane, st testvectors.State, e testvectors.Expect) snapshot {
	t.Helper()
	var s snapshot
	var err error
	if s.drops, err = d.DropCounters(); err != nil {
		t.Fatal(err)
	}
	bytesOf := func(c Counter, err error) uint64 {
		t.Helper()
		check(t, err)
		return c.Bytes
	}
	for _, v := range append(slices.Clone(st.VIP), st.VIPv6...) {
		if v.VIPID == e.VIPID {
			a, _ := netip.ParseAddr(v.DstAddr)
			s.vip = bytesOf(d.VIPCounter(a))
		}
	}
	if e.Rule >= 0 && e.IPv6 {
		g, err := st.GrayRulesV6[e.Rule].ModelV6()
		check(t, err)
		s.rule = bytesOf(d.RuleCounterV6(g))
	} else if e.Rule >= 0 {
		g, err := st.GrayRules[e.Rule].Model()
		check(t, err)
		s.rule = bytesOf(d.RuleCounter(g))
	}
	if e.Verdict == "forward" {
		s.backend = bytesOf(d.BackendCounter(e.BackendID))
	}
	return s
}
