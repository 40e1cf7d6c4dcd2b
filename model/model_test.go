package model

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/pipeline"
)

// These tests state the pipeline's semantics independently of the generated vectors.

var (
	vip     = netip.MustParseAddr("10.255.0.1")
	vtep    = netip.MustParseAddr("10.1.0.10")
	gwEth   = testpkt.Eth{Dst: testpkt.MAC("02:00:00:00:00:01"), Src: testpkt.MAC("02:00:00:00:00:aa")}
	vmEth   = testpkt.Eth{Dst: testpkt.MAC("02:00:00:00:10:fe"), Src: testpkt.MAC("02:00:00:00:10:01")}
	beBase  = Backend{Port: 1, SMAC: testpkt.MAC("02:00:00:00:01:01"), DMAC: testpkt.MAC("02:00:00:00:0b:0b"), UnderlayIP: 0x0a02000b}
	beGray  = Backend{Port: 3, SMAC: testpkt.MAC("02:00:00:00:03:03"), DMAC: testpkt.MAC("02:00:00:00:15:15"), UnderlayIP: 0x0a030015}
	vipAddr = binary.BigEndian.Uint32(vip.AsSlice())
)

const (
	poolBase = 1
	poolGray = 2
)

// state: one VIP on the base pool; base pool all buckets -> backend 1, gray -> 2.
func newTestState() *State {
	s := NewState()
	s.VIPs[vipAddr] = VIP{ID: 1, DefaultPool: poolBase}
	s.Backends[1], s.Backends[2] = beBase, beGray
	for b := 0; b < pipeline.Buckets; b++ {
		s.BackendSelect[SelectKey{poolBase, uint16(b)}] = 1
		s.BackendSelect[SelectKey{poolGray, uint16(b)}] = 2
	}
	return s
}

func overlay(vni uint32, src, dst string, l4 testpkt.L4) []byte {
	inner := testpkt.Inner(vmEth, testpkt.IP{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst)}, l4)
	return testpkt.VXLAN(gwEth, testpkt.IP{Src: vtep, Dst: vip}, 50000, vni, inner)
}

func tcp(sport, dport uint16) testpkt.L4 {
	return testpkt.L4{Proto: testpkt.ProtoTCP, SPort: sport, DPort: dport}
}

func ip(s string) uint32 { return binary.BigEndian.Uint32(netip.MustParseAddr(s).AsSlice()) }

func vmRule(prio int32, vni uint32, src string, pool uint16) GrayRule {
	return GrayRule{Priority: prio, VIPMask: 0,
		Match: pipeline.FlowKey{VNI: vni, Src: ip(src)}, Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: 0xffffffff},
		Action: SetPool, Pool: pool}
}

func TestVIPMissIsNotForUs(t *testing.T) {
	s := newTestState()
	delete(s.VIPs, vipAddr)
	r := Process(s, overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1, 2)))
	if r.Verdict != NotForUs || r.Reason != pipeline.NotVIP || r.VIPHit {
		t.Fatalf("got %v %v hit=%v, want pass NOT_VIP", r.Verdict, r.Reason, r.VIPHit)
	}
}

func TestTenantMappingAndDefault(t *testing.T) {
	s := newTestState()
	s.Tenants[5001] = 7
	if r := Process(s, overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1, 2))); r.Flow.Tenant != 7 {
		t.Fatalf("tenant = %d, want 7", r.Flow.Tenant)
	}
	if r := Process(s, overlay(6000, "10.0.0.5", "192.168.1.1", tcp(1, 2))); r.Flow.Tenant != 0 {
		t.Fatalf("unmapped VNI: tenant = %d, want 0", r.Flow.Tenant)
	}
}

func TestGrayRuleMovesOnlyItsVM(t *testing.T) {
	s := newTestState()
	s.GrayRules = []GrayRule{vmRule(10, 5001, "10.0.0.5", poolGray)}
	moved := Process(s, overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80)))
	if moved.Pool != poolGray || moved.BackendID != 2 || moved.Port != beGray.Port {
		t.Fatalf("moved VM: pool %d backend %d port %d, want gray", moved.Pool, moved.BackendID, moved.Port)
	}
	for _, f := range [][]byte{
		overlay(5001, "10.0.0.6", "192.168.1.1", tcp(1000, 80)), // other VM, same VNI
		overlay(5002, "10.0.0.5", "192.168.1.1", tcp(1000, 80)), // same address, other VNI
	} {
		if r := Process(s, f); r.Pool != poolBase || r.Rule != -1 {
			t.Fatalf("unrelated flow moved: pool %d rule %d", r.Pool, r.Rule)
		}
	}
}

