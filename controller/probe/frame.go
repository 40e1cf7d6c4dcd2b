package probe

import (
	"encoding/binary"
	"net/netip"

	"github.com/graygw/graygw/internal/checksum"
)

// Frame layout constants (docs/pipeline.md, section 1).
const (
	vxlanPort   = 4789
	ethLen      = 14
	ipv4Len     = 20
	udpLen      = 8
	vxlanLen    = 8
	icmpLen     = 8
	payloadLen  = 16
	icmpEchoReq = 8
	icmpEchoRep = 0
	icmpUnreach = 3 // destination unreachable; code 3: port unreachable
	icmpPortUnr = 3
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	tcpLen      = 20
	tcpSYN      = 0x02
	tcpRST      = 0x04
	tcpACK      = 0x10
	etherIPv4   = 0x0800
	// frameLen is the length of a probe frame: outer Ethernet/IPv4/UDP/VXLAN,
	// inner Ethernet/IPv4/ICMP echo with a small payload.
	frameLen = ethLen + ipv4Len + udpLen + vxlanLen + ethLen + ipv4Len + icmpLen + payloadLen

	// IPv6 (RFC 8200, RFC 4443).
	ipv6Len      = 40
	etherIPv6    = 0x86dd
	protoICMPv6  = 58
	icmp6Unreach = 1 // destination unreachable; code 4: port unreachable
	icmp6PortUnr = 4
	icmp6EchoReq = 128
	icmp6EchoRep = 129
)

// payloadMagic starts every probe's ICMP payload, so a capture shows what sent it.
var payloadMagic = [8]byte{'g', 'r', 'a', 'y', 'p', 'r', 'o', 'b'}

// echo describes one probe packet.
type echo struct {
	outerSrcMAC, outerDstMAC [6]byte
	outerSrc, outerDst       netip.Addr
	sport                    uint16 // outer UDP source port (ECMP entropy)
	ipID                     uint16
	vni                      uint32
	innerSrcMAC, innerDstMAC [6]byte
	innerSrc, innerDst       netip.Addr
	ident, seq               uint16
	// proto is the inner protocol (ProtoICMP when empty); innerSport and
	// port are the inner ports of a TCP or UDP probe.
	proto      Proto
	innerSport uint16
	port       uint16
	// tcpFlags and tcpSeq, tcpAck override a TCP probe's SYN (the reset
	// that closes an answered connection).
	tcpFlags       byte
	tcpSeq, tcpAck uint32
}

// tcpISN is the initial sequence number of TCP probe seq of run ident: the
// answer acknowledges it plus one, which names the probe.
func tcpISN(ident, seq uint16) uint32 { return uint32(ident)<<16 | uint32(seq) }

// innerPort is the inner source port of TCP and UDP probes of one target:
// fixed, as one flow of the VM's, so the gateway hashes every probe of the
// target alike (and probe.Expect sees the very flow).
func innerPort(vni uint32, vm netip.Addr, proto Proto, port uint16) uint16 {
	h := vni*2246822519 ^ addrWord(vm)
	h ^= uint32(port)<<16 | uint32(len(proto))
	h ^= h >> 13
	h *= 3266489917
	h ^= h >> 16
	return 33000 + uint16(h%28000)
}

// addrWord folds an address into 32 bits for the port hashes: an IPv4
// address is itself (so no IPv4 probe's ports moved with IPv6), an IPv6 one
// the XOR of its four words.
func addrWord(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	b := a.As16()
	return binary.BigEndian.Uint32(b[0:]) ^ binary.BigEndian.Uint32(b[4:]) ^ binary.BigEndian.Uint32(b[8:]) ^ binary.BigEndian.Uint32(b[12:])
}

