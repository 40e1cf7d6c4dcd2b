//go:build linux

package bpf_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// TestEndToEndIPv6 forwards real IPv6 frames between network namespaces, as
// TestEndToEnd does IPv4: the client sends IPv6 VXLAN (inner IPv6) and plain
// IPv6 TCP to an IPv6 VIP through the gateway's native XDP (graygw_xdp,
// which tail-calls graygw_xdp6), and a gray_rules_v6 rule moves one VM to the
// gray backend; each arrival is checked (outer dst, hop limit, checksums).
// The namespaces' kernels send no IPv6 of their own (disable_ipv6): what
// arrives is what the gateway forwarded.
func TestEndToEndIPv6(t *testing.T) {
	l := newE2ELab(t, "graygw-e2e6")
	client, gw, base, gray, d := l.client, l.gw, l.base, l.gray, l.d
	noIPv6(t, gw, "g0", "g1", "g2")
	noIPv6(t, base, "b0")
	noIPv6(t, gray, "y0")
	const (
		poolBase, poolGray = 1, 32769
		beBase, beGray     = 11, 21
		vni                = 5001
	)
	vip := netip.MustParseAddr("2001:db8:ffff::1")
	underBase, underGray := netip.MustParseAddr("2001:db8:2::11"), netip.MustParseAddr("2001:db8:3::21")
	vmA, vmB := netip.MustParseAddr("2001:db8:a::5"), netip.MustParseAddr("2001:db8:a::7")
	must(t, d.SetVIP(vip, bpf.VIP{ID: 1, DefaultPool: poolBase}))
	must(t, d.SetTenant(vni, 7))
	must(t, d.SetBackendEntry(beBase, bpf.Backend{Port: portBase, SMAC: mac(t, gw, "g1"), DMAC: mac(t, base, "b0"), IPv6: true, UnderlayIPv6: underBase.As16()}))
	must(t, d.SetBackendEntry(beGray, bpf.Backend{Port: portGray, SMAC: mac(t, gw, "g2"), DMAC: mac(t, gray, "y0"), IPv6: true, UnderlayIPv6: underGray.As16()}))
	for pool, id := range map[uint16]uint16{poolBase: beBase, poolGray: beGray} {
		ids := make([]uint16, pipeline.Buckets)
		for i := range ids {
			ids[i] = id
		}
		must(t, d.SetBuckets(pool, 0, ids))
	}

	tx := openPacket(t, client, "c0")
	rxBase, rxGray := openPacket(t, base, "b0"), openPacket(t, gray, "y0")
	eth := testpkt.Eth{Dst: mac(t, gw, "g0"), Src: mac(t, client, "c0")}
	overlay := func(vm netip.Addr, sport uint16) []byte {
		inner := testpkt.Inner6(testpkt.Eth{}, testpkt.IP6{Src: vm, Dst: netip.MustParseAddr("2001:db8:b::1")}, tcpL4(sport, 80))
		return testpkt.VXLAN6(eth, testpkt.IP6{Src: netip.MustParseAddr("2001:db8:1::1"), Dst: vip}, 40000+sport, vni, inner)
	}
	plain := func(sport uint16) []byte {
		return testpkt.Plain6(eth, testpkt.IP6{Src: vmB, Dst: vip}, tcpL4(sport, 443))
	}
	send := func(frames ...[]byte) {
		t.Helper()
		for _, f := range frames {
			tx.send(t, f)
		}
	}

	// No gray rule: everything goes to base.
	send(overlay(vmA, 1001), overlay(vmB, 2001), plain(3001))
	expectArrivals6(t, rxBase, underBase, 1001, 2001, 3001)
	expectArrivals6(t, rxGray, underGray)

	// VM A moves to gray: only its flows move.
	r := model.GrayRuleV6{Priority: 100, Match: pipeline.FlowKey6{VNI: vni, Src: vmA.As16()}, Action: model.SetPool, Pool: poolGray}
	r.Mask.VNI = pipeline.MaxVNI
	for i := range r.Mask.Src {
		r.Mask.Src[i] = 0xff
	}
	must(t, d.InsertRuleV6(r))
	send(overlay(vmA, 1002), overlay(vmB, 2002), plain(3002))
	expectArrivals6(t, rxGray, underGray, 1002)
	expectArrivals6(t, rxBase, underBase, 2002, 3002)
	if c, err := d.RuleCounterV6(r); err != nil || c.Packets != 1 {
		t.Fatalf("gray_rules_v6 counter %+v %v, want 1 packet", c, err)
	}

	// A hop limit of 1 is dropped and counted.
	before, err := d.DropCounters()
	must(t, err)
	hl1 := overlay(vmB, 2003)
	hl1[14+7] = 1
	send(hl1)
	expectArrivals6(t, rxBase, underBase)
	after, err := d.DropCounters()
	must(t, err)
	if n := after[pipeline.TTLExpired].Packets - before[pipeline.TTLExpired].Packets; n != 1 {
		t.Errorf("drop_reasons[TTL_EXPIRED] += %d, want 1", n)
	}
}

// expectArrivals6 is expectArrivals for IPv6 outer frames: exactly the flows
// sports reach s, each to underlay with hop limit 63 and valid checksums.
// The lab's kernels send no IPv6, so every IPv6 frame counts.
func expectArrivals6(t *testing.T, s *packetSock, underlay netip.Addr, sports ...uint16) {
	t.Helper()
	expectFrames(t, s, underlay, 0x86dd, checkRewritten6, sports...)
}

// checkRewritten6 checks a forwarded IPv6 frame and returns its flow's source
// port (the inner one for VXLAN).
func checkRewritten6(f []byte, underlay netip.Addr) (uint16, error) {
	if len(f) < 14+40+20 {
		return 0, fmt.Errorf("%d bytes: too short for IPv6 and its L4 header", len(f))
	}
	ip := f[14:]
	if dst := netip.AddrFrom16([16]byte(ip[24:40])); dst != underlay {
		return 0, fmt.Errorf("outer dst %v, want %v", dst, underlay)
	}
	if ip[7] != 63 {
		return 0, fmt.Errorf("hop limit %d, want 63", ip[7])
	}
	if !testpkt.L4ChecksumOK6(ip) {
		return 0, errors.New("bad L4 checksum after the rewrite")
	}
	l4 := ip[40:]
	if ip[6] == testpkt.ProtoUDP && binary.BigEndian.Uint16(l4[2:]) == pipeline.VXLANPort {
		in := l4[8+8+14:]
		if !testpkt.L4ChecksumOK6(in) {
			return 0, errors.New("inner packet damaged")
		}
		return binary.BigEndian.Uint16(in[40:]), nil
	}
	return binary.BigEndian.Uint16(l4), nil
}
