//go:build linux

package bpf_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/graygw/graygw/bpf"
	"github.com/graygw/graygw/bpf/internal/bpftest"
	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// TestEndToEnd forwards real frames between network namespaces:
//
//	client c0 ──veth── g0 [gateway: graygw XDP, native] g1 ──veth── b0 base
//	                                                     g2 ──veth── y0 gray
//
// The client sends VXLAN and plain TCP to the VIP with AF_PACKET; the backends
// capture with AF_PACKET. It checks where each flow lands, the rewritten
// headers and checksums, that a gray rule for one VM moves only that VM, that
// drops are counted, and that a restarted loader keeps the traffic flowing.
func TestEndToEnd(t *testing.T) {
	l := newE2ELab(t, "graygw-e2e")
	client, gw, base, gray, d, pins := l.client, l.gw, l.base, l.gray, l.d, l.pins
	const (
		poolBase, poolGray = 1, 32769 // pool 1's two versions, as the controller numbers them
		beBase, beGray     = 11, 21
		vni                = 5001
	)
	underBase, underGray := netip.MustParseAddr("10.2.0.11"), netip.MustParseAddr("10.3.0.21")
	must(t, d.SetVIP(testvectors.VIP1, bpf.VIP{ID: 1, DefaultPool: poolBase}))
	must(t, d.SetTenant(vni, 7))
	must(t, d.SetBackendEntry(beBase, bpf.Backend{Port: portBase, SMAC: mac(t, gw, "g1"), DMAC: mac(t, base, "b0"), UnderlayIP: ip4u(underBase)}))
	must(t, d.SetBackendEntry(beGray, bpf.Backend{Port: portGray, SMAC: mac(t, gw, "g2"), DMAC: mac(t, gray, "y0"), UnderlayIP: ip4u(underGray)}))
	fill := func(id uint16) []uint16 {
		ids := make([]uint16, pipeline.Buckets)
		for i := range ids {
			ids[i] = id
		}
		return ids
	}
	must(t, d.SetBuckets(poolBase, 0, fill(beBase)))
	must(t, d.SetBuckets(poolGray, 0, fill(beGray)))

	tx := openPacket(t, client, "c0")
	rxBase, rxGray := openPacket(t, base, "b0"), openPacket(t, gray, "y0")

	// Flows, told apart by their inner (or plain) source port.
	vmA := func(sport uint16) []byte { // the VM the gray rule moves
		return testvectors.Overlay(testvectors.VIP1, vni, "10.0.0.5", "192.168.1.1", tcpL4(sport, 80))
	}
	vmB := func(sport uint16) []byte {
		return testvectors.Overlay(testvectors.VIP1, vni, "10.0.0.7", "192.168.1.1", tcpL4(sport, 80))
	}
	plain := func(sport uint16) []byte { return testvectors.PlainTo(testvectors.VIP1, tcpL4(sport, 443)) }
	send := func(frames ...[]byte) {
		t.Helper()
		for _, f := range frames {
			tx.send(t, f)
		}
	}

	// 1. No gray rule: everything goes to base.
	send(vmA(1001), vmA(1002), vmB(2001), plain(3001))
	expectArrivals(t, rxBase, underBase, 1001, 1002, 2001, 3001)
	expectArrivals(t, rxGray, underGray)

	// 2. Move VM A to gray: only its flows move.
	vmRule := model.GrayRule{Priority: 100, Match: pipeline.FlowKey{VNI: vni, Src: 0x0a000005},
		Mask: pipeline.FlowKey{VNI: pipeline.MaxVNI, Src: 0xffffffff}, Action: model.SetPool, Pool: poolGray}
	must(t, d.InsertRule(vmRule))
	send(vmA(1001), vmA(1002), vmB(2001), plain(3001))
	expectArrivals(t, rxGray, underGray, 1001, 1002)
	expectArrivals(t, rxBase, underBase, 2001, 3001)
	if c, err := d.RuleCounter(vmRule); err != nil || c.Packets != 2 {
		t.Fatalf("gray rule counter %+v %v, want 2 packets", c, err)
	}

	// 3. Broken packets are dropped and counted; others' traffic passes.
	before, err := d.DropCounters()
	must(t, err)
	ttl1 := vmB(2002)
	ttl1[14+8] = 1
	badFlags := vmB(2003)
	badFlags[14+20+8] = 0
	notVIP := testvectors.Overlay(testvectors.NotAVIP, vni, "10.0.0.7", "192.168.1.1", tcpL4(2004, 80))
	send(ttl1, badFlags, notVIP)
	expectArrivals(t, rxBase, underBase)
	expectArrivals(t, rxGray, underGray)
	after, err := d.DropCounters()
	must(t, err)
	for _, r := range []pipeline.Reason{pipeline.TTLExpired, pipeline.VXLANBadFlags, pipeline.NotVIP} {
		if n := after[r].Packets - before[r].Packets; n != 1 {
			t.Errorf("drop_reasons[%s] += %d, want 1", r, n)
		}
	}

	// 4. Restart: a new loader reuses the pins and takes over the pinned link.
	must(t, d.Close())
	d2, err := bpf.Open(bpf.Options{PinDir: pins})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { d2.Close() })
	send(vmA(1003), vmB(2005)) // no loader process holds anything now
	expectArrivals(t, rxGray, underGray, 1003)
	expectArrivals(t, rxBase, underBase, 2005)
	inNS(t, gw, func() error {
		a, err := d2.Attach("g0", bpf.AttachNative)
		if err == nil && (!a.Replaced || a.Mode != bpf.AttachNative) {
			err = fmt.Errorf("re-attach: %+v, want the pinned native link replaced", a)
		}
		return err
	})
	must(t, d2.DeleteRule(vmRule))
	send(vmA(1004))
	expectArrivals(t, rxBase, underBase, 1004)
	if c, err := d2.BackendCounter(beGray); err != nil || c.Packets != 3 {
		t.Errorf("gray backend counter %+v %v, want 3 packets across the restart", c, err)
	}
}