func TestHighestPriorityWinsRegardlessOfOrder(t *testing.T) {
	wide := GrayRule{Priority: 10, Match: pipeline.FlowKey{VNI: 5001}, Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI}, Action: SetPool, Pool: poolGray}
	narrow := vmRule(20, 5001, "10.0.0.5", poolBase)
	for _, order := range [][]GrayRule{{wide, narrow}, {narrow, wide}} {
		s := newTestState()
		s.GrayRules = order
		r := Process(s, overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1, 2)))
		if r.Pool != poolBase || s.GrayRules[r.Rule].Priority != 20 {
			t.Fatalf("order %v: pool %d rule prio %d, want the priority-20 rule", order, r.Pool, s.GrayRules[r.Rule].Priority)
		}
		r = Process(s, overlay(5001, "10.0.0.9", "192.168.1.1", tcp(1, 2)))
		if r.Pool != poolGray {
			t.Fatalf("other VM of the VNI: pool %d, want gray via the wide rule", r.Pool)
		}
	}
}

func TestSplitIsStickyPerVMAndTracksThreshold(t *testing.T) {
	s := newTestState()
	s.GrayRules = []GrayRule{{Priority: 1, Match: pipeline.FlowKey{VNI: 7000}, Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI},
		Action: SplitPool, Pool: poolGray, Threshold: 16384}} // 25%
	gray := 0
	const vms = 2000
	for i := 0; i < vms; i++ {
		src := netip.AddrFrom4([4]byte{10, 7, byte(i >> 8), byte(i)}).String()
		first := Process(s, overlay(7000, src, "192.168.1.1", tcp(1000, 80))).Pool
		// Every flow of the VM, whatever its ports and destination, is on the same side.
		for _, f := range [][]byte{overlay(7000, src, "8.8.8.8", tcp(2000, 443)), overlay(7000, src, "1.1.1.1", testpkt.L4{Proto: testpkt.ProtoICMP})} {
			if p := Process(s, f).Pool; p != first {
				t.Fatalf("VM %s split across pools %d and %d", src, first, p)
			}
		}
		if first == poolGray {
			gray++
		}
	}
	if share := float64(gray) / vms; share < 0.22 || share > 0.28 {
		t.Fatalf("gray share %.3f for a 25%% threshold", share)
	}
	// Raising the threshold only ever moves VMs towards gray.
	s.GrayRules[0].Threshold = 32768
	for i := 0; i < vms; i++ {
		src := netip.AddrFrom4([4]byte{10, 7, byte(i >> 8), byte(i)}).String()
		s.GrayRules[0].Threshold = 16384
		before := Process(s, overlay(7000, src, "192.168.1.1", tcp(1, 2))).Pool
		s.GrayRules[0].Threshold = 32768
		after := Process(s, overlay(7000, src, "192.168.1.1", tcp(1, 2))).Pool
		if before == poolGray && after != poolGray {
			t.Fatalf("VM %s left gray when the threshold grew", src)
		}
	}
}

func TestHashMaskSelectsFields(t *testing.T) {
	s := newTestState()
	for b := 0; b < pipeline.Buckets; b++ { // spread pool 1 over 4096 distinct backends
		s.BackendSelect[SelectKey{poolBase, uint16(b)}] = uint16(100 + b)
		s.Backends[uint16(100+b)] = beBase
	}
	a := overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80))
	b := overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1001, 80))
	if Process(s, a).Bucket == Process(s, b).Bucket {
		t.Skip("the two flows collide in the full hash; pick other ports")
	}
	s.PoolHash[poolBase] = pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: 0xffffffff}
	ra, rb := Process(s, a), Process(s, b)
	if ra.Bucket != rb.Bucket {
		t.Fatalf("vni+src mask: buckets %d and %d differ for one VM", ra.Bucket, rb.Bucket)
	}
	want := pipeline.FlowKey{VNI: 5001, Src: ip("10.0.0.5")}
	if ra.HashKey != want || ra.Bucket != want.Bucket() {
		t.Fatalf("hash key %+v bucket %d, want %+v bucket %d", ra.HashKey, ra.Bucket, want, want.Bucket())
	}
}

