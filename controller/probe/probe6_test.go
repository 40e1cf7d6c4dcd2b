package probe

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/graygw/graygw/internal/checksum"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

var (
	vm6     = netip.MustParseAddr("2001:db8:1::5")
	router6 = netip.MustParseAddr("2001:db8:1::1")
	vip6    = netip.MustParseAddr("2001:db8:ff::1")
)

// answer6 is the ICMPv6 echo reply backend sends to the probe of vm to
// router, outer IPv6 as outer is.
func answer6(outer, backend netip.Addr, vni uint32, vm, router netip.Addr, ident, seq uint16) []byte {
	f := buildEcho(&echo{outerSrc: backend, outerDst: outer, sport: 50000, vni: vni, innerSrc: router, innerDst: vm, ident: ident, seq: seq})
	ii := f[encapLen(&echo{outerDst: outer}):]
	ic := ii[ipv6Len:]
	ic[0], ic[2], ic[3] = icmp6EchoRep, 0, 0
	binary.BigEndian.PutUint16(ic[2:], checksum.L4(protoICMPv6, router, vm, ic))
	if outer.Is6() {
		putUDPChecksum(f[ethLen+ipv6Len:], backend, outer)
	}
	return f
}

// The IPv6 probe frame carries the VM's flow: inner ethertype 0x86DD, an
// IPv6 header of the VM to its router (payload length, next header 58, hop
// limit 64), an ICMPv6 echo request whose checksum verifies over the IPv6
// pseudo-header; an IPv6 outer header's UDP checksum verifies too. The
// backend's echo reply is recognised, over either outer family.
func TestIPv6EchoFrame(t *testing.T) {
	for _, outer := range []netip.Addr{vip, vip6} {
		src, backend := netip.MustParseAddr("10.1.0.10"), netip.MustParseAddr("10.3.0.21")
		if outer.Is6() {
			src, backend = netip.MustParseAddr("2001:db8:a::10"), netip.MustParseAddr("2001:db8:3::21")
		}
		e := &echo{outerSrc: src, outerDst: outer, sport: 50000, vni: 5001, innerSrc: vm6, innerDst: router6, ident: 7, seq: 9}
		f := buildEcho(e)
		enc := encapLen(e)
		if len(f) != enc+ipv6Len+icmpLen+payloadLen {
			t.Fatalf("%v: frame is %d bytes", outer, len(f))
		}
		if binary.BigEndian.Uint16(f[enc-2:]) != etherIPv6 {
			t.Fatalf("%v: inner ethertype %#x", outer, binary.BigEndian.Uint16(f[enc-2:]))
		}
		ii := f[enc:]
		if ii[0] != 0x60 || binary.BigEndian.Uint16(ii[4:]) != icmpLen+payloadLen || ii[6] != protoICMPv6 || ii[7] != 64 ||
			netip.AddrFrom16([16]byte(ii[8:24])) != vm6 || netip.AddrFrom16([16]byte(ii[24:40])) != router6 {
			t.Fatalf("%v: inner IPv6 header % x", outer, ii[:ipv6Len])
		}
		ic := ii[ipv6Len:]
		if ic[0] != icmp6EchoReq || checksum.L4(protoICMPv6, vm6, router6, ic) != 0 {
			t.Errorf("%v: ICMPv6 type %d, checksum does not verify", outer, ic[0])
		}
		if outer.Is6() {
			o := f[ethLen:]
			if binary.BigEndian.Uint16(f[12:]) != etherIPv6 || o[6] != protoUDP || int(binary.BigEndian.Uint16(o[4:])) != len(o)-ipv6Len {
				t.Fatalf("outer IPv6 header % x", o[:ipv6Len])
			}
			u := o[ipv6Len:]
			if binary.BigEndian.Uint16(u[6:]) == 0 || checksum.L4(protoUDP, src, outer, u) != 0 {
				t.Errorf("outer UDP checksum %#x does not verify", binary.BigEndian.Uint16(u[6:]))
			}
		} else if checksum.Internet(f[ethLen:ethLen+ipv4Len]) != 0 {
			t.Error("outer IPv4 checksum does not verify")
		}
		r, ok := parseReply(answer6(src, backend, 5001, vm6, router6, 7, 9))
		want := reply{outerSrc: backend, vni: 5001, routerSrc: router6, vm: vm6, ident: 7, seq: 9, proto: ProtoICMP}
		if !ok || r != want {
			t.Fatalf("%v: reply %+v %v, want %+v", outer, r, ok, want)
		}
		if _, ok := parseReply(f); ok {
			t.Errorf("%v: an echo request was taken for a reply", outer)
		}
	}
}

