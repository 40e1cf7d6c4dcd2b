package probe

import (
	"encoding/binary"
	"net/netip"
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
	a := vm.As4()
	h := vni*2246822519 ^ (uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]))
	h ^= uint32(port)<<16 | uint32(len(proto))
	h ^= h >> 13
	h *= 3266489917
	h ^= h >> 16
	return 33000 + uint16(h%28000)
}

// buildEcho returns the VXLAN-encapsulated probe e describes: an ICMP echo
// request, a TCP SYN (or the reset of tcpFlags) or a UDP datagram. The outer
// UDP checksum is 0 (allowed for IPv4 VXLAN); the IPv4, ICMP, TCP and UDP
// checksums are filled in.
func buildEcho(e *echo) []byte {
	if e.proto == ProtoTCP || e.proto == ProtoUDP {
		return buildL4(e)
	}
	b := make([]byte, frameLen)
	// Inner IPv4 and ICMP echo request.
	ii := putEncap(b, e)
	putIPv4(ii, uint16(len(ii)), e.ipID, protoICMP, e.innerSrc, e.innerDst)
	ic := ii[ipv4Len:]
	ic[0] = icmpEchoReq
	binary.BigEndian.PutUint16(ic[4:], e.ident)
	binary.BigEndian.PutUint16(ic[6:], e.seq)
	copy(ic[icmpLen:], payloadMagic[:])
	binary.BigEndian.PutUint32(ic[icmpLen+8:], e.vni)
	copy(ic[icmpLen+12:], e.innerSrc.AsSlice())
	binary.BigEndian.PutUint16(ic[2:], checksum(ic))
	return b
}

// putEncap writes into frame b (sized for the whole probe) the outer
// Ethernet, IPv4, UDP and VXLAN headers and the inner Ethernet header of e,
// and returns the rest of b: the inner IPv4 packet.
func putEncap(b []byte, e *echo) []byte {
	// Outer Ethernet.
	copy(b[0:6], e.outerDstMAC[:])
	copy(b[6:12], e.outerSrcMAC[:])
	binary.BigEndian.PutUint16(b[12:], etherIPv4)
	// Outer IPv4.
	o := b[ethLen:]
	putIPv4(o, uint16(len(b)-ethLen), e.ipID, protoUDP, e.outerSrc, e.outerDst)
	// Outer UDP.
	u := o[ipv4Len:]
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
	binary.BigEndian.PutUint16(ie[12:], etherIPv4)
	return ie[ethLen:]
}

// buildL4 builds a TCP or UDP probe (the UDP payload is the ICMP one's:
// magic, then ident and seq, VNI and VM).
func buildL4(e *echo) []byte {
	l4 := tcpLen
	proto := uint8(protoTCP)
	if e.proto == ProtoUDP {
		l4, proto = udpLen+payloadLen, protoUDP
	}
	b := make([]byte, ethLen+ipv4Len+udpLen+vxlanLen+ethLen+ipv4Len+l4)
	ii := putEncap(b, e)
	id := e.ipID
	if e.proto == ProtoUDP {
		// The probe's number, which an ICMP port unreachable quotes back
		// (with 8 bytes of UDP only: the payload's number is not in it).
		id = e.seq
	}
	putIPv4(ii, uint16(len(ii)), id, proto, e.innerSrc, e.innerDst)
	l := ii[ipv4Len:]
	binary.BigEndian.PutUint16(l[0:], e.innerSport)
	binary.BigEndian.PutUint16(l[2:], e.port)
	if e.proto == ProtoTCP {
		seq, flags := tcpISN(e.ident, e.seq), byte(tcpSYN)
		if e.tcpFlags != 0 {
			seq, flags = e.tcpSeq, e.tcpFlags
			binary.BigEndian.PutUint32(l[8:], e.tcpAck)
		}
		binary.BigEndian.PutUint32(l[4:], seq)
		l[12] = 5 << 4 // data offset: 20 bytes, no options
		l[13] = flags
		binary.BigEndian.PutUint16(l[14:], 65535) // window
	} else {
		binary.BigEndian.PutUint16(l[4:], uint16(len(l)))
		p := l[udpLen:]
		copy(p, payloadMagic[:])
		binary.BigEndian.PutUint16(p[8:], e.ident)
		binary.BigEndian.PutUint16(p[10:], e.seq)
		copy(p[12:], e.innerSrc.AsSlice())
	}
	sum := l4Checksum(proto, e.innerSrc, e.innerDst, l)
	if e.proto == ProtoTCP {
		binary.BigEndian.PutUint16(l[16:], sum)
	} else {
		if sum == 0 {
			sum = 0xffff
		}
		binary.BigEndian.PutUint16(l[6:], sum)
	}
	return b
}

