package probe

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/compile/compiletest"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/internal/checksum"
	"github.com/graygw/graygw/model"
)

var (
	vm5    = netip.MustParseAddr("192.168.1.5")
	router = netip.MustParseAddr("192.168.1.1")
	vip    = netip.MustParseAddr("10.255.0.1")
)

// answer turns a probe frame into the reply a kernel VXLAN backend would send.
func answer(req []byte, backend netip.Addr) []byte {
	f, ii := swapped(req, backend)
	ic := ii[ipv4Len:]
	ic[0] = icmpEchoRep
	ic[2], ic[3] = 0, 0
	binary.BigEndian.PutUint16(ic[2:], checksum.Internet(ic))
	return f
}

// swapped copies a probe frame as sent back by backend to the hypervisor:
// outer addresses the backend's and the hypervisor's, inner addresses
// swapped. It returns the frame and its inner IPv4 packet.
func swapped(req []byte, backend netip.Addr) (f, ii []byte) {
	f = append([]byte(nil), req...)
	ip := f[ethLen:]
	copy(ip[12:16], backend.AsSlice())
	copy(ip[16:20], []byte{10, 1, 0, 10})
	ii = ip[ipv4Len+udpLen+vxlanLen+ethLen:]
	var s, d [4]byte
	copy(s[:], ii[12:16])
	copy(d[:], ii[16:20])
	copy(ii[12:16], d[:])
	copy(ii[16:20], s[:])
	return f, ii
}

func TestEchoFrameParsesAsTheModelSeesIt(t *testing.T) {
	f := buildEcho(&echo{outerSrc: netip.MustParseAddr("10.1.0.10"), outerDst: vip, sport: 50000,
		vni: 5001, innerSrc: vm5, innerDst: router, ident: 7, seq: 9})
	if len(f) != frameLen {
		t.Fatalf("frame is %d bytes, want %d", len(f), frameLen)
	}
	p := model.Parse(f)
	if p.Reason != 0 || !p.Overlay || p.Flow.VNI != 5001 || p.Flow.Src != 0xc0a80105 || p.Flow.Dst != 0xc0a80101 || p.Flow.Proto != 1 {
		t.Fatalf("model parse: %+v", p)
	}
	if checksum.Internet(f[ethLen:ethLen+ipv4Len]) != 0 {
		t.Error("outer IPv4 checksum does not verify")
	}
	ic := f[ethLen+ipv4Len+udpLen+vxlanLen+ethLen+ipv4Len:]
	if checksum.Internet(ic) != 0 {
		t.Error("ICMP checksum does not verify")
	}
	r, ok := parseReply(answer(f, netip.MustParseAddr("10.3.0.21")))
	if !ok {
		t.Fatal("the answer to a probe is not recognised")
	}
	want := reply{outerSrc: netip.MustParseAddr("10.3.0.21"), vni: 5001, routerSrc: router, vm: vm5, ident: 7, seq: 9, proto: ProtoICMP}
	if r != want {
		t.Fatalf("reply %+v, want %+v", r, want)
	}
	if _, ok := parseReply(f); ok {
		t.Error("an echo request was taken for a reply")
	}
}

func TestParseReplyNeverReadsPastTheEnd(t *testing.T) {
	f := answer(buildEcho(&echo{outerSrc: vip, outerDst: vip, vni: 1, innerSrc: vm5, innerDst: router}), vip)
	for n := 0; n < len(f); n++ {
		if _, ok := parseReply(f[:n]); ok {
			t.Errorf("a %d-byte prefix of a reply was accepted", n)
		}
	}
	frag := append([]byte(nil), f...)
	frag[ethLen+6] = 0x20 // MF
	if _, ok := parseReply(frag); ok {
		t.Error("a fragment was accepted")
	}
}

func TestOptions(t *testing.T) {
	if err := (Options{}).WithDefaults().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, o := range []Options{{Count: MaxCount + 1}, {Count: -1}, {Interval: MaxInterval * 2}, {Timeout: MaxTimeout + 1}, {Count: 3, MaxLoss: 3}} {
		if err := o.WithDefaults().Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", o, err)
		}
	}
}