// buildEcho returns the VXLAN-encapsulated probe e describes: an ICMP echo
// request (ICMPv6 to an IPv6 VM), a TCP SYN (or the reset of tcpFlags) or a
// UDP datagram. The outer header is IPv4 or IPv6 as the VIP is, the inner one
// as the VM is. Every checksum is filled in, except an IPv4 outer UDP
// checksum (0: allowed for IPv4 VXLAN); an IPv6 outer UDP checksum is always
// computed (RFC 8200 needs one; receivers drop a zero one unless told not to).
func buildEcho(e *echo) []byte {
	inner6 := e.innerSrc.Is6()
	l4, proto := icmpLen+payloadLen, uint8(protoICMP)
	switch {
	case e.proto == ProtoTCP:
		l4, proto = tcpLen, protoTCP
	case e.proto == ProtoUDP:
		l4, proto = udpLen+payloadLen, protoUDP
	case inner6:
		proto = protoICMPv6
	}
	b := make([]byte, encapLen(e)+ipLen(e.innerSrc)+l4)
	ii := putEncap(b, e)
	id := e.ipID
	if e.proto == ProtoUDP {
		// The probe's number, which an ICMP port unreachable quotes back
		// (with 8 bytes of UDP only: the payload's number is not in it).
		// IPv6 has no id; its unreachable quotes the whole probe.
		id = e.seq
	}
	putIP(ii, id, proto, e.innerSrc, e.innerDst)
	l := ii[ipLen(e.innerSrc):]
	switch e.proto {
	case ProtoTCP:
		binary.BigEndian.PutUint16(l[0:], e.innerSport)
		binary.BigEndian.PutUint16(l[2:], e.port)
		seq, flags := tcpISN(e.ident, e.seq), byte(tcpSYN)
		if e.tcpFlags != 0 {
			seq, flags = e.tcpSeq, e.tcpFlags
			binary.BigEndian.PutUint32(l[8:], e.tcpAck)
		}
		binary.BigEndian.PutUint32(l[4:], seq)
		l[12] = 5 << 4 // data offset: 20 bytes, no options
		l[13] = flags
		binary.BigEndian.PutUint16(l[14:], 65535) // window
		binary.BigEndian.PutUint16(l[16:], checksum.L4(proto, e.innerSrc, e.innerDst, l))
	case ProtoUDP:
		// The payload is the ICMP one's: magic, then ident and seq, VM.
		binary.BigEndian.PutUint16(l[0:], e.innerSport)
		binary.BigEndian.PutUint16(l[2:], e.port)
		binary.BigEndian.PutUint16(l[4:], uint16(len(l)))
		pl := l[udpLen:]
		copy(pl, payloadMagic[:])
		binary.BigEndian.PutUint16(pl[8:], e.ident)
		binary.BigEndian.PutUint16(pl[10:], e.seq)
		a := e.innerSrc.As16() // the VM's last 4 bytes (IPv4: all of it)
		copy(pl[12:], a[12:])
		putUDPChecksum(l, e.innerSrc, e.innerDst)
	default:
		l[0] = icmpEchoReq
		if inner6 {
			l[0] = icmp6EchoReq
		}
		binary.BigEndian.PutUint16(l[4:], e.ident)
		binary.BigEndian.PutUint16(l[6:], e.seq)
		copy(l[icmpLen:], payloadMagic[:])
		binary.BigEndian.PutUint32(l[icmpLen+8:], e.vni)
		a := e.innerSrc.As16()
		copy(l[icmpLen+12:], a[12:])
		if inner6 {
			binary.BigEndian.PutUint16(l[2:], checksum.L4(proto, e.innerSrc, e.innerDst, l))
		} else {
			binary.BigEndian.PutUint16(l[2:], checksum.Internet(l))
		}
	}
	if e.outerDst.Is6() {
		u := b[ethLen+ipv6Len:]
		putUDPChecksum(u, e.outerSrc, e.outerDst)
	}
	return b
}

// ipLen is the length of an IP header of a's family (no options).
func ipLen(a netip.Addr) int {
	if a.Is6() {
		return ipv6Len
	}
	return ipv4Len
}

// encapLen is the length of e's headers up to its inner IP header.
func encapLen(e *echo) int { return ethLen + ipLen(e.outerDst) + udpLen + vxlanLen + ethLen }

// ethertype is the Ethernet type of an IP packet of a's family.
func ethertype(a netip.Addr) uint16 {
	if a.Is6() {
		return etherIPv6
	}
	return etherIPv4
}