// The ports of the end-to-end lab: the client's, base's and gray's.
const portIn, portBase, portGray = 0, 1, 2

// e2eLab is the end-to-end tests' lab:
//
//	client c0 ──veth── g0 [gateway: graygw XDP, native] g1 ──veth── b0 base
//	                                                     g2 ──veth── y0 gray
//
// with the program's maps pinned under pins, attached to g0, and the three
// gateway interfaces bound to portIn, portBase and portGray. The client's
// kernel sends no IPv6 of its own (neighbour discovery, MLD): it would reach
// the gateway beside the frames the tests count.
type e2eLab struct {
	client, gw, base, gray netns.NsHandle
	d                      *bpf.Dataplane
	pins                   string
}

// newE2ELab builds the lab (pins named after stem), removed at the end of
// the test; it skips the test without root or bpffs.
func newE2ELab(t *testing.T, stem string) *e2eLab {
	t.Helper()
	bpftest.NeedPins(t, "create network namespaces and attach XDP")
	l := &e2eLab{client: newNS(t), gw: newNS(t), base: newNS(t), gray: newNS(t)}
	veth(t, l.client, "c0", l.gw, "g0")
	noIPv6(t, l.client, "c0")
	veth(t, l.gw, "g1", l.base, "b0")
	veth(t, l.gw, "g2", l.gray, "y0")
	// Native XDP_REDIRECT into a veth needs an XDP program on its peer.
	passProg(t, l.base, "b0")
	passProg(t, l.gray, "y0")

	l.pins = filepath.Join("/sys/fs/bpf", fmt.Sprintf("%s-%d", stem, os.Getpid()))
	t.Cleanup(func() { os.RemoveAll(l.pins) })
	d, err := bpf.Open(bpf.Options{PinDir: l.pins})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	l.d = d
	t.Cleanup(func() { d.Unpin(); d.Close() })
	inNS(t, l.gw, func() error {
		a, err := d.Attach("g0", bpf.AttachNative)
		if err == nil && a.Mode != bpf.AttachNative {
			err = fmt.Errorf("attached %s, want native", a.Mode)
		}
		return err
	})
	t.Cleanup(func() { inNS(t, l.gw, func() error { return d.Detach("g0") }) })
	for port, name := range map[uint16]string{portIn: "g0", portBase: "g1", portGray: "g2"} {
		ifx := linkIn(t, l.gw, name).Attrs().Index
		// in the namespace: the kernel resolves a devmap's ifindex in the writer's
		inNS(t, l.gw, func() error { return d.SetPort(port, ifx) })
	}
	return l
}

