package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/graygw/graygw/internal/lab"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/topo"
)

// TestCLIVLANUnderlayInTheLab: the lab over its 802.1Q-tagged underlay (the
// hypervisor on VID 100 behind the gateway's port 1, which accepts it; base on
// VID 300 behind port 2, which tags with it; gray untagged), with the intent
// applied by the CLI through the controller to a real agent over the XDP
// gateway. The VM's pings are answered by base (the kernel's VXLAN on b0.300
// only gets what the gateway tagged 300); graygw cutover --vm moves it to gray
// (untagged) and its pings still answer, counted on gray-1; rollback returns
// it to base; a frame to the VIP tagged with VID 200, which port 1 does not
// accept, is counted VLAN_NOT_ACCEPTED.
func TestCLIVLANUnderlayInTheLab(t *testing.T) {
	vpc := topo.VPC{VNI: 5001, Subnet: 1, VMs: []uint8{5, 6}, Tagged: true}
	ls := startLabStackVPCs(t, "ggclvl", []topo.VPC{vpc})
	g := ls.cli(t)
	// backendPackets is a backend's packet counter, per graygw counters.
	backendPackets := func(name string) int {
		t.Helper()
		return counter(t, g, "backend", name)
	}
	ping := func(what string) {
		t.Helper()
		if n, err := ls.Topo.Ping(vpc, 5, 5); err != nil || n != 5 {
			t.Errorf("ping %s: %d/5 answered, %v", what, n, err)
		}
	}
	// pingAnsweredBy pings from the VM and checks that want's counter, and
	// not the other backend's, counted the requests.
	pingAnsweredBy := func(what, want, other string) {
		t.Helper()
		w0, o0 := backendPackets(want), backendPackets(other)
		ping(what)
		if w, o := backendPackets(want)-w0, backendPackets(other)-o0; w < 5 || o != 0 {
			t.Errorf("%s: %s counted %d packets (want >= 5), %s %d (want 0)", what, want, w, other, o)
		}
	}

	path := ls.intentFile(t, "")
	if code, out, stderr := g("apply", "-f", path, "--wait"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
	}
	pingAnsweredBy("before the cutover", "base-1", "gray-1")

	vm := "5001/" + vpc.VMAddr(5).String()
	if code, out, stderr := g("cutover", "--vm", vm, "--pool", "gray-router", "--name", "vlan-vm", "--wait"); code != 0 {
		t.Fatalf("cutover --vm %s: exit %d\n%s%s", vm, code, out, stderr)
	}
	pingAnsweredBy("after the cutover", "gray-1", "base-1")

	if code, out, stderr := g("rollback", "--step", "--wait"); code != 0 {
		t.Fatalf("rollback --step: exit %d\n%s%s", code, out, stderr)
	}
	pingAnsweredBy("after the rollback", "base-1", "gray-1")

	// A VID port 1 does not accept: dropped and counted by reason.
	const sent = 3
	before := counter(t, g, "drop", "VLAN_NOT_ACCEPTED")
	fd, ifindex, err := lab.PacketSocket(ls.Topo.HV, "h0", unix.ETH_P_ALL)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	hvMAC, err := ls.Topo.Lab.MAC(ls.Topo.HV, "h0")
	if err != nil {
		t.Fatal(err)
	}
	frame := taggedVXLAN(ls.Topo.PortMAC[topo.PortHV], hvMAC, 200, vpc)
	for range sent {
		if err := lab.SendFrame(fd, ifindex, frame); err != nil {
			t.Fatal(err)
		}
	}
	// The peer's XDP runs in its own softirq: wait for the count to settle.
	got := 0
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got = counter(t, g, "drop", "VLAN_NOT_ACCEPTED") - before; got >= sent || time.Now().After(deadline) {
			break
		}
	}
	if got != sent {
		_, out, _ := g("counters", "--kind", "drop")
		t.Errorf("VLAN_NOT_ACCEPTED rose by %d after %d frames on VID 200, want %d\n%s", got, sent, sent, out)
	}
}

// counter returns the packets of the graygw counters row of kind and name
// (0 when there is none).
func counter(t *testing.T, g func(...string) (int, string, string), kind, name string) int {
	t.Helper()
	code, out, stderr := g("counters", "--kind", kind)
	if code != 0 {
		t.Fatalf("counters --kind %s: exit %d\n%s%s", kind, code, out, stderr)
	}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l) // GATEWAY KIND NAME PACKETS BYTES
		if len(f) == 5 && f[1] == kind && f[2] == name {
			n, err := strconv.Atoi(f[3])
			if err != nil {
				t.Fatalf("counters --kind %s: %q: %v", kind, l, err)
			}
			return n
		}
	}
	return 0
}

// taggedVXLAN is a frame from the hypervisor to the VIP tagged with vid: VXLAN
// of vpc carrying an ICMP echo request from its VM .5 to its router.
func taggedVXLAN(dst, src string, vid uint16, vpc topo.VPC) []byte {
	echo := testpkt.L4{Proto: testpkt.ProtoICMP, SPort: 0x1234, DPort: 1}
	inner := testpkt.Inner(testpkt.Eth{Dst: testpkt.MAC(topo.RouterMAC), Src: testpkt.MAC(src)},
		testpkt.IP{Src: vpc.VMAddr(5), Dst: vpc.RouterAddr()}, echo)
	outer := testpkt.VXLAN(testpkt.Eth{Dst: testpkt.MAC(dst), Src: testpkt.MAC(src)},
		testpkt.IP{Src: topo.HVAddr, Dst: topo.VIP}, 49152, vpc.VNI, inner)
	return testpkt.Tag(outer, vid)
}