// putEncap writes into frame b (sized for the whole probe) the outer
// Ethernet, IP, UDP and VXLAN headers and the inner Ethernet header of e,
// and returns the rest of b: the inner IP packet.
func putEncap(b []byte, e *echo) []byte {
	// Outer Ethernet.
	copy(b[0:6], e.outerDstMAC[:])
	copy(b[6:12], e.outerSrcMAC[:])
	binary.BigEndian.PutUint16(b[12:], ethertype(e.outerDst))
	// Outer IP.
	o := b[ethLen:]
	putIP(o, e.ipID, protoUDP, e.outerSrc, e.outerDst)
	// Outer UDP.
	u := o[ipLen(e.outerDst):]
	binary.BigEndian.PutUint16(u[0:], e.sport)
	binary.BigEndian.PutUint16(u[2:], vxlanPort)
	binary.BigEndian.PutUint16(u[4:], uint16(len(u)))
	// VXLAN: I flag, 24-bit VNI.
	v := u[udpLen:]
	v[0] = 0x08
	v[4], v[5], v[6] = byte(e.vni>>16), byte(e.vni>>8), byte(e.vni)
	// Inner Ethernet.
	ie := v[vxlanLen:]
	copy(ie[0:6], e.innerDstMAC[:])
	copy(ie[6:12], e.innerSrcMAC[:])
	binary.BigEndian.PutUint16(ie[12:], ethertype(e.innerSrc))
	return ie[ethLen:]
}

// putIP writes the IPv4 or IPv6 header (as src is) of the packet b, whose
// payload is the rest of b.
func putIP(b []byte, id uint16, proto uint8, src, dst netip.Addr) {
	if src.Is6() {
		putIPv6(b, uint16(len(b)-ipv6Len), proto, src, dst)
		return
	}
	putIPv4(b, uint16(len(b)), id, proto, src, dst)
}

// putUDPChecksum fills in the checksum of UDP datagram u (0 goes as 0xFFFF,
// RFC 768).
func putUDPChecksum(u []byte, src, dst netip.Addr) {
	u[6], u[7] = 0, 0
	sum := checksum.L4(protoUDP, src, dst, u)
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(u[6:], sum)
}

func putIPv4(b []byte, total, id uint16, proto uint8, src, dst netip.Addr) {
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], total)
	binary.BigEndian.PutUint16(b[4:], id)
	b[8] = 64
	b[9] = proto
	s, d := src.As4(), dst.As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	binary.BigEndian.PutUint16(b[10:], checksum.Internet(b[:ipv4Len]))
}

// putIPv6 writes an IPv6 header: no traffic class or flow label (the gateway
// hashes on the 5-tuple, not on the label), hop limit 64.
func putIPv6(b []byte, payload uint16, next uint8, src, dst netip.Addr) {
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], payload)
	b[6] = next
	b[7] = 64
	s, d := src.As16(), dst.As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
}

// reply is what parseReply extracts from a backend's answer.
type reply struct {
	outerSrc  netip.Addr // the backend's underlay address: who answered
	vni       uint32
	routerSrc netip.Addr // inner source (the VPC router)
	vm        netip.Addr // inner destination (the probed VM)
	ident     uint16
	seq       uint16
	// proto is the probe's protocol; port and vmPort the answer's inner
	// source and destination ports (TCP, UDP).
	proto        Proto
	port, vmPort uint16
	// refused: a TCP reset instead of a SYN-ACK, or an ICMP port
	// unreachable for a UDP probe.
	refused bool
	// anyRun: the answer does not say which run it answers (an ICMP port
	// unreachable quotes the probe's number, not the run's).
	anyRun bool
	// tcpSeq is a SYN-ACK's own sequence number: the reset that closes the
	// half-open connection acknowledges it.
	tcpSeq uint32
}

// parseReply recognises a VXLAN-encapsulated answer to a probe (ICMP or
// ICMPv6 echo reply, TCP SYN-ACK or reset, UDP echo, port unreachable), over
// an IPv4 or IPv6 outer header, and returns its fields. It reads nothing past
// the end of f and returns false for any other frame (IPv4 options are
// accepted on both headers; fragments and IPv6 extension headers are not).
func parseReply(f []byte) (reply, bool) {
	var r reply
	if len(f) < ethLen {
		return r, false
	}
	outer := familyOf(binary.BigEndian.Uint16(f[12:]))
	if outer == nil {
		return r, false
	}
	ip, ok := outer.payload(f[ethLen:], protoUDP)
	if !ok || len(ip) < udpLen+vxlanLen || binary.BigEndian.Uint16(ip[2:]) != vxlanPort {
		return r, false
	}
	r.outerSrc = outer.src(f[ethLen:])
	v := ip[udpLen:]
	if v[0]&0x08 == 0 {
		return r, false
	}
	r.vni = uint32(v[4])<<16 | uint32(v[5])<<8 | uint32(v[6])
	ie := v[vxlanLen:]
	if len(ie) < ethLen {
		return r, false
	}
	if inner := familyOf(binary.BigEndian.Uint16(ie[12:])); inner != nil {
		return parseInner(ie[ethLen:], r, inner)
	}
	return r, false
}

