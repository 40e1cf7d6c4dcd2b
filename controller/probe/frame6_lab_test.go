package probe

// The probe frames with IPv6 (inner, outer or both) sent to a real kernel
// VXLAN backend, without a gateway: the backend's kernel drops any frame
// whose checksums do not verify, and answers the others as it would a VM
// (ICMPv6 echo reply, TCP SYN-ACK or reset, ICMPv6 port unreachable), which
// parseReply must recognise.
//
//	hv ns: vhv 10.77.0.1/24 fd00:77::1/64 (the probe host: an AF_PACKET socket)
//	be ns: vbe 10.77.0.2/24 fd00:77::2/64
//	       vx4 VNI 5004 over IPv4, inner 2001:db8:4::1/64 (VM 2001:db8:4::5)
//	       vx6 VNI 5006 over IPv6, inner 2001:db8:6::1/64 and 192.168.6.1/24
//	           (VMs 2001:db8:6::5, 192.168.6.5)

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/lab/labtest"
)

// vmMAC is the probes' inner source MAC; the backend's neighbour and FDB
// entries send the answers for the VMs back to the probe host with it.
const vmMAC = "02:00:00:00:77:05"

func TestIPv6FramesAnsweredByAKernelBackend(t *testing.T) {
	l := labtest.New(t, "ggpr6", "network namespaces and AF_PACKET")
	ns := labtest.Namespaces(t, l, "hv", "be")
	hv, be := ns[0], ns[1]
	labtest.Link(t, l, hv, "vhv", be, "vbe")
	labtest.Script(t, l, hv, `
		ip addr add 10.77.0.1/24 dev vhv
		ip addr add fd00:77::1/64 dev vhv nodad`)
	labtest.Script(t, l, be, fmt.Sprintf(`
		ip addr add 10.77.0.2/24 dev vbe
		ip addr add fd00:77::2/64 dev vbe nodad
		ip link add vx4 type vxlan id 5004 local 10.77.0.2 dstport 4789 nolearning
		ip link add vx6 type vxlan id 5006 local fd00:77::2 dstport 4789 nolearning
		ip link set vx4 up
		ip link set vx6 up
		ip addr add 2001:db8:4::1/64 dev vx4 nodad
		ip addr add 2001:db8:6::1/64 dev vx6 nodad
		ip addr add 192.168.6.1/24 dev vx6
		bridge fdb append %[1]s dev vx4 dst 10.77.0.1
		bridge fdb append %[1]s dev vx6 dst fd00:77::1
		ip -6 neigh add 2001:db8:4::5 lladdr %[1]s dev vx4
		ip -6 neigh add 2001:db8:6::5 lladdr %[1]s dev vx6
		ip neigh add 192.168.6.5 lladdr %[1]s dev vx6`, vmMAC))
	hvMAC, err := l.MAC(hv, "vhv")
	must(t, err)
	beMAC, err := l.MAC(be, "vbe")
	must(t, err)
	vx4MAC, err := l.MAC(be, "vx4")
	must(t, err)
	vx6MAC, err := l.MAC(be, "vx6")
	must(t, err)

	// A TCP listener on the IPv6 router address, for the SYN-ACK.
	ln, err := lab.ServeTCP(be, "[2001:db8:4::1]:8080")
	must(t, err)
	defer ln.Close()

	type leg struct {
		family         string
		ethProto       uint16
		outerSrc, vtep netip.Addr
		vni            uint32
		innerMAC       string
		vm, router     netip.Addr
	}
	v4 := leg{"outer IPv4", unix.ETH_P_IP, netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("10.77.0.2"), 5004, vx4MAC,
		netip.MustParseAddr("2001:db8:4::5"), netip.MustParseAddr("2001:db8:4::1")}
	v6 := leg{"outer IPv6", unix.ETH_P_IPV6, netip.MustParseAddr("fd00:77::1"), netip.MustParseAddr("fd00:77::2"), 5006, vx6MAC,
		netip.MustParseAddr("2001:db8:6::5"), netip.MustParseAddr("2001:db8:6::1")}
	v6in4 := v6
	v6in4.vm, v6in4.router = netip.MustParseAddr("192.168.6.5"), netip.MustParseAddr("192.168.6.1")
	for _, tc := range []struct {
		name    string
		leg     leg
		proto   Proto
		port    uint16
		refused bool
	}{
		{"ICMPv6 echo", v4, ProtoICMP, 0, false},
		{"TCP SYN-ACK", v4, ProtoTCP, 8080, false},
		{"TCP reset", v4, ProtoTCP, 8081, true},
		{"UDP port unreachable", v4, ProtoUDP, 9999, true},
		{"ICMPv6 echo", v6, ProtoICMP, 0, false},
		{"TCP reset", v6, ProtoTCP, 8081, true},
		{"UDP port unreachable", v6, ProtoUDP, 9999, true},
		{"ICMP echo, inner IPv4", v6in4, ProtoICMP, 0, false},
		{"UDP port unreachable, inner IPv4", v6in4, ProtoUDP, 9999, true},
	} {
		t.Run(tc.leg.family+"/"+tc.name, func(t *testing.T) {
			fd, ifindex, err := lab.PacketSocket(hv, "vhv", tc.leg.ethProto)
			must(t, err)
			defer unix.Close(fd)
			tv := unix.Timeval{Usec: 100_000}
			must(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))
			e := &echo{outerSrc: tc.leg.outerSrc, outerDst: tc.leg.vtep, sport: 50000, ipID: 1, vni: tc.leg.vni,
				innerSrc: tc.leg.vm, innerDst: tc.leg.router, ident: 0x4242, seq: 9,
				proto: tc.proto, port: tc.port, innerSport: innerPort(tc.leg.vni, tc.leg.vm, tc.proto, tc.port)}
			e.outerSrcMAC, e.outerDstMAC = mac(t, hvMAC), mac(t, beMAC)
			e.innerSrcMAC, e.innerDstMAC = mac(t, vmMAC), mac(t, tc.leg.innerMAC)
			frame := buildEcho(e)
			buf := make([]byte, 2048)
			// The first probe may go while the backend still resolves the
			// probe host's address: send again until answered (1 s).
			for deadline := time.Now().Add(time.Second); ; {
				must(t, lab.SendFrame(fd, ifindex, frame))
				for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
					n, from, err := unix.Recvfrom(fd, buf, 0)
					if err != nil {
						continue
					}
					if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
						continue
					}
					r, ok := parseReply(buf[:n])
					if !ok || r.vm != tc.leg.vm {
						continue
					}
					if r.outerSrc != tc.leg.vtep || r.vni != tc.leg.vni || r.routerSrc != tc.leg.router || r.proto != tc.proto ||
						r.refused != tc.refused || r.seq != 9 || (!r.anyRun && r.ident != 0x4242) {
						t.Fatalf("answer %+v", r)
					}
					if tc.proto != ProtoICMP && (r.port != tc.port || r.vmPort != e.innerSport) {
						t.Fatalf("answer ports %d -> %d, want %d -> %d", r.port, r.vmPort, tc.port, e.innerSport)
					}
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("no answer from the kernel backend within 1 s (a checksum it does not verify, or a frame it cannot take)")
				}
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mac(t *testing.T, s string) [6]byte {
	t.Helper()
	m, err := parseMAC(s)
	must(t, err)
	return m
}