// l4Checksum is the TCP or UDP checksum of segment l (its checksum field
// zero) with the IPv4 pseudo-header.
func l4Checksum(proto uint8, src, dst netip.Addr, l []byte) uint16 {
	ph := make([]byte, 12+len(l))
	s, d := src.As4(), dst.As4()
	copy(ph[0:4], s[:])
	copy(ph[4:8], d[:])
	ph[9] = proto
	binary.BigEndian.PutUint16(ph[10:], uint16(len(l)))
	copy(ph[12:], l)
	return checksum(ph)
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
	binary.BigEndian.PutUint16(b[10:], checksum(b[:ipv4Len]))
}

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
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

// parseReply recognises a VXLAN-encapsulated ICMP echo reply and returns its
// fields. It reads nothing past the end of f and returns false for any other
// frame (IPv4 options are accepted on both headers; fragments are not).
func parseReply(f []byte) (reply, bool) {
	var r reply
	if len(f) < ethLen || binary.BigEndian.Uint16(f[12:]) != etherIPv4 {
		return r, false
	}
	ip, ok := ipv4Payload(f[ethLen:], protoUDP)
	if !ok {
		return r, false
	}
	r.outerSrc = netip.AddrFrom4([4]byte(f[ethLen+12 : ethLen+16]))
	if len(ip) < udpLen+vxlanLen || binary.BigEndian.Uint16(ip[2:]) != vxlanPort {
		return r, false
	}
	v := ip[udpLen:]
	if v[0]&0x08 == 0 {
		return r, false
	}
	r.vni = uint32(v[4])<<16 | uint32(v[5])<<8 | uint32(v[6])
	ie := v[vxlanLen:]
	if len(ie) < ethLen || binary.BigEndian.Uint16(ie[12:]) != etherIPv4 {
		return r, false
	}
	ii := ie[ethLen:]
	if len(ii) < ipv4Len {
		return r, false
	}
	r.routerSrc = netip.AddrFrom4([4]byte(ii[12:16]))
	r.vm = netip.AddrFrom4([4]byte(ii[16:20]))
	switch ii[9] {
	case protoTCP:
		return parseTCP(ii, r)
	case protoUDP:
		return parseUDP(ii, r)
	}
	ic, ok := ipv4Payload(ii, protoICMP)
	if ok && len(ic) >= icmpLen && ic[0] == icmpUnreach && ic[1] == icmpPortUnr {
		return parseUnreachable(ic[icmpLen:], r)
	}
	if !ok || len(ic) < icmpLen || ic[0] != icmpEchoRep || ic[1] != 0 {
		return r, false
	}
	r.proto = ProtoICMP
	r.ident = binary.BigEndian.Uint16(ic[4:])
	r.seq = binary.BigEndian.Uint16(ic[6:])
	return r, true
}

// parseTCP recognises the answer to a TCP probe: a SYN-ACK, or a reset that
// acknowledges the SYN (refused); the acknowledgement names the probe.
func parseTCP(ii []byte, r reply) (reply, bool) {
	t, ok := ipv4Payload(ii, protoTCP)
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

// parseUDP recognises the echo of a UDP probe: its payload back, from the
// probed port.
func parseUDP(ii []byte, r reply) (reply, bool) {
	u, ok := ipv4Payload(ii, protoUDP)
	if !ok || len(u) < udpLen+12 || [8]byte(u[udpLen:udpLen+8]) != payloadMagic {
		return r, false
	}
	r.proto, r.port, r.vmPort = ProtoUDP, binary.BigEndian.Uint16(u[0:]), binary.BigEndian.Uint16(u[2:])
	r.ident, r.seq = binary.BigEndian.Uint16(u[udpLen+8:]), binary.BigEndian.Uint16(u[udpLen+10:])
	return r, true
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
