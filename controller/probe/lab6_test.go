package probe_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/topo"
)

// TestIPv6ProbesThroughTheGateway sends ICMPv6 probes (and a TCP one over
// IPv6) from the VMs of a dual-stack VPC through the real XDP gateway (inner
// IPv6 in VXLAN over the IPv4 underlay, issue 19): the intent's rules move an
// IPv4 VM (gray_rules) and an IPv6 VM (gray_rules_v6); probe.Expect puts each
// probe where the compiled tables send it, and each is answered there, no
// other VM moving; TCP and UDP probes to a closed port over IPv6 are refused
// (reset, ICMPv6 port unreachable) by the backend that serves the VM.
func TestIPv6ProbesThroughTheGateway(t *testing.T) {
	vpcs := []topo.VPC{{VNI: 5001, Subnet: 1, VMs: []uint8{5, 6}, IPv6: true}, {VNI: 5002, Subnet: 2, VMs: []uint8{5}}}
	l := labtest.Build(t, "network namespaces, XDP and AF_PACKET", func() (*probetest.Lab, error) { return probetest.New("ggprobe6", vpcs) })
	moved := func(tg probe.Target) bool {
		return tg.VNI == 5001 && (tg.VM.String() == "192.168.1.5" || tg.VM.String() == "fd00:1::6")
	}
	in, res, targets := applyAndExpect(t, l, "  - {name: vm-1-5, match: {vip: vpc-router, vni: 5001, src: 192.168.1.5}, pool: gray-router}\n"+
		"  - {name: vm-1-6-v6, match: {vip: vpc-router, vni: 5001, src: \"fd00:1::6\"}, pool: gray-router}\n",
		0, topo.VIP, moved, probetest.GrayPool, probetest.BasePool)
	p := newProber(t, l.ProberConfig(in))
	defer p.Close()
	opts := probe.Options{Count: 3, Interval: 20 * time.Millisecond, Timeout: time.Second}
	check := func(what string, targets []probe.Target, want func(probe.Target) (probe.Status, string)) {
		t.Helper()
		rs := runProbes(t, p, targets, opts)
		v6 := 0
		for _, r := range rs {
			status, by := want(r.Target)
			if r.Status != status || r.AnsweredBy() != by {
				t.Errorf("%s: %v: %s %d/%d answered by %q, want %s by %s: %s", what, r.Target, r.Status, r.Received, r.Sent, r.AnsweredBy(), status, by, r.Reason)
			}
			if r.Target.VM.Is6() {
				v6++
			}
		}
		if v6 == 0 {
			t.Fatalf("%s: no IPv6 target", what)
		}
	}
	check("ICMP and ICMPv6", targets, func(tg probe.Target) (probe.Status, string) {
		if moved(tg) {
			return probe.StatusOK, "gray-1"
		}
		return probe.StatusOK, "base-1"
	})

	// TCP and UDP over IPv6 to a port nothing listens on: a reset, an ICMPv6
	// port unreachable, from the backend that serves each VM.
	for _, proto := range []probe.Proto{probe.ProtoTCP, probe.ProtoUDP} {
		var l4 []probe.Target
		for _, tg := range targets {
			if tg.VM.Is6() {
				tg.Proto, tg.Port = proto, 9
				l4 = append(l4, tg)
			}
		}
		l4, err := probe.Expect(in, res, topo.VIP, l4)
		if err != nil {
			t.Fatal(err)
		}
		check(string(proto)+" over IPv6", l4, func(tg probe.Target) (probe.Status, string) {
			if moved(tg) {
				return probe.StatusRefused, "gray-1"
			}
			return probe.StatusRefused, "base-1"
		})
	}
}

// applyAndExpect applies the lab's intent with rules, and returns it, what it
// compiled to, and the targets of vni (0: every VNI) with probe.Expect's
// expectations towards vip, having checked that those the rules move
// (moved) are expected on gray and the others on base.
func applyAndExpect(t *testing.T, l *probetest.Lab, rules string, vni uint32, vip netip.Addr, moved func(probe.Target) bool,
	gray, base string) (*intent.Intent, *compile.Result, []probe.Target) {
	t.Helper()
	in, res, err := l.ApplyYAML(l.IntentYAML(rules))
	if err != nil {
		t.Fatal(err)
	}
	all, err := probe.Targets(l.VPCs(), vni, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	targets, err := probe.Expect(in, res, vip, all)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range targets {
		if want := map[bool]string{true: gray, false: base}[moved(tg)]; tg.ExpectPool != want {
			t.Fatalf("%v: expected on %s, want %s", tg, tg.ExpectPool, want)
		}
	}
	return in, res, targets
}