// ipFamily is what reading an answer needs to know of IPv4 or IPv6: where
// the header keeps its fields, and which ICMP messages answer a probe.
type ipFamily struct {
	hdrLen, addrLen  int
	protoAt, srcAt   int // offsets of the protocol (next header) and the source; the destination follows
	payload          func(b []byte, proto uint8) ([]byte, bool)
	icmp             uint8 // protoICMP or protoICMPv6
	echoRep          uint8
	unreach, portUnr uint8
	unreachable      func(q []byte, r reply) (reply, bool) // reads the quoted probe of a port unreachable
}

var (
	ipv4Family = ipFamily{hdrLen: ipv4Len, addrLen: 4, protoAt: 9, srcAt: 12, payload: ipv4Payload,
		icmp: protoICMP, echoRep: icmpEchoRep, unreach: icmpUnreach, portUnr: icmpPortUnr, unreachable: parseUnreachable}
	ipv6Family = ipFamily{hdrLen: ipv6Len, addrLen: 16, protoAt: 6, srcAt: 8, payload: ipv6Payload,
		icmp: protoICMPv6, echoRep: icmp6EchoRep, unreach: icmp6Unreach, portUnr: icmp6PortUnr, unreachable: parseUnreachable6}
)

// familyOf is the family of an Ethernet type, nil when it is neither IPv4
// nor IPv6.
func familyOf(ethertype uint16) *ipFamily {
	switch ethertype {
	case etherIPv4:
		return &ipv4Family
	case etherIPv6:
		return &ipv6Family
	}
	return nil
}

// src and dst are the addresses of IP header b (at least hdrLen bytes).
func (f *ipFamily) src(b []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(b[f.srcAt : f.srcAt+f.addrLen])
	return a
}

func (f *ipFamily) dst(b []byte) netip.Addr {
	a, _ := netip.AddrFromSlice(b[f.srcAt+f.addrLen : f.srcAt+2*f.addrLen])
	return a
}

// parseInner reads the inner IP packet of an answer, of family f.
func parseInner(ii []byte, r reply, f *ipFamily) (reply, bool) {
	if len(ii) < f.hdrLen {
		return r, false
	}
	r.routerSrc, r.vm = f.src(ii), f.dst(ii)
	switch ii[f.protoAt] {
	case protoTCP:
		t, ok := f.payload(ii, protoTCP)
		return parseTCP(t, ok, r)
	case protoUDP:
		u, ok := f.payload(ii, protoUDP)
		return parseUDP(u, ok, r)
	}
	ic, ok := f.payload(ii, f.icmp)
	if !ok || len(ic) < icmpLen {
		return r, false
	}
	switch {
	case ic[0] == f.unreach && ic[1] == f.portUnr:
		return f.unreachable(ic[icmpLen:], r)
	case ic[0] == f.echoRep && ic[1] == 0:
		r.proto = ProtoICMP
		r.ident = binary.BigEndian.Uint16(ic[4:])
		r.seq = binary.BigEndian.Uint16(ic[6:])
		return r, true
	}
	return r, false
}

// parseTCP recognises the answer to a TCP probe in segment t (ok: the IP
// layer found one): a SYN-ACK, or a reset that acknowledges the SYN
// (refused); the acknowledgement names the probe.
func parseTCP(t []byte, ok bool, r reply) (reply, bool) {
	if !ok || len(t) < tcpLen {
		return r, false
	}
	flags := t[13]
	switch {
	case flags&(tcpSYN|tcpACK|tcpRST) == tcpSYN|tcpACK:
	case flags&(tcpRST|tcpACK) == tcpRST|tcpACK:
		r.refused = true
	default:
		return r, false
	}
	isn := binary.BigEndian.Uint32(t[8:]) - 1
	r.proto, r.port, r.vmPort = ProtoTCP, binary.BigEndian.Uint16(t[0:]), binary.BigEndian.Uint16(t[2:])
	r.ident, r.seq = uint16(isn>>16), uint16(isn)
	r.tcpSeq = binary.BigEndian.Uint32(t[4:])
	return r, true
}