// An IPv6 answer's every prefix is refused without reading past its end, as
// is one with an extension header in front of ICMPv6.
func TestParseReply6NeverReadsPastTheEnd(t *testing.T) {
	hv, backend := netip.MustParseAddr("2001:db8:a::10"), netip.MustParseAddr("2001:db8:3::21")
	f := answer6(hv, backend, 1, vm6, router6, 7, 9)
	if _, ok := parseReply(f); !ok {
		t.Fatal("the whole answer is not recognised")
	}
	for n := 0; n < len(f); n++ {
		if _, ok := parseReply(f[:n]); ok {
			t.Errorf("a %d-byte prefix of a reply was accepted", n)
		}
	}
	ext := append([]byte(nil), f...)
	ext[encapLen(&echo{outerDst: hv})+6] = 60 // destination options
	if _, ok := parseReply(ext); ok {
		t.Error("an extension header was taken for ICMPv6")
	}
}

// TCP and UDP probes over IPv6: checksums verify over the pseudo-header; the
// ports and the payload (ident, seq, VM's last 4 bytes) are the probe's.
func TestIPv6TCPAndUDPFrames(t *testing.T) {
	for _, proto := range []Proto{ProtoTCP, ProtoUDP} {
		sp := innerPort(5001, vm6, proto, 443)
		e := &echo{outerSrc: netip.MustParseAddr("10.1.0.10"), outerDst: vip, vni: 5001, innerSrc: vm6, innerDst: router6,
			ident: 7, seq: 9, proto: proto, port: 443, innerSport: sp}
		ii := buildEcho(e)[encapLen(e):]
		num := uint8(protoTCP)
		if proto == ProtoUDP {
			num = protoUDP
		}
		l := ii[ipv6Len:]
		if ii[6] != num || int(binary.BigEndian.Uint16(ii[4:])) != len(l) || checksum.L4(num, vm6, router6, l) != 0 {
			t.Errorf("%s: next header %d, payload length %d of %d, checksum does not verify", proto, ii[6], binary.BigEndian.Uint16(ii[4:]), len(l))
		}
		if binary.BigEndian.Uint16(l[0:]) != sp || binary.BigEndian.Uint16(l[2:]) != 443 {
			t.Errorf("%s: ports %d -> %d", proto, binary.BigEndian.Uint16(l[0:]), binary.BigEndian.Uint16(l[2:]))
		}
		if proto == ProtoUDP {
			if r, ok := parseUDP(l, true, reply{}); !ok || r.ident != 7 || r.seq != 9 {
				t.Errorf("UDP payload: %+v %v", r, ok)
			}
		}
	}
	// The hashes take the whole IPv6 address (an IPv4 VM's ports are as
	// before: addrWord of an IPv4 address is the address).
	if innerPort(5001, vm6, ProtoTCP, 443) == innerPort(5001, netip.MustParseAddr("2001:db8:1::6"), ProtoTCP, 443) {
		t.Error("two IPv6 VMs share an inner port")
	}
	if addrWord(vm5) != 0xc0a80105 {
		t.Errorf("addrWord(%v) = %#x", vm5, addrWord(vm5))
	}
}

func TestIPv6TargetsAndConfig(t *testing.T) {
	p := &Prober{routerMAC: [6]byte{2}}
	if _, err := p.checkTarget(Target{VNI: 5001, VM: vm6, Router: router6}); err != nil {
		t.Errorf("IPv6 target: %v", err)
	}
	for _, tg := range []Target{
		{VNI: 5001, VM: vm6, Router: router},
		{VNI: 5001, VM: vm5, Router: router6},
		{VNI: 5001, VM: netip.MustParseAddr("::ffff:192.168.1.5"), Router: router},
		{VNI: 5001, VM: netip.MustParseAddr("fe80::5%eth0"), Router: router6},
	} {
		if _, err := p.checkTarget(tg); !errors.Is(err, ErrTarget) {
			t.Errorf("%v: %v, want ErrTarget", tg, err)
		}
	}
	for _, cfg := range []Config{
		{VIP: vip6, Source: netip.MustParseAddr("10.1.0.10")},
		{VIP: vip6, Backends: []Backend{{Name: "b", Underlay: netip.MustParseAddr("fe80::1%eth0")}}},
		{VIP: netip.MustParseAddr("::ffff:10.255.0.1")},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", cfg, err)
		}
	}
}

