package probe_test

import (
	"testing"

	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/topo"
)

// TestProbesToAnIPv6VIP: probes to an IPv6 VIP through the real XDP gateway
// (a dual-stack VPC over the lab's IPv6 underlay, topo.VPC.Underlay6: VXLAN
// over IPv6, the outer UDP checksum computed by the prober and updated by the
// gateway as it rewrites the destination to a backend's IPv6 underlay
// address, which the backend's kernel checks), from IPv4 and IPv6 VMs. The
// intent's rules move one VM of each family (a gray_rules and a
// gray_rules_v6 rule, compiled and applied); probe.Expect says where every
// probe should go from the compiled tables, and each is answered there, from
// the backend's IPv6 underlay address; vip_v6 counts them.
func TestProbesToAnIPv6VIP(t *testing.T) {
	vpcs := []topo.VPC{{VNI: 5001, Subnet: 1, VMs: []uint8{5}}, {VNI: 5009, Subnet: 9, VMs: []uint8{5, 6}, IPv6: true, Underlay6: true}}
	l := labtest.Build(t, "network namespaces, XDP and AF_PACKET", func() (*probetest.Lab, error) { return probetest.New("ggprobe6v", vpcs) })
	moved := func(tg probe.Target) bool { return tg.VM.String() == "192.168.9.5" || tg.VM.String() == "fd00:9::5" }
	in, _, targets := applyAndExpect(t, l, "  - {name: vm9-5, match: {vip: vpc-router6, vni: 5009, src: 192.168.9.5}, pool: gray-router6}\n"+
		"  - {name: vm9-5-v6, match: {vip: vpc-router6, vni: 5009, src: \"fd00:9::5\"}, pool: gray-router6}\n",
		5009, topo.VIP6, moved, probetest.GrayPool6, probetest.BasePool6)
	p := newProber(t, l.ProberConfig6(in))
	defer p.Close()
	rs := runProbes(t, p, targets, labProbes)
	v6 := 0
	for _, r := range rs {
		want := "base6-1"
		if moved(r.Target) {
			want = "gray6-1"
		}
		if r.Status != probe.StatusOK || r.Received != 3 || r.AnsweredBy() != want {
			t.Errorf("%v: %s %d/%d answered by %q, want ok 3/3 by %s: %s", r.Target, r.Status, r.Received, r.Sent, r.AnsweredBy(), want, r.Reason)
		}
		if r.Target.VM.Is6() {
			v6++
		}
	}
	if v6 != 2 || len(rs) != 4 {
		t.Fatalf("%d targets, %d IPv6: want 4 and 2", len(rs), v6)
	}
	if c, err := l.DP.VIPCounter(topo.VIP6); err != nil || c.Packets < uint64(3*len(targets)) {
		t.Errorf("vip_v6 counter %+v (%v), want at least %d packets", c, err, 3*len(targets))
	}
}