func TestTargets(t *testing.T) {
	vpcs := []VPC{
		{VNI: 5001, Router: router, VMs: []netip.Addr{vm5, netip.MustParseAddr("192.168.1.6")}},
		{VNI: 5002, Router: netip.MustParseAddr("192.168.2.1"), VMs: []netip.Addr{netip.MustParseAddr("192.168.2.5")}},
	}
	if all, err := Targets(vpcs, 0, netip.Addr{}); err != nil || len(all) != 3 {
		t.Fatalf("all: %v %v", all, err)
	}
	if one, err := Targets(vpcs, 5001, vm5); err != nil || len(one) != 1 || one[0].Router != router {
		t.Fatalf("one VM: %v %v", one, err)
	}
	if _, err := Targets(vpcs, 7777, netip.Addr{}); !errors.Is(err, ErrTarget) || !strings.Contains(err.Error(), "unknown VNI 7777") {
		t.Errorf("unknown VNI: %v", err)
	}
	if _, err := Targets(vpcs, 5002, vm5); !errors.Is(err, ErrTarget) {
		t.Errorf("VM of another VNI: %v", err)
	}
}

// labWorld is the lab's gateway, VIP and pools (base-1, gray-1), without
// rules: labIntent and invIntent add theirs.
var labWorld = intenttest.Router().YAML()

var labIntent = labWorld + `gray_rules:
  - {name: vm, match: {vip: vpc-router, vni: 5001, src: 192.168.1.5}, pool: gray-router}
  - {name: vpc, match: {vip: vpc-router, vni: 5003}, pool: gray-router}
`

func TestExpectFollowsTheCompiledTables(t *testing.T) {
	in, res := compiletest.Doc(t, labIntent)
	targets := []Target{
		{VNI: 5001, VM: vm5, Router: router},
		{VNI: 5001, VM: netip.MustParseAddr("192.168.1.6"), Router: router},
		{VNI: 5003, VM: netip.MustParseAddr("192.168.3.9"), Router: netip.MustParseAddr("192.168.3.1")},
	}
	got, err := Expect(in, res, vip, targets)
	if err != nil {
		t.Fatal(err)
	}
	want := []intent.Cluster{intent.ClusterGray, intent.ClusterBase, intent.ClusterGray}
	for i, w := range want {
		if got[i].ExpectCluster != w {
			t.Errorf("%v: expect %s, want %s", got[i], got[i].ExpectCluster, w)
		}
	}
	if _, err := Expect(in, res, netip.MustParseAddr("10.9.9.9"), targets); !errors.Is(err, ErrNoRoute) {
		t.Errorf("probe to a non-VIP: %v, want ErrNoRoute", err)
	}
	bs := BackendsFromIntent(in)
	if len(bs) != 2 || bs[0].Name != "base-1" || bs[0].Cluster != intent.ClusterBase || bs[1].Pools[0] != "gray-router" {
		t.Errorf("backends: %+v", bs)
	}
}

func TestResultVerdicts(t *testing.T) {
	p := &Prober{backends: map[netip.Addr]Backend{
		netip.MustParseAddr("10.2.0.11"): {Name: "base-1", Cluster: intent.ClusterBase, Pools: []string{"base-router"}},
		netip.MustParseAddr("10.3.0.21"): {Name: "gray-1", Cluster: intent.ClusterGray, Pools: []string{"gray-router"}},
	}}
	tg := []Target{
		{VNI: 1, VM: vm5, Router: router, ExpectCluster: intent.ClusterGray},
		{VNI: 1, VM: vm5, Router: router, ExpectCluster: intent.ClusterGray},
		{VNI: 1, VM: vm5, Router: router, ExpectCluster: intent.ClusterBase},
		{VNI: 1, VM: vm5, Router: router},
	}
	o := Options{Count: 2, MaxLoss: 1}.WithDefaults()
	rec := &record{sent: make([]time.Time, 8), rtt: make([]time.Duration, 8), answers: make([]map[netip.Addr]int, 4)}
	for i := range rec.sent {
		rec.sent[i] = time.Now()
	}
	rec.answers[0] = map[netip.Addr]int{netip.MustParseAddr("10.3.0.21"): 2}
	rec.rtt[0], rec.rtt[4] = 1000, 3000
	rec.answers[1] = map[netip.Addr]int{}
	rec.answers[2] = map[netip.Addr]int{netip.MustParseAddr("10.3.0.21"): 1}
	rec.rtt[2] = 500
	rec.answers[3] = map[netip.Addr]int{netip.MustParseAddr("10.9.9.9"): 1}
	rec.rtt[3] = 500
	rs := p.results(tg, o, rec)
	if rs[0].Status != StatusOK || rs[0].RTTAvg != 2000 || rs[0].AnsweredBy() != "gray-1" {
		t.Errorf("answered by gray: %+v", rs[0])
	}
	if rs[1].Status != StatusLost || !strings.Contains(rs[1].Reason, "2 of 2") {
		t.Errorf("unanswered: %+v", rs[1])
	}
	if rs[2].Status != StatusWrongBackend || !strings.Contains(rs[2].Reason, "gray-1 10.3.0.21 (gray); expected base cluster") {
		t.Errorf("wrong cluster: %+v", rs[2])
	}
	if rs[3].Status != StatusWrongBackend || !strings.Contains(rs[3].Reason, "no known backend") {
		t.Errorf("unknown answerer: %+v", rs[3])
	}
	if bad := Failed(rs); len(bad) != 3 || bad[0].Status != StatusLost || bad[1].Reason != rs[2].Reason || bad[2].Reason != rs[3].Reason {
		t.Errorf("Failed = %+v; want the last three results, in order", bad)
	}
}

