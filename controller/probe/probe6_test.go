package probe

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
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
	binary.BigEndian.PutUint16(ic[2:], l4Checksum(protoICMPv6, router, vm, ic))
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
		if ic[0] != icmp6EchoReq || l4Checksum(protoICMPv6, vm6, router6, ic) != 0 {
			t.Errorf("%v: ICMPv6 type %d, checksum does not verify", outer, ic[0])
		}
		if outer.Is6() {
			o := f[ethLen:]
			if binary.BigEndian.Uint16(f[12:]) != etherIPv6 || o[6] != protoUDP || int(binary.BigEndian.Uint16(o[4:])) != len(o)-ipv6Len {
				t.Fatalf("outer IPv6 header % x", o[:ipv6Len])
			}
			u := o[ipv6Len:]
			if binary.BigEndian.Uint16(u[6:]) == 0 || l4Checksum(protoUDP, src, outer, u) != 0 {
				t.Errorf("outer UDP checksum %#x does not verify", binary.BigEndian.Uint16(u[6:]))
			}
		} else if checksum(f[ethLen:ethLen+ipv4Len]) != 0 {
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
		if ii[6] != num || int(binary.BigEndian.Uint16(ii[4:])) != len(l) || l4Checksum(num, vm6, router6, l) != 0 {
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
		{VIP: vip6, Backends: []Backend{{Name: "b", Underlay: netip.MustParseAddr("10.3.0.21")}}},
		{VIP: vip, Backends: []Backend{{Name: "b", Underlay: netip.MustParseAddr("2001:db8:3::21")}}},
	} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", cfg, err)
		}
	}
}