// parseUnreachable recognises the port unreachable a UDP probe got: it
// quotes the probe's IPv4 header (its id is the probe's number) and the first
// 8 bytes of its UDP header.
func parseUnreachable(q []byte, r reply) (reply, bool) {
	if len(q) < ipv4Len || q[0]>>4 != 4 || q[9] != protoUDP {
		return r, false
	}
	ihl := int(q[0]&0x0f) * 4
	if ihl < ipv4Len || len(q) < ihl+8 {
		return r, false
	}
	// The quoted probe went from the VM to the router: the error's own
	// addresses say the same the other way round.
	if netip.AddrFrom4([4]byte(q[12:16])) != r.vm || netip.AddrFrom4([4]byte(q[16:20])) != r.routerSrc {
		return r, false
	}
	u := q[ihl:]
	r.proto, r.refused, r.anyRun = ProtoUDP, true, true
	r.vmPort, r.port = binary.BigEndian.Uint16(u[0:]), binary.BigEndian.Uint16(u[2:])
	r.seq = binary.BigEndian.Uint16(q[4:])
	return r, true
}

// parseUnreachable6 recognises the ICMPv6 port unreachable a UDP probe got:
// it quotes as much of the probe as fits in 1280 bytes (RFC 4443 2.4 c), so
// the whole of it: the probe's number and run are read from its payload.
func parseUnreachable6(q []byte, r reply) (reply, bool) {
	if len(q) < ipv6Len+udpLen+12 || q[0]>>4 != 6 || q[6] != protoUDP {
		return r, false
	}
	if netip.AddrFrom16([16]byte(q[8:24])) != r.vm || netip.AddrFrom16([16]byte(q[24:40])) != r.routerSrc {
		return r, false
	}
	u := q[ipv6Len:]
	if [8]byte(u[udpLen:udpLen+8]) != payloadMagic {
		return r, false
	}
	r.proto, r.refused = ProtoUDP, true
	r.vmPort, r.port = binary.BigEndian.Uint16(u[0:]), binary.BigEndian.Uint16(u[2:])
	r.ident, r.seq = binary.BigEndian.Uint16(u[udpLen+8:]), binary.BigEndian.Uint16(u[udpLen+10:])
	return r, true
}

// parseUDP recognises the echo of a UDP probe in datagram u (ok: the IP
// layer found one): its payload back, from the probed port.
func parseUDP(u []byte, ok bool, r reply) (reply, bool) {
	if !ok || len(u) < udpLen+12 || [8]byte(u[udpLen:udpLen+8]) != payloadMagic {
		return r, false
	}
	r.proto, r.port, r.vmPort = ProtoUDP, binary.BigEndian.Uint16(u[0:]), binary.BigEndian.Uint16(u[2:])
	r.ident, r.seq = binary.BigEndian.Uint16(u[udpLen+8:]), binary.BigEndian.Uint16(u[udpLen+10:])
	return r, true
}

// ipv6Payload returns the payload of an IPv6 packet whose next header is
// proto (no extension header), bounded by the payload length.
func ipv6Payload(b []byte, proto uint8) ([]byte, bool) {
	if len(b) < ipv6Len || b[0]>>4 != 6 || b[6] != proto {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(b[4:]))
	if ipv6Len+n > len(b) {
		return nil, false
	}
	return b[ipv6Len : ipv6Len+n], true
}

// ipv4Payload returns the payload of an unfragmented IPv4 packet of protocol
// proto, bounded by the header's total length.
func ipv4Payload(b []byte, proto uint8) ([]byte, bool) {
	if len(b) < ipv4Len || b[0]>>4 != 4 {
		return nil, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if ihl < ipv4Len || total < ihl || total > len(b) || b[9] != proto {
		return nil, false
	}
	if binary.BigEndian.Uint16(b[6:])&0x3fff != 0 { // MF or a fragment offset
		return nil, false
	}
	return b[ihl:total], true
}