func TestRewrite(t *testing.T) {
	s := newTestState()
	in := overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80))
	r := Process(s, in)
	if r.Verdict != Forward {
		t.Fatalf("verdict %v %v", r.Verdict, r.Reason)
	}
	out := r.Frame
	if len(out) != len(in) {
		t.Fatalf("length changed %d -> %d", len(in), len(out))
	}
	if [6]byte(out[0:6]) != beBase.DMAC || [6]byte(out[6:12]) != beBase.SMAC {
		t.Fatalf("MACs %x %x", out[0:6], out[6:12])
	}
	if got := binary.BigEndian.Uint32(out[30:34]); got != beBase.UnderlayIP {
		t.Fatalf("outer dst %#x", got)
	}
	if out[22] != in[22]-1 {
		t.Fatalf("TTL %d -> %d", in[22], out[22])
	}
	if testpkt.Checksum(out[14:34]) != 0 {
		t.Fatal("outer IPv4 checksum invalid")
	}
	if out[40] != 0 || out[41] != 0 {
		t.Fatal("outer UDP checksum not zeroed")
	}
	if string(out[42:]) != string(in[42:]) {
		t.Fatal("VXLAN or inner frame changed")
	}
	if string(in[26:30]) != string(out[26:30]) {
		t.Fatal("outer source changed")
	}
}

func TestPlainL4ChecksumsStayValid(t *testing.T) {
	s := newTestState()
	src := netip.MustParseAddr("198.51.100.7")
	for _, l4 := range []testpkt.L4{
		{Proto: testpkt.ProtoTCP, SPort: 40000, DPort: 443, Payload: []byte("hello")},
		{Proto: testpkt.ProtoUDP, SPort: 40000, DPort: 53, Payload: []byte("odd")},
		{Proto: testpkt.ProtoICMP, SPort: 1, DPort: 2},
	} {
		in := testpkt.Plain(gwEth, testpkt.IP{Src: src, Dst: vip}, l4)
		r := Process(s, in)
		if r.Verdict != Forward {
			t.Fatalf("proto %d: %v %v", l4.Proto, r.Verdict, r.Reason)
		}
		if !testpkt.L4ChecksumOK(r.Frame[14:]) && l4.Proto != testpkt.ProtoICMP {
			t.Fatalf("proto %d: L4 checksum invalid after rewrite", l4.Proto)
		}
		if l4.Proto == testpkt.ProtoICMP && testpkt.Checksum(r.Frame[34:]) != 0 {
			t.Fatal("ICMP checksum broken")
		}
		if r.Flow.VNI != 0 || r.Flow.Dst != vipAddr || r.Flow.Proto != l4.Proto {
			t.Fatalf("plain flow fields %+v", r.Flow)
		}
	}
}

func TestUpdateChecksumMatchesFullRecompute(t *testing.T) {
	// Over many addresses, the incremental update agrees with recomputing, up to the
	// 0x0000/0xffff ambiguity of ones' complement.
	seg := testpkt.Plain(gwEth, testpkt.IP{Src: vtep, Dst: vip}, tcp(1, 2))[14:]
	old := binary.BigEndian.Uint16(seg[20+16:])
	for i := uint32(0); i < 5000; i++ {
		n := i*2654435761 + 1
		var src, dst [4]byte
		copy(src[:], seg[12:16])
		binary.BigEndian.PutUint32(dst[:], n)
		l4 := append([]byte(nil), seg[20:]...)
		l4[16], l4[17] = 0, 0
		full := testpkt.L4Checksum(src, dst, testpkt.ProtoTCP, l4)
		inc := UpdateChecksum32(old, vipAddr, n)
		if inc != full && !(inc^full == 0xffff && (inc == 0 || full == 0)) {
			t.Fatalf("new dst %#x: incremental %#x, full %#x", n, inc, full)
		}
	}
}