// The reference model (package model, IPv6 per the issue 19 contract) sees
// an IPv6 probe as the VM's own IPv6 flow, over either outer family: the
// flow fields are the VM's, a gray_rules_v6 rule on the VM moves it, the
// model forwards it to the backend of the outer family with the hop limit
// taken down, and an IPv4 VM's probe to the IPv6 VIP stays an IPv4 flow.
func TestIPv6ProbesThroughTheModel(t *testing.T) {
	s := model.NewState()
	s.VIPs[0x0aff0001] = model.VIP{ID: 1, DefaultPool: 1} // vip, 10.255.0.1
	s.VIPsV6[vip6.As16()] = model.VIP{ID: 2, DefaultPool: 3}
	s.GrayRulesV6 = []model.GrayRuleV6{{Priority: 1, Match: pipeline.FlowKey6{VNI: 5001, Src: vm6.As16()},
		Mask: pipeline.FlowKey6{VNI: pipeline.MaxVNI, Src: pipeline.AllOnes6.Src}, Action: model.SetPool, Pool: 2}}
	for b := range uint16(pipeline.Buckets) {
		for pool := uint16(1); pool <= 4; pool++ {
			s.BackendSelect[model.SelectKey{Pool: pool, Bucket: b}] = pool
		}
	}
	s.Backends[1] = model.Backend{UnderlayIP: 0x0a030015}
	s.Backends[2] = model.Backend{UnderlayIP: 0x0a030016}
	s.Backends[3] = model.Backend{IPv6: true, UnderlayIPv6: netip.MustParseAddr("2001:db8:3::21").As16()}
	s.Backends[4] = model.Backend{IPv6: true, UnderlayIPv6: netip.MustParseAddr("2001:db8:3::22").As16()}
	for _, tc := range []struct {
		outer, src netip.Addr
		vm, router netip.Addr
		proto      Proto
		port       uint16
		pool       uint16
	}{
		{vip, netip.MustParseAddr("10.1.0.10"), vm6, router6, ProtoICMP, 0, 2},
		{vip, netip.MustParseAddr("10.1.0.10"), vm6, router6, ProtoTCP, 443, 2},
		{vip, netip.MustParseAddr("10.1.0.10"), netip.MustParseAddr("2001:db8:1::6"), router6, ProtoUDP, 53, 1},
		{vip6, netip.MustParseAddr("2001:db8:a::10"), vm6, router6, ProtoICMP, 0, 2},
		{vip6, netip.MustParseAddr("2001:db8:a::10"), vm5, router, ProtoTCP, 443, 3},
	} {
		sp := innerPort(5001, tc.vm, tc.proto, tc.port)
		f := buildEcho(&echo{outerSrc: tc.src, outerDst: tc.outer, sport: entropyPort(5001, tc.vm), vni: 5001,
			innerSrc: tc.vm, innerDst: tc.router, ident: 7, seq: 9, proto: tc.proto, port: tc.port, innerSport: sp})
		p := model.Parse(f)
		if p.Reason != pipeline.None || !p.Overlay || p.Outer6 != tc.outer.Is6() || p.IPv6 != tc.vm.Is6() {
			t.Fatalf("%v %v %s: parse %+v", tc.outer, tc.vm, tc.proto, p)
		}
		if tc.vm.Is6() {
			want := pipeline.FlowKey6{VNI: 5001, Src: tc.vm.As16(), Dst: tc.router.As16(), Proto: protoICMPv6}
			switch tc.proto {
			case ProtoTCP:
				want.Proto, want.SPort, want.DPort = protoTCP, sp, tc.port
			case ProtoUDP:
				want.Proto, want.SPort, want.DPort = protoUDP, sp, tc.port
			}
			if p.Flow6 != want {
				t.Errorf("%v %v %s: flow %+v, want %+v", tc.outer, tc.vm, tc.proto, p.Flow6, want)
			}
		}
		// The IPv6 rule moves the IPv6 VM behind the IPv4 VIP (pool 2); an
		// IPv6 VM behind the IPv6 VIP hits it too, and its pool 2 backend is
		// IPv4: BACKEND_FAMILY, the controller's guard (it never writes that).
		r := model.Process(s, f)
		if r.Pool != tc.pool {
			t.Errorf("%v %v %s: pool %d, want %d (%v %v)", tc.outer, tc.vm, tc.proto, r.Pool, tc.pool, r.Verdict, r.Reason)
		}
		wantFwd := !(tc.outer.Is6() && tc.pool == 2)
		if (r.Verdict == model.Forward) != wantFwd || (!wantFwd && r.Reason != pipeline.BackendFamily) {
			t.Errorf("%v %v %s: %v %v", tc.outer, tc.vm, tc.proto, r.Verdict, r.Reason)
		}
	}
}