// answerL4 turns a TCP or UDP probe frame into what a kernel VXLAN backend
// sends back: a SYN-ACK (or, refused, a reset) acknowledging the SYN, or
// the datagram echoed.
func answerL4(t *testing.T, req []byte, backend netip.Addr, refused bool) []byte {
	t.Helper()
	f, ii := swapped(req, backend)
	l := ii[ipv4Len:]
	sp, dp := binary.BigEndian.Uint16(l[0:]), binary.BigEndian.Uint16(l[2:])
	binary.BigEndian.PutUint16(l[0:], dp)
	binary.BigEndian.PutUint16(l[2:], sp)
	if ii[9] == protoTCP {
		isn := binary.BigEndian.Uint32(l[4:])
		binary.BigEndian.PutUint32(l[4:], 777)
		binary.BigEndian.PutUint32(l[8:], isn+1)
		l[13] = tcpSYN | tcpACK
		if refused {
			l[13] = tcpRST | tcpACK
		}
	}
	return f
}

// TCP and UDP probes: the frames are what the model parses as the VM's flow
// to the port (checksums verify), and the backend's answers are recognised:
// a SYN-ACK and a reset (refused) naming the probe by their acknowledgement,
// the UDP echo by its payload.
func TestTCPAndUDPProbeFrames(t *testing.T) {
	for _, proto := range []Proto{ProtoTCP, ProtoUDP} {
		sp := innerPort(5001, vm5, proto, 443)
		f := buildEcho(&echo{outerSrc: netip.MustParseAddr("10.1.0.10"), outerDst: vip, sport: 50000,
			vni: 5001, innerSrc: vm5, innerDst: router, ident: 7, seq: 9, proto: proto, port: 443, innerSport: sp})
		p := model.Parse(f)
		wantProto := uint8(protoTCP)
		if proto == ProtoUDP {
			wantProto = protoUDP
		}
		if p.Reason != 0 || !p.Overlay || p.Flow.VNI != 5001 || p.Flow.Proto != wantProto || p.Flow.SPort != sp || p.Flow.DPort != 443 {
			t.Fatalf("%s: model parse: %+v", proto, p)
		}
		ii := f[ethLen+ipv4Len+udpLen+vxlanLen+ethLen:]
		if checksum.Internet(ii[:ipv4Len]) != 0 {
			t.Errorf("%s: inner IPv4 checksum does not verify", proto)
		}
		l := ii[ipv4Len:]
		if got := checksum.L4(wantProto, vm5, router, l); got != 0 {
			t.Errorf("%s: checksum does not verify (%#x)", proto, got)
		}
		for _, refused := range []bool{false, true} {
			if refused && proto == ProtoUDP {
				continue
			}
			r, ok := parseReply(answerL4(t, f, netip.MustParseAddr("10.3.0.21"), refused))
			if !ok || r.proto != proto || r.ident != 7 || r.seq != 9 || r.port != 443 || r.vmPort != sp || r.refused != refused ||
				r.vm != vm5 || r.routerSrc != router || r.outerSrc != netip.MustParseAddr("10.3.0.21") {
				t.Errorf("%s refused=%v: parsed %+v, %v", proto, refused, r, ok)
			}
		}
		// A SYN is no answer (a UDP probe parses as one, from the VM's
		// address and port: receive takes only the router's, from the port).
		if r, ok := parseReply(f); ok && proto == ProtoTCP {
			t.Errorf("%s: the probe itself parsed as an answer: %+v", proto, r)
		}
	}
	// A UDP probe refused: the backend's ICMP port unreachable quotes the
	// probe's IPv4 header (id: the probe's number) and 8 bytes of its UDP.
	sp := innerPort(5001, vm5, ProtoUDP, 53)
	f := buildEcho(&echo{outerSrc: netip.MustParseAddr("10.1.0.10"), outerDst: vip, sport: 50000,
		vni: 5001, innerSrc: vm5, innerDst: router, ident: 7, seq: 9, proto: ProtoUDP, port: 53, innerSport: sp})
	un, ii := swapped(f, netip.MustParseAddr("10.2.0.11"))
	quote := append([]byte(nil), f[ethLen+ipv4Len+udpLen+vxlanLen+ethLen:][:ipv4Len+8]...)
	ic := append([]byte{icmpUnreach, icmpPortUnr, 0, 0, 0, 0, 0, 0}, quote...)
	binary.BigEndian.PutUint16(ic[2:], checksum.Internet(ic))
	un = append(un[:len(un)-len(ii)+ipv4Len], ic...)
	pkt := un[ethLen+ipv4Len+udpLen+vxlanLen+ethLen:]
	pkt[9] = protoICMP
	binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
	binary.BigEndian.PutUint16(un[ethLen+2:], uint16(len(un)-ethLen))                 // outer IPv4 length
	binary.BigEndian.PutUint16(un[ethLen+ipv4Len+4:], uint16(len(un)-ethLen-ipv4Len)) // outer UDP length
	r, ok := parseReply(un)
	if !ok || r.proto != ProtoUDP || !r.refused || !r.anyRun || r.seq != 9 || r.port != 53 || r.vmPort != sp || r.vm != vm5 || r.routerSrc != router {
		t.Errorf("port unreachable: parsed %+v, %v", r, ok)
	}

	// The reset that closes an answered connection.
	e := &echo{outerSrc: netip.MustParseAddr("10.1.0.10"), outerDst: vip, vni: 5001, innerSrc: vm5, innerDst: router,
		proto: ProtoTCP, port: 80, innerSport: 40000, tcpFlags: tcpRST | tcpACK, tcpSeq: 100, tcpAck: 778}
	l := buildEcho(e)[ethLen+ipv4Len+udpLen+vxlanLen+ethLen+ipv4Len:]
	if l[13] != tcpRST|tcpACK || binary.BigEndian.Uint32(l[4:]) != 100 || binary.BigEndian.Uint32(l[8:]) != 778 {
		t.Errorf("reset: flags %#x seq %d ack %d", l[13], binary.BigEndian.Uint32(l[4:]), binary.BigEndian.Uint32(l[8:]))
	}
	if got := (Target{VNI: 5001, VM: vm5, Proto: ProtoTCP, Port: 80}).String(); got != "5001/192.168.1.5 tcp/80" {
		t.Errorf("String = %q", got)
	}
}

