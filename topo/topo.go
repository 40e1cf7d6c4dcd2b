// Package topo builds graygw's lab topology in network namespaces: a hypervisor
// (VTEP) hosting VMs in several VPCs (VNIs), the gateway node, and base and gray
// backend servers that are Linux kernel VXLAN endpoints answering the VMs' pings
// as the VPC router would. The demo and the end-to-end tests run on it; the mininet
// version of the same topology, with two hypervisors and a BGP router, is
// topo/mininet/graygw_topo.py (docs/testing.md).
//
//	hv (VTEP 10.1.0.10)          gw                    base   (10.2.0.11)
//	vx<VNI>: VMs 192.168.N.x --- p1 [XDP] p2 ------------ b0 vx<VNI>: 192.168.N.1
//	                                     p3 ------------ g0 vx<VNI>: 192.168.N.1
//	                                                     gray   (10.3.0.21)
//
// VM traffic is encapsulated by the hypervisor's kernel towards the VIP; the gateway
// picks a backend and rewrites the outer header; the backend decapsulates, answers,
// and sends the reply straight back to the hypervisor (routed, not via the VIP).
//
// A VPC may be dual-stack (VPC.IPv6: VMs fd00:N::x, inner IPv6 in VXLAN) and may
// run over the IPv6 underlay (VPC.Underlay6: VXLAN over IPv6 to VIP6, the
// backends at fd00:f2::11 and fd00:f3::21).
//
// A VPC may ask for the 802.1Q-tagged underlay (VPC.Tagged, for the whole
// IPv4 underlay): the hypervisor reaches the gateway on VLAN HVVID (the
// gateway's port 1 must accept the VID), base sits behind VLAN BaseVID (the
// gateway's port 2 must tag with it), gray stays untagged.
package topo

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/graygw/graygw/internal/lab"
)

// Fixed addresses of the lab.
var (
	VIP       = netip.MustParseAddr("10.255.0.1")
	HVAddr    = netip.MustParseAddr("10.1.0.10")
	BaseAddr  = netip.MustParseAddr("10.2.0.11")
	GrayAddr  = netip.MustParseAddr("10.3.0.21")
	RouterMAC = "02:00:00:00:10:fe" // the VPC router's MAC, the same on base and gray

	// The IPv6 underlay (unique local addresses), built when a VPC has
	// Underlay6: the hypervisor behind the gateway's p1 (fd00:f1::1), base
	// behind p2 (fd00:f2::1), gray behind p3 (fd00:f3::1), and the IPv6 VIP.
	VIP6      = netip.MustParseAddr("fd00:ff::1")
	HVAddr6   = netip.MustParseAddr("fd00:f1::10")
	BaseAddr6 = netip.MustParseAddr("fd00:f2::11")
	GrayAddr6 = netip.MustParseAddr("fd00:f3::21")
)

// VIDs of the tagged underlay (VPC.Tagged): the hypervisor's link to the
// gateway and base's. The gateway's port 1 accepts HVVID, its port 2 tags
// with BaseVID.
const (
	HVVID   = 100
	BaseVID = 300
)

// Gateway port numbers (P4Runtime port -> interface in the gateway namespace).
const (
	PortHV   = 1
	PortBase = 2
	PortGray = 3
)

// VPC is one VNI with its VMs' inner addresses (last octet, in 192.168.Subnet.0/24;
// with IPv6 also fd00:Subnet::host in fd00:Subnet::/64).
type VPC struct {
	VNI    uint32
	Subnet uint8
	VMs    []uint8
	// IPv6 makes the VPC dual-stack: every VM and the VPC router also have an
	// IPv6 address (VMAddr6, RouterAddr6), so VM traffic carries inner IPv6 in
	// VXLAN.
	IPv6 bool
	// Underlay6 carries the VPC's VXLAN over the IPv6 underlay, to VIP6 (the
	// backends answer from BaseAddr6 and GrayAddr6), instead of IPv4 to VIP.
	Underlay6 bool
	// Tagged puts the lab's IPv4 underlay on 802.1Q VLANs (one VPC asking is
	// enough; every VPC then rides it): hypervisor-gateway on HVVID,
	// gateway-base on BaseVID, gateway-gray untagged.
	Tagged bool
}