func TestDropReasons(t *testing.T) {
	s := newTestState()
	base := overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80))
	mod := func(off int, v ...byte) []byte {
		b := append([]byte(nil), base...)
		copy(b[off:], v)
		return b
	}
	cases := []struct {
		name  string
		frame []byte
		want  pipeline.Reason
		pass  bool
	}{
		{"empty", nil, pipeline.EthTruncated, false},
		{"13 bytes", base[:13], pipeline.EthTruncated, false},
		{"neither ipv4 nor ipv6", mod(12, 0x86, 0xde), pipeline.NotIPv4, true},
		{"ipv6 ethertype, an IPv4 header: no v6 VIP", mod(12, 0x86, 0xdd), pipeline.NotVIP, true},
		{"ipv4 cut", base[:33], pipeline.IPv4Truncated, false},
		{"options", mod(14, 0x47), pipeline.IPv4Malformed, false},
		{"ihl 4", mod(14, 0x44), pipeline.IPv4Malformed, false},
		{"fragment", mod(20, 0x20), pipeline.IPv4Fragment, false},
		{"udp cut", base[:41], pipeline.L4Truncated, false},
		{"vxlan cut", base[:49], pipeline.VXLANTruncated, false},
		{"vxlan flags", mod(42, 0x00), pipeline.VXLANBadFlags, false},
		{"inner eth cut", base[:63], pipeline.InnerTruncated, false},
		{"inner arp", mod(62, 0x08, 0x06), pipeline.InnerNotIPv4, false},
		{"inner ip cut", base[:83], pipeline.InnerTruncated, false},
		{"inner ihl", mod(64, 0x4f), pipeline.InnerIPv4Malformed, false},
		{"inner ports cut", base[:87], pipeline.InnerTruncated, false},
		{"ttl 1", mod(22, 1), pipeline.TTLExpired, false},
	}
	for _, c := range cases {
		r := Process(s, c.frame)
		wantV := Drop
		if c.pass {
			wantV = NotForUs
		}
		if r.Reason != c.want || r.Verdict != wantV || r.Frame != nil {
			t.Errorf("%s: got %v %v, want %v %v", c.name, r.Verdict, r.Reason, wantV, c.want)
		}
	}
	// Exactly 4 bytes of inner TCP are enough: only the ports are read.
	if r := Process(s, base[:88]); r.Verdict != Forward {
		t.Errorf("inner ports only: %v %v", r.Verdict, r.Reason)
	}
	// No backend: an empty pool, then a bucket naming a missing backend.
	s.VIPs[vipAddr] = VIP{ID: 1, DefaultPool: 9}
	if r := Process(s, base); r.Reason != pipeline.NoBackend {
		t.Errorf("empty pool: %v", r.Reason)
	}
	s.VIPs[vipAddr] = VIP{ID: 1, DefaultPool: poolBase}
	delete(s.Backends, 1)
	if r := Process(s, base); r.Reason != pipeline.NoBackend {
		t.Errorf("missing backend: %v", r.Reason)
	}
}

func TestParseErrorsOfNonVIPAreNotForUs(t *testing.T) {
	s := newTestState()
	base := overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80))
	other := append([]byte(nil), base...)
	other[33] = 0x63 // outer dst 10.255.0.99
	for _, n := range []int{34, 41, 45, 60, 80, 86} {
		if r := Process(s, other[:n]); r.Reason != pipeline.NotVIP || r.Verdict != NotForUs {
			t.Fatalf("non-VIP cut at %d: %v %v", n, r.Verdict, r.Reason)
		}
	}
}

func TestProcessDoesNotModifyInput(t *testing.T) {
	s := newTestState()
	in := overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80))
	keep := append([]byte(nil), in...)
	Process(s, in)
	if string(in) != string(keep) {
		t.Fatal("input frame modified")
	}
}

func mirrorRule(vni uint32, sample uint16) GrayRule {
	return GrayRule{Priority: 10, Match: pipeline.FlowKey{VNI: vni}, Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI},
		Action: SetPoolMirror, Pool: poolBase, MirrorPool: poolGray, Sample: sample, MirrorID: 7}
}

