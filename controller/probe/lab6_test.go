package probe_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/topo"
)

// TestIPv6ProbesThroughTheGateway sends ICMPv6 probes (and a TCP one over
// IPv6) from the VMs of a dual-stack VPC through the real XDP gateway (inner
// IPv6 in VXLAN over the IPv4 underlay, issue 19): with the intent's one rule
// moving an IPv4 VM, every IPv6 VM is answered by the base backend, as
// probe.Expect predicts from the compiled tables; a gray_rules_v6 rule
// written straight into the dataplane (compile does not write the IPv6 tables
// yet) moves one IPv6 VM, which the gray backend then answers and no one
// else's probes move; a TCP probe to a closed port over IPv6 is refused.
func TestIPv6ProbesThroughTheGateway(t *testing.T) {
	vpcs := []topo.VPC{{VNI: 5001, Subnet: 1, VMs: []uint8{5, 6}, IPv6: true}, {VNI: 5002, Subnet: 2, VMs: []uint8{5}}}
	l := labtest.Build(t, "network namespaces, XDP and AF_PACKET", func() (*probetest.Lab, error) { return probetest.New("ggprobe6", vpcs) })
	in, res, err := l.ApplyYAML(l.IntentYAML("  - {name: vm-1-5, match: {vip: vpc-router, vni: 5001, src: 192.168.1.5}, pool: gray-router}\n"))
	if err != nil {
		t.Fatal(err)
	}
	all, err := probe.Targets(l.VPCs(), 0, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	targets, err := probe.Expect(in, res, topo.VIP, all)
	if err != nil {
		t.Fatal(err)
	}
	p, err := probe.New(l.ProberConfig(in))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	opts := probe.Options{Count: 3, Interval: 20 * time.Millisecond, Timeout: time.Second}
	vm6 := vpcs[0].VMAddr6(5)
	check := func(what string, targets []probe.Target, want func(probe.Target) (probe.Status, string)) {
		t.Helper()
		rs, err := p.Run(ctx, targets, opts)
		if err != nil {
			t.Fatal(err)
		}
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
	check("IPv4 rule only", targets, func(tg probe.Target) (probe.Status, string) {
		if tg.VM.String() == "192.168.1.5" {
			return probe.StatusOK, "gray-1"
		}
		return probe.StatusOK, "base-1"
	})

	// The IPv6 VM moved by a gray_rules_v6 rule: answered by gray, and
	// expected there; everyone else as before.
	var pool uint16
	for _, pl := range res.Pools {
		if pl.Name == probetest.GrayPool {
			pool = pl.ID
		}
	}
	rule := model.GrayRuleV6{Priority: 1, VIPID: 1, VIPMask: 0xffff, Match: pipeline.FlowKey6{VNI: 5001, Src: vm6.As16()},
		Mask: pipeline.FlowKey6{VNI: pipeline.MaxVNI, Src: pipeline.AllOnes6.Src}, Action: model.SetPool, Pool: pool}
	if err := l.DP.InsertRuleV6(rule); err != nil {
		t.Fatal(err)
	}
	for i := range targets {
		if targets[i].VM == vm6 {
			targets[i].ExpectPool, targets[i].ExpectCluster = probetest.GrayPool, intent.ClusterGray
		}
	}
	check("IPv6 rule", targets, func(tg probe.Target) (probe.Status, string) {
		if tg.VM.String() == "192.168.1.5" || tg.VM == vm6 {
			return probe.StatusOK, "gray-1"
		}
		return probe.StatusOK, "base-1"
	})

	// TCP over IPv6 to a port nothing listens on: the gray backend resets.
	tcp := []probe.Target{{VNI: 5001, VM: vm6, Router: vpcs[0].RouterAddr6(), Proto: probe.ProtoTCP, Port: 9,
		ExpectPool: probetest.GrayPool, ExpectCluster: intent.ClusterGray}}
	check("TCP over IPv6", tcp, func(probe.Target) (probe.Status, string) { return probe.StatusRefused, "gray-1" })
}