// VMAddr returns the inner address of VM host in the VPC.
func (v VPC) VMAddr(host uint8) netip.Addr { return netip.AddrFrom4([4]byte{192, 168, v.Subnet, host}) }

// RouterAddr is the VPC router's inner address, answered by the backends.
func (v VPC) RouterAddr() netip.Addr { return v.VMAddr(1) }

// VMAddr6 returns the inner IPv6 address of VM host in a dual-stack VPC:
// fd00:Subnet::host (a ULA, as every lab address).
func (v VPC) VMAddr6(host uint8) netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfd, 1: 0x00, 3: v.Subnet, 15: host})
}

// RouterAddr6 is the VPC router's inner IPv6 address, answered by the backends.
func (v VPC) RouterAddr6() netip.Addr { return v.VMAddr6(1) }

// Topology is a built lab.
type Topology struct {
	Lab                *lab.Lab
	HV, GW, Base, Gray string // namespace names
	// Ports maps the gateway's port numbers to its interface names.
	Ports map[uint16]string
	// MACs of the gateway ports and the backends' underlay interfaces.
	PortMAC          map[uint16]string
	BaseMAC, GrayMAC string
	VPCs             []VPC
}

// DefaultVPCs are two VPCs of three VMs each.
var DefaultVPCs = []VPC{{VNI: 5001, Subnet: 1, VMs: []uint8{5, 6, 7}}, {VNI: 5002, Subnet: 2, VMs: []uint8{5, 6, 7}}}

