package probe_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/topo"
)

// The IPv6 underlay this test adds to the probetest lab (unique local, nodad):
// the hypervisor fd00:f1::10 behind the gateway's p1 fd00:f1::1, the base
// backend fd00:f2::11 behind p2 fd00:f2::1, the gray one fd00:f3::21 behind
// p3; VPC 5009 lives on the backends' VXLAN devices over IPv6 only.
var (
	vip6     = netip.MustParseAddr("fd00:ff::1")
	hv6      = netip.MustParseAddr("fd00:f1::10")
	base6    = netip.MustParseAddr("fd00:f2::11")
	gray6    = netip.MustParseAddr("fd00:f3::21")
	router94 = netip.MustParseAddr("192.168.9.1")
	router96 = netip.MustParseAddr("fd00:9::1")
)

// TestProbesToAnIPv6VIP: probes to an IPv6 VIP through the real XDP gateway
// (VXLAN over IPv6, outer UDP checksum computed; the gateway rewrites the
// outer destination to a backend's IPv6 underlay address and updates that
// checksum, as the backend's kernel checks), for IPv4 and IPv6 VMs: the VMs
// the rules move (a gray_rules rule for the IPv4 VM, a gray_rules_v6 one for
// the IPv6 VM) are answered by the gray backend, the others by base, each
// answer read from the backend's IPv6 underlay address. The IPv6 tables are
// written straight into the dataplane: compile does not write them yet.
func TestProbesToAnIPv6VIP(t *testing.T) {
	l := labtest.Build(t, "network namespaces, XDP and AF_PACKET", func() (*probetest.Lab, error) { return probetest.New("ggprobe6v", nil) })
	tp := l.Topo
	labtest.Script(t, tp.Lab, tp.GW, `
		sysctl -qw net.ipv6.conf.all.forwarding=1
		ip addr add fd00:f1::1/64 dev p1 nodad
		ip addr add fd00:f2::1/64 dev p2 nodad
		ip addr add fd00:f3::1/64 dev p3 nodad`)
	labtest.Script(t, tp.Lab, tp.HV, `
		ip addr add fd00:f1::10/64 dev h0 nodad
		ip -6 route add default via fd00:f1::1`)
	hvMAC, err := tp.Lab.MAC(tp.HV, "h0")
	if err != nil {
		t.Fatal(err)
	}
	for _, be := range []struct{ ns, dev, addr, gw string }{
		{tp.Base, "b0", base6.String(), "fd00:f2::1"}, {tp.Gray, "g0", gray6.String(), "fd00:f3::1"}} {
		labtest.Script(t, tp.Lab, be.ns, fmt.Sprintf(`
			ip addr add %[1]s/64 dev %[2]s nodad
			ip -6 route add default via %[3]s
			ip link add vx9 type vxlan id 5009 local %[1]s dstport 4789 nolearning
			ip link set vx9 address %[4]s
			ip link set vx9 up
			ip addr add 192.168.9.1/24 dev vx9
			ip addr add fd00:9::1/64 dev vx9 nodad
			bridge fdb append %[5]s dev vx9 dst %[6]s
			ip neigh add 192.168.9.5 lladdr %[5]s dev vx9 nud permanent
			ip neigh add 192.168.9.6 lladdr %[5]s dev vx9 nud permanent
			ip -6 neigh add fd00:9::5 lladdr %[5]s dev vx9 nud permanent
			ip -6 neigh add fd00:9::6 lladdr %[5]s dev vx9 nud permanent`,
			be.addr, be.dev, be.gw, topo.RouterMAC, hvMAC, hv6))
	}

	// The IPv6 VIP: default pool 3 (base over IPv6), pool 4 (gray) for the
	// two moved VMs.
	mac := func(s string) [6]byte {
		hw, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return [6]byte(hw)
	}
	dp := l.DP
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(dp.SetBackendEntry(31, bpf.Backend{Port: topo.PortBase, SMAC: mac(tp.PortMAC[topo.PortBase]), DMAC: mac(tp.BaseMAC),
		IPv6: true, UnderlayIPv6: base6.As16()}))
	must(dp.SetBackendEntry(41, bpf.Backend{Port: topo.PortGray, SMAC: mac(tp.PortMAC[topo.PortGray]), DMAC: mac(tp.GrayMAC),
		IPv6: true, UnderlayIPv6: gray6.As16()}))
	for pool, be := range map[uint16]uint16{3: 31, 4: 41} {
		ids := make([]uint16, pipeline.Buckets)
		for i := range ids {
			ids[i] = be
		}
		must(dp.SetBuckets(pool, 0, ids))
	}
	must(dp.SetTenant(5009, 7))
	must(dp.SetVIP(vip6, bpf.VIP{ID: 2, DefaultPool: 3}))
	must(dp.InsertRule(model.GrayRule{Priority: 1, VIPID: 2, VIPMask: 0xffff, Match: pipeline.FlowKey{VNI: 5009, Src: 0xc0a80905},
		Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: 0xffffffff}, Action: model.SetPool, Pool: 4}))
	must(dp.InsertRuleV6(model.GrayRuleV6{Priority: 1, VIPID: 2, VIPMask: 0xffff,
		Match: pipeline.FlowKey6{VNI: 5009, Src: netip.MustParseAddr("fd00:9::5").As16()},
		Mask:  pipeline.FlowKey6{VNI: pipeline.MaxVNI, Src: pipeline.AllOnes6.Src}, Action: model.SetPool, Pool: 4}))

	p, err := probe.New(probe.Config{VIP: vip6, NetNS: tp.HV, Interface: "h0", Source: hv6,
		GatewayMAC: tp.PortMAC[topo.PortHV], RouterMAC: topo.RouterMAC,
		Backends: []probe.Backend{{Name: "base-6", Underlay: base6, Cluster: intent.ClusterBase},
			{Name: "gray-6", Underlay: gray6, Cluster: intent.ClusterGray}}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	vpc := probe.VPC{VNI: 5009, Router: router94, Dests: []netip.Addr{router94, router96},
		VMs: []netip.Addr{netip.MustParseAddr("192.168.9.5"), netip.MustParseAddr("192.168.9.6"),
			netip.MustParseAddr("fd00:9::5"), netip.MustParseAddr("fd00:9::6")}}
	targets, err := probe.Targets([]probe.VPC{vpc}, 0, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	moved := func(tg probe.Target) bool { return tg.VM.String() == "192.168.9.5" || tg.VM.String() == "fd00:9::5" }
	for i := range targets {
		targets[i].ExpectCluster = intent.ClusterBase
		if moved(targets[i]) {
			targets[i].ExpectCluster = intent.ClusterGray
		}
	}
	rs, err := p.Run(context.Background(), targets, probe.Options{Count: 3, Interval: 20 * time.Millisecond, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		want := "base-6"
		if moved(r.Target) {
			want = "gray-6"
		}
		if r.Status != probe.StatusOK || r.Received != 3 || r.AnsweredBy() != want {
			t.Errorf("%v: %s %d/%d answered by %q, want ok 3/3 by %s: %s", r.Target, r.Status, r.Received, r.Sent, r.AnsweredBy(), want, r.Reason)
		}
	}
	if c, err := dp.VIPCounter(vip6); err != nil || c.Packets < uint64(3*len(targets)) {
		t.Errorf("vip_v6 counter %+v (%v), want at least %d packets", c, err, 3*len(targets))
	}
}