// Expect runs a TCP or UDP probe's own flow through the tables: a rule on
// a destination port sends that port's probes to gray, the VM's ICMP and
// other ports stay on base.
func TestExpectFollowsPortRules(t *testing.T) {
	in, res := compiletest.Doc(t, strings.Replace(labIntent, "  - {name: vpc, match: {vip: vpc-router, vni: 5003}, pool: gray-router}\n",
		"  - {name: https, match: {vip: vpc-router, vni: 5002, proto: tcp, dport: 443}, pool: gray-router}\n", 1))
	vm := netip.MustParseAddr("192.168.2.5")
	r2 := netip.MustParseAddr("192.168.2.1")
	got, err := Expect(in, res, vip, []Target{
		{VNI: 5002, VM: vm, Router: r2},
		{VNI: 5002, VM: vm, Router: r2, Proto: ProtoTCP, Port: 443},
		{VNI: 5002, VM: vm, Router: r2, Proto: ProtoTCP, Port: 80},
		{VNI: 5002, VM: vm, Router: r2, Proto: ProtoUDP, Port: 443},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range []intent.Cluster{intent.ClusterBase, intent.ClusterGray, intent.ClusterBase, intent.ClusterBase} {
		if got[i].ExpectCluster != w {
			t.Errorf("%v: expect %s, want %s", got[i], got[i].ExpectCluster, w)
		}
	}
	if _, err := Expect(in, res, vip, []Target{{VNI: 5002, VM: vm, Router: r2, Proto: ProtoTCP}}); !errors.Is(err, ErrTarget) {
		t.Errorf("a TCP probe without a port: %v, want ErrTarget", err)
	}
}