// noIPv6 turns IPv6 off on the interfaces names of ns: its kernel sends no
// IPv6 of its own there (AF_PACKET and XDP still see every frame).
func noIPv6(t *testing.T, ns netns.NsHandle, names ...string) {
	t.Helper()
	inNS(t, ns, func() error {
		for _, n := range names {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+n+"/disable_ipv6", []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func tcpL4(sport, dport uint16) testpkt.L4 {
	return testpkt.L4{Proto: testpkt.ProtoTCP, SPort: sport, DPort: dport, Payload: []byte("graygw-e2e")}
}

// newNS creates an unnamed network namespace, gone once its handle is closed
// (and no socket or process is left in it): nothing to collide with, nothing
// left behind even if the test process dies.
func newNS(t *testing.T) netns.NsHandle {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New()
	if err != nil {
		t.Fatalf("new netns: %v", err)
	}
	if err := netns.Set(orig); err != nil {
		panic(err) // the thread is stuck in ns: better to die than to leak it
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// inNS runs f on a thread inside ns.
func inNS(t *testing.T, ns netns.NsHandle, f func() error) {
	t.Helper()
	if err := lab.InHandle(ns, f); err != nil {
		t.Fatal(err)
	}
}

func handle(t *testing.T, ns netns.NsHandle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// veth creates a veth pair between two namespaces and brings both ends up.
func veth(t *testing.T, nsA netns.NsHandle, a string, nsB netns.NsHandle, b string) {
	t.Helper()
	ha, hb := handle(t, nsA), handle(t, nsB)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b, PeerNamespace: netlink.NsFd(nsB)}
	if err := ha.LinkAdd(v); err != nil {
		t.Fatalf("veth %s-%s: %v", a, b, err)
	}
	must(t, ha.LinkSetUp(linkIn(t, nsA, a)))
	must(t, hb.LinkSetUp(linkIn(t, nsB, b)))
}

// linkIn looks the interface name of ns up.
func linkIn(t *testing.T, ns netns.NsHandle, name string) netlink.Link {
	t.Helper()
	l, err := handle(t, ns).LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mac(t *testing.T, ns netns.NsHandle, name string) [6]byte {
	t.Helper()
	var m [6]byte
	copy(m[:], linkIn(t, ns, name).Attrs().HardwareAddr)
	return m
}

// passProg attaches a native XDP_PASS program to name in ns.
func passProg(t *testing.T, ns netns.NsHandle, name string) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 2 /* XDP_PASS */), asm.Return()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	ifx := linkIn(t, ns, name).Attrs().Index
	inNS(t, ns, func() error {
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifx, Flags: link.XDPDriverMode})
		if err == nil {
			t.Cleanup(func() { l.Close() })
		}
		return err
	})
}

// packetSock is an AF_PACKET socket bound to one interface.
type packetSock struct {
	fd      int
	ifindex int
}

func openPacket(t *testing.T, ns netns.NsHandle, name string) *packetSock {
	t.Helper()
	s := packetSock{ifindex: linkIn(t, ns, name).Attrs().Index}
	inNS(t, ns, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		s.fd = fd
		t.Cleanup(func() { unix.Close(fd) })
		tv := unix.Timeval{Usec: 200_000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: s.ifindex})
	})
	return &s
}

func (s *packetSock) send(t *testing.T, frame []byte) {
	t.Helper()
	if err := unix.Sendto(s.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: s.ifindex, Halen: 6}); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// expectArrivals reads what reached s and requires exactly the IPv4 frames
// to underlay whose flows have the given source ports, each rewritten
// correctly. Other traffic (IPv6 neighbour discovery...) is ignored.
func expectArrivals(t *testing.T, s *packetSock, underlay netip.Addr, sports ...uint16) {
	t.Helper()
	expectFrames(t, s, underlay, 0x0800, checkRewritten, sports...)
}

// expectFrames reads what reached s for a while and requires exactly the
// frames of ethertype whose flows have the given source ports, each passing
// check (which returns the flow's source port); frames of other ethertypes
// are ignored.
func expectFrames(t *testing.T, s *packetSock, underlay netip.Addr, ethertype uint16,
	check func(f []byte, underlay netip.Addr) (uint16, error), sports ...uint16) {
	t.Helper()
	want := map[uint16]bool{}
	for _, p := range sports {
		want[p] = true
	}
	got := map[uint16]bool{}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && (len(got) < len(want) || len(want) == 0) {
		n, _, err := unix.Recvfrom(s.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			if len(want) == 0 {
				break // quiet for one read timeout: nothing arrived, as wanted
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		f := buf[:n]
		if n < 34 || binary.BigEndian.Uint16(f[12:]) != ethertype {
			continue
		}
		sport, err := check(f, underlay)
		if err != nil {
			t.Errorf("frame to %v: %v\n%x", underlay, err, f)
			continue
		}
		if !want[sport] || got[sport] {
			t.Errorf("unexpected frame of flow %d at %v", sport, underlay)
		}
		got[sport] = true
	}
	for p := range want {
		if !got[p] {
			t.Errorf("flow %d did not reach %v", p, underlay)
		}
	}
}

// checkRewritten checks a forwarded frame and returns its flow's source port.
func checkRewritten(f []byte, underlay netip.Addr) (uint16, error) {
	ip := f[14:34]
	if dst := netip.AddrFrom4([4]byte(ip[16:20])); dst != underlay {
		return 0, fmt.Errorf("outer dst %v, want %v", dst, underlay)
	}
	if testpkt.Checksum(ip) != 0 {
		return 0, errors.New("bad outer IPv4 checksum")
	}
	if ip[8] != 63 {
		return 0, fmt.Errorf("TTL %d, want 63", ip[8])
	}
	l4 := f[34:]
	if ip[9] == testpkt.ProtoUDP && binary.BigEndian.Uint16(l4[2:]) == pipeline.VXLANPort {
		if l4[6] != 0 || l4[7] != 0 {
			return 0, errors.New("outer UDP checksum not 0")
		}
		in := f[14+20+8+8+14:]
		if testpkt.Checksum(in[:20]) != 0 || !testpkt.L4ChecksumOK(in) {
			return 0, errors.New("inner packet damaged")
		}
		return binary.BigEndian.Uint16(in[20:]), nil
	}
	if !testpkt.L4ChecksumOK(f[14:]) {
		return 0, errors.New("bad plain L4 checksum after the rewrite")
	}
	return binary.BigEndian.Uint16(l4), nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ip4u is an IPv4 address as the model's 32-bit number.
func ip4u(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