// Build creates the topology in l. On error the caller closes l.
func Build(l *lab.Lab, vpcs []VPC) (*Topology, error) {
	t := &Topology{Lab: l, VPCs: vpcs, Ports: map[uint16]string{PortHV: "p1", PortBase: "p2", PortGray: "p3"}, PortMAC: map[uint16]string{}}
	var err error
	for _, ns := range []struct {
		name string
		dst  *string
	}{{"hv", &t.HV}, {"gw", &t.GW}, {"base", &t.Base}, {"gray", &t.Gray}} {
		if *ns.dst, err = l.NS(ns.name); err != nil {
			return nil, err
		}
	}
	if err := l.Veth(t.GW, "p1", t.HV, "h0"); err != nil {
		return nil, err
	}
	if err := l.Veth(t.GW, "p2", t.Base, "b0"); err != nil {
		return nil, err
	}
	if err := l.Veth(t.GW, "p3", t.Gray, "g0"); err != nil {
		return nil, err
	}
	err = l.Script(t.GW, `
		sysctl -qw net.ipv4.ip_forward=1
		sysctl -qw net.ipv4.conf.all.rp_filter=0
		ip addr add 10.1.0.1/24 dev p1
		ip addr add 10.2.0.1/24 dev p2
		ip addr add 10.3.0.1/24 dev p3`)
	if err != nil {
		return nil, err
	}
	for port, dev := range t.Ports {
		if t.PortMAC[port], err = l.MAC(t.GW, dev); err != nil {
			return nil, err
		}
	}
	err = l.Script(t.HV, fmt.Sprintf(`
		ip addr add %s/24 dev h0
		ip route add default via 10.1.0.1`, HVAddr))
	if err != nil {
		return nil, err
	}
	for _, be := range []struct {
		ns, dev string
		addr    netip.Addr
		gw      string
		mac     *string
	}{{t.Base, "b0", BaseAddr, "10.2.0.1", &t.BaseMAC}, {t.Gray, "g0", GrayAddr, "10.3.0.1", &t.GrayMAC}} {
		// GRO gives the veth a NAPI context, which XDP_REDIRECT into its peer needs.
		err = l.Script(be.ns, fmt.Sprintf(`
			ip addr add %s/24 dev %s
			ip route add default via %s
			ethtool -K %s gro on`, be.addr, be.dev, be.gw, be.dev))
		if err != nil {
			return nil, err
		}
		if *be.mac, err = l.MAC(be.ns, be.dev); err != nil {
			return nil, err
		}
	}
	if _, err := l.Exec(t.HV, "ethtool", "-K", "h0", "gro", "on"); err != nil {
		return nil, err
	}
	if slices.ContainsFunc(vpcs, func(v VPC) bool { return v.Tagged }) {
		if err := t.tagUnderlay(); err != nil {
			return nil, err
		}
	}
	if slices.ContainsFunc(vpcs, func(v VPC) bool { return v.Underlay6 }) {
		if err := t.addUnderlay6(); err != nil {
			return nil, err
		}
	}
	for _, v := range vpcs {
		if err := t.addVPC(v); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// tagUnderlay tags the hypervisor's link on HVVID and base's on BaseVID, at
// both ends: the gateway's XDP program sees the hypervisor's VXLAN tagged on
// p1 and must tag what it sends base on p2 (base drops untagged frames); the
// gateway's kernel, routing the backends' answers to the hypervisor, tags and
// untags as a VLAN subinterface would (vlan_linux.go).
func (t *Topology) tagUnderlay() error {
	for _, e := range []struct {
		ns, dev string
		vid     uint16
	}{{t.HV, "h0", HVVID}, {t.GW, "p1", HVVID}, {t.Base, "b0", BaseVID}, {t.GW, "p2", BaseVID}} {
		if err := t.vlanEnd(e.ns, e.dev, e.vid); err != nil {
			return err
		}
	}
	return nil
}

// addUnderlay6 gives every link an IPv6 subnet besides its IPv4 one: the
// gateway's kernel routes between them (the backends' answers to the
// hypervisor), its XDP program serves VIP6.
func (t *Topology) addUnderlay6() error {
	l := t.Lab
	err := l.Script(t.GW, `
		sysctl -qw net.ipv6.conf.all.forwarding=1
		ip addr add fd00:f1::1/64 dev p1 nodad
		ip addr add fd00:f2::1/64 dev p2 nodad
		ip addr add fd00:f3::1/64 dev p3 nodad`)
	if err != nil {
		return err
	}
	for _, h := range []struct {
		ns, dev string
		addr    netip.Addr
		gw      string
	}{{t.HV, "h0", HVAddr6, "fd00:f1::1"}, {t.Base, "b0", BaseAddr6, "fd00:f2::1"}, {t.Gray, "g0", GrayAddr6, "fd00:f3::1"}} {
		err := l.Script(h.ns, fmt.Sprintf(`
			ip addr add %s/64 dev %s nodad
			ip -6 route add default via %s`, h.addr, h.dev, h.gw))
		if err != nil {
			return err
		}
	}
	// VXLAN over IPv6 carries a UDP checksum (the kernel's default). With
	// checksum offload the hypervisor's veth sends it unfinished (pseudo-header
	// only, for the "NIC" to complete); the gateway's XDP program updates the
	// checksum it finds, so the backend would get a wrong one. A real NIC
	// finishes it before the wire: here the kernel does, in software.
	_, err = l.Exec(t.HV, "ethtool", "-K", "h0", "tx", "off")
	return err
}

func (t *Topology) addVPC(v VPC) error {
	l := t.Lab
	dev := fmt.Sprintf("vx%d", v.VNI)
	// VXLAN over IPv4 to VIP, or over IPv6 to VIP6 (40 more bytes of outer
	// header: a smaller MTU so that a full VM frame still fits the veth's 1500).
	hv, vip, base, gray, mtu := HVAddr, VIP, BaseAddr, GrayAddr, 1450
	if v.Underlay6 {
		hv, vip, base, gray, mtu = HVAddr6, VIP6, BaseAddr6, GrayAddr6, 1430
	}
	// An IPv4-only VPC's VXLAN devices carry no IPv6 at all: without this the
	// kernel's own router solicitations and MLD reports ride the VNI as inner
	// IPv6, which the gateway forwards to the default pool, and a test that
	// counts a VIP's packets would count them too.
	v4only := ""
	if !v.IPv6 {
		v4only = fmt.Sprintf("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1", dev)
	}
	// Hypervisor: every VM frame of the VNI goes to the VIP.
	err := l.Script(t.HV, fmt.Sprintf(`
		ip link add %s mtu %d type vxlan id %d local %s remote %s dstport 4789 nolearning
		%s
		ip link set %s up
		ip neigh add %s lladdr %s dev %s nud permanent`,
		dev, mtu, v.VNI, hv, vip, v4only, dev, v.RouterAddr(), RouterMAC, dev))
	if err != nil {
		return err
	}
	for _, vm := range v.VMs {
		if _, err := l.Exec(t.HV, "ip", "addr", "add", v.VMAddr(vm).String()+"/24", "dev", dev); err != nil {
			return err
		}
		// nodad: the address is usable at once (no duplicate detection
		// probes through the gateway first).
		if v.IPv6 {
			if _, err := l.Exec(t.HV, "ip", "addr", "add", v.VMAddr6(vm).String()+"/64", "dev", dev, "nodad"); err != nil {
				return err
			}
		}
	}
	if v.IPv6 {
		// The router's MAC, as for IPv4: no neighbour discovery through the gateway.
		if _, err := l.Exec(t.HV, "ip", "-6", "neigh", "add", v.RouterAddr6().String(), "lladdr", RouterMAC, "dev", dev, "nud", "permanent"); err != nil {
			return err
		}
	}
	hvMAC, err := l.MAC(t.HV, dev)
	if err != nil {
		return err
	}
	// Backends: the VPC router, answering straight back to the hypervisor.
	for _, be := range []struct {
		ns   string
		addr netip.Addr
	}{{t.Base, base}, {t.Gray, gray}} {
		err := l.Script(be.ns, fmt.Sprintf(`
			ip link add %s mtu %d type vxlan id %d local %s remote %s dstport 4789 nolearning
			%s
			ip link set %s address %s
			ip addr add %s/24 dev %s
			ip link set %s up`,
			dev, mtu, v.VNI, be.addr, hv, v4only, dev, RouterMAC, v.RouterAddr(), dev, dev))
		if err != nil {
			return err
		}
		for _, vm := range v.VMs {
			if _, err := l.Exec(be.ns, "ip", "neigh", "add", v.VMAddr(vm).String(), "lladdr", hvMAC, "dev", dev, "nud", "permanent"); err != nil {
				return err
			}
		}
		if !v.IPv6 {
			continue
		}
		if _, err := l.Exec(be.ns, "ip", "addr", "add", v.RouterAddr6().String()+"/64", "dev", dev, "nodad"); err != nil {
			return err
		}
		for _, vm := range v.VMs {
			if _, err := l.Exec(be.ns, "ip", "-6", "neigh", "add", v.VMAddr6(vm).String(), "lladdr", hvMAC, "dev", dev, "nud", "permanent"); err != nil {
				return err
			}
		}
	}
	return nil
}

// Ping sends count echo requests from VM host of vpc to its VPC router through the
// gateway and returns how many were answered.
func (t *Topology) Ping(vpc VPC, host uint8, count int) (int, error) {
	out, _ := t.Lab.Exec(t.HV, "ping", "-q", "-n", "-c", fmt.Sprint(count), "-i", "0.01", "-W", "1",
		"-I", vpc.VMAddr(host).String(), vpc.RouterAddr().String())
	return pingSummary(out, vpc.VMAddr(host))
}

// Ping6 is Ping over IPv6: count ICMPv6 echo requests from the VM's IPv6
// address to the VPC router's (a dual-stack VPC), carried as inner IPv6 in
// VXLAN.
func (t *Topology) Ping6(vpc VPC, host uint8, count int) (int, error) {
	if !vpc.IPv6 {
		return 0, fmt.Errorf("topo: vpc %d is not dual-stack (VPC.IPv6)", vpc.VNI)
	}
	out, _ := t.Lab.Exec(t.HV, "ping", "-6", "-q", "-n", "-c", fmt.Sprint(count), "-i", "0.01", "-W", "1",
		"-I", vpc.VMAddr6(host).String(), vpc.RouterAddr6().String())
	return pingSummary(out, vpc.VMAddr6(host))
}

func pingSummary(out string, from netip.Addr) (int, error) {
	var sent, recv int
	for _, line := range splitLines(out) {
		if n, _ := fmt.Sscanf(line, "%d packets transmitted, %d received", &sent, &recv); n == 2 {
			return recv, nil
		}
	}
	return 0, fmt.Errorf("topo: ping from %s: no summary in %q", from, out)
}

func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			lines = append(lines, s[start:i])
			start = i + 1
		}
	}
	return append(lines, s[start:])
}