// The served frame is exactly set_pool's; the copy is the received frame
// rewritten for the mirror pool's backend, with the LE DSCP and ECN kept.
func TestMirrorCopyIsTheServedRewriteForTheMirrorBackendMarked(t *testing.T) {
	s := newTestState()
	s.GrayRules = []GrayRule{mirrorRule(5001, pipeline.SampleAll)}
	in := overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80))
	in[offIP+1] = 0xb8 | 2 // DSCP EF, ECN ECT(0)
	r := Process(s, in)

	plain := newTestState()
	plain.GrayRules = []GrayRule{vmRule(10, 5001, "10.0.0.5", poolBase)}
	want := Process(plain, in)
	if r.Verdict != Forward || r.Port != want.Port || string(r.Frame) != string(want.Frame) {
		t.Fatalf("served frame differs from set_pool's: %v port %d", r.Verdict, r.Port)
	}
	if r.Copy == nil || !r.Copy.Sent {
		t.Fatalf("no copy sent: %+v", r.Copy)
	}
	c := r.Copy
	if c.Pool != poolGray || c.BackendID != 2 || c.Port != beGray.Port || c.MirrorID != 7 {
		t.Fatalf("copy: pool %d backend %d port %d id %d, want gray backend 2 port %d id 7", c.Pool, c.BackendID, c.Port, c.MirrorID, beGray.Port)
	}
	gray := newTestState()
	gray.GrayRules = []GrayRule{vmRule(10, 5001, "10.0.0.5", poolGray)}
	served := Process(gray, in).Frame
	if got := c.Frame[offIP+1]; got != pipeline.MirrorDSCP<<2|2 {
		t.Fatalf("copy TOS %#x, want DSCP %d with ECN 2", got, pipeline.MirrorDSCP)
	}
	if ipv4Checksum(c.Frame[offIP:offIP+ipv4Len]) != 0 {
		t.Fatal("copy's IPv4 checksum does not verify")
	}
	// Bar the TOS byte and the checksum, the copy is gray's served frame.
	for i := range served {
		if i == offIP+1 || i == offIP+10 || i == offIP+11 {
			continue
		}
		if c.Frame[i] != served[i] {
			t.Fatalf("copy byte %d = %#x, gray's served frame has %#x", i, c.Frame[i], served[i])
		}
	}
}

// Sampling is sticky per VM: split_hash <= sample, the same VMs every time.
func TestMirrorSamplingIsPerVMAndWithinRate(t *testing.T) {
	s := newTestState()
	s.GrayRules = []GrayRule{mirrorRule(5001, pipeline.Sample(4))}
	copies := 0
	const vms = 4000
	for i := range vms {
		src := netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}).String()
		a := Process(s, overlay(5001, src, "192.168.1.1", tcp(1000, 80)))
		b := Process(s, overlay(5001, src, "192.168.9.9", tcp(2000, 443)))
		if (a.Copy != nil) != (b.Copy != nil) {
			t.Fatalf("VM %s: one flow mirrored, another not", src)
		}
		if want := a.SplitHash <= pipeline.Sample(4); (a.Copy != nil) != want {
			t.Fatalf("VM %s: split hash %d, copy %v", src, a.SplitHash, a.Copy != nil)
		}
		if a.Copy != nil {
			copies++
		}
	}
	// 1 in 4 of 4000 VMs: 1000 expected, sd ~27.
	if copies < 850 || copies > 1150 {
		t.Fatalf("%d of %d VMs mirrored at 1/4", copies, vms)
	}
}

func TestMirrorOnlyForAServedFrameAndNotSentWithoutMirrorBackend(t *testing.T) {
	s := newTestState()
	s.GrayRules = []GrayRule{mirrorRule(5001, pipeline.SampleAll)}
	for b := 0; b < pipeline.Buckets; b++ {
		delete(s.BackendSelect, SelectKey{poolGray, uint16(b)})
	}
	r := Process(s, overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80)))
	if r.Verdict != Forward || r.Copy == nil || r.Copy.Sent || r.Copy.Frame != nil {
		t.Fatalf("mirror pool without backend: verdict %v copy %+v, want served and a copy made, not sent", r.Verdict, r.Copy)
	}
	s = newTestState()
	s.GrayRules = []GrayRule{mirrorRule(5001, pipeline.SampleAll)}
	delete(s.Backends, 1)
	if r := Process(s, overlay(5001, "10.0.0.5", "192.168.1.1", tcp(1000, 80))); r.Verdict != Drop || r.Copy != nil {
		t.Fatalf("served frame dropped: verdict %v copy %+v, want drop and no copy", r.Verdict, r.Copy)
	}
}

func TestRuleID(t *testing.T) {
	r := GrayRule{Priority: 3, VIPID: 0xffff, VIPMask: 0x00ff, Match: pipeline.FlowKey{VNI: 0xffffffff, Src: 0xffffffff},
		Mask: pipeline.FlowKey{VNI: 0xffffffff, Src: 0xff000000}, Action: SplitPool, Pool: 3, Threshold: 4}
	id := RuleID(r)
	want := GrayRule{Priority: 3, VIPID: 0xff, VIPMask: 0xff, Match: pipeline.FlowKey{VNI: 0xffffff, Src: 0xff000000},
		Mask: pipeline.FlowKey{VNI: 0xffffff, Src: 0xff000000}}
	if id != want {
		t.Errorf("RuleID = %+v, want %+v", id, want)
	}
}
