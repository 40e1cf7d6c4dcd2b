package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/topo"
)

// probeRun is one graygw probe run: its VMs (VNI/address) towards router.
type probeRun struct {
	vni    uint32
	vms    []string
	router string
}

// answeredBy runs the probes through the controller (ICMP or ICMPv6 echo
// through the gateway, to vip when set) and returns which backend answered
// each VM; a probe run that does not exit 0 fails t.
func answeredBy(t *testing.T, g func(...string) (int, string, string), what, vip string, runs ...probeRun) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, r := range runs {
		args := []string{"probe", "--router", r.router}
		if vip != "" {
			args = append(args, "--vip", vip)
		}
		for _, vm := range r.vms {
			args = append(args, "--vm", fmt.Sprintf("%d/%s", r.vni, vm))
		}
		code, out, stderr := g(args...)
		if code != 0 {
			t.Fatalf("%s: graygw %s: exit %d\nstdout:\n%s\nstderr:\n%s", what, strings.Join(args, " "), code, out, stderr)
		}
		t.Logf("%s: graygw %s\n%s", what, strings.Join(args, " "), out)
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) < 6 || f[0] != fmt.Sprint(r.vni) || f[3] != "ok" {
				continue
			}
			got[f[1]] = f[5] // VNI VM ROUTER STATUS RECEIVED ANSWERED-BY
		}
	}
	return got
}

// wantAnswers checks that every VM of got was answered by base, but moved by gray.
func wantAnswers(t *testing.T, what string, got map[string]string, vms []string, moved, base, gray string) {
	t.Helper()
	for _, v := range vms {
		w := base
		if v == moved {
			w = gray
		}
		if got[v] != w {
			t.Errorf("%s: %s answered by %q, want %s (all: %v)", what, v, got[v], w, got)
		}
	}
}

// dualStackProbes is what the IPv6 lab tests probe in a dual-stack VPC of
// VMs 5 and 6: vm is VM 5's IPv6 address (the one they move); runs probe both
// IPv6 addresses against the IPv6 router and VM 5's IPv4 address against the
// IPv4 one; all is every address probed.
func dualStackProbes(vpc topo.VPC) (vm string, runs []probeRun, all []string) {
	vm, other, vm4 := vpc.VMAddr6(5).String(), vpc.VMAddr6(6).String(), vpc.VMAddr(5).String()
	runs = []probeRun{{vpc.VNI, []string{vm, other}, vpc.RouterAddr6().String()}, {vpc.VNI, []string{vm4}, vpc.RouterAddr().String()}}
	return vm, runs, []string{vm, other, vm4}
}

// ping6VM5 fails the test unless the kernel's ping6 from VM 5 to its IPv6
// router is answered 5 times of 5.
func ping6VM5(t *testing.T, ls *labStack, vpc topo.VPC, what string) {
	t.Helper()
	if n, err := ls.Topo.Ping6(vpc, 5, 5); err != nil || n != 5 {
		t.Errorf("ping6 %s: %d/5 answered, %v", what, n, err)
	}
}

// TestCLIIPv6CutoverInTheLab: an IPv6 VM of a dual-stack VPC (inner IPv6 in
// the hypervisor's VXLAN over IPv4, fd00:1::5) is cut over to the gray
// cluster and rolled back with the CLI, through the controller's API and a
// real agent over the lab's XDP gateway. ICMPv6 probes through the gateway
// say which backend answered at each step; the kernel's own ping6 is
// answered throughout; the VM's neighbour and its IPv4 address stay on base.
func TestCLIIPv6CutoverInTheLab(t *testing.T) {
	vpc := topo.VPC{VNI: 5001, Subnet: 1, VMs: []uint8{5, 6}, IPv6: true}
	ls := startLabStackVPCs(t, "ggcl6", []topo.VPC{vpc})
	g := ls.cli(t)
	vm, runs, all := dualStackProbes(vpc)
	ping6 := func(what string) { t.Helper(); ping6VM5(t, ls, vpc, what) }

	if code, out, stderr := g("apply", "-f", ls.intentFile(t, ""), "--wait"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
	}
	wantAnswers(t, "before the cutover", answeredBy(t, g, "before the cutover", "", runs...), all, "", "base-1", "gray-1")
	ping6("before the cutover")

	if code, out, stderr := g("cutover", "--vm", "5001/"+vm, "--pool", "gray-router", "--name", "vm6", "--wait"); code != 0 {
		t.Fatalf("cutover --vm 5001/%s: exit %d\n%s%s", vm, code, out, stderr)
	}
	wantAnswers(t, "after the cutover", answeredBy(t, g, "after the cutover", "", runs...), all, vm, "base-1", "gray-1")
	ping6("from the moved VM")
	if code, out, stderr := g("counters", "--kind", "rule"); code != 0 || !strings.Contains(out, "vm6") {
		t.Errorf("counters --kind rule: exit %d, no vm6 row\n%s%s", code, out, stderr)
	}

	if code, out, stderr := g("rollback", "--step", "--wait"); code != 0 {
		t.Fatalf("rollback --step: exit %d\n%s%s", code, out, stderr)
	}
	wantAnswers(t, "after the rollback", answeredBy(t, g, "after the rollback", "", runs...), all, "", "base-1", "gray-1")
	ping6("after the rollback")
}

// TestCLIIPv6VIPInTheLab: a VPC over the lab's IPv6 underlay (the
// hypervisor's kernel VXLAN over IPv6 to the IPv6 VIP fd00:ff::1, outer UDP
// checksums on) served by pools of IPv6-underlay backends, beside the IPv4
// VIP: ICMPv6 and ICMP probes through the gateway (outer IPv6, inner IPv6 and
// IPv4) are answered by base; graygw cutover --vm 5003/fd00:3::5 --vip
// vpc-router6 moves the IPv6 VM to gray (the backends' kernels accept the rewritten
// frames: the gateway updated the outer UDP checksum), rollback moves it
// back; ping6 is answered throughout.
func TestCLIIPv6VIPInTheLab(t *testing.T) {
	vpc := topo.VPC{VNI: 5003, Subnet: 3, VMs: []uint8{5, 6}, IPv6: true, Underlay6: true}
	ls := startLabStackVPCs(t, "ggcl6v", []topo.VPC{vpc})
	g := ls.cli(t)
	// The lab intent has the IPv6 VIP and its pools for an Underlay6 VPC.
	path := ls.intentFile(t, "")
	vip6, base6, gray6 := probetest.VIPName6, "base6-1", "gray6-1"
	vm, runs, all := dualStackProbes(vpc)
	ping6 := func(what string) { t.Helper(); ping6VM5(t, ls, vpc, what) }

	if code, out, stderr := g("apply", "-f", path, "--wait"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
	}
	wantAnswers(t, "before the cutover", answeredBy(t, g, "before the cutover", vip6, runs...), all, "", base6, gray6)
	ping6("before the cutover")

	if code, out, stderr := g("cutover", "--vm", "5003/"+vm, "--pool", probetest.GrayPool6, "--vip", vip6, "--wait"); code != 0 {
		t.Fatalf("cutover --vm 5003/%s: exit %d\n%s%s", vm, code, out, stderr)
	}
	wantAnswers(t, "after the cutover", answeredBy(t, g, "after the cutover", vip6, runs...), all, vm, base6, gray6)
	ping6("from the moved VM")

	if code, out, stderr := g("rollback", "--step", "--wait"); code != 0 {
		t.Fatalf("rollback --step: exit %d\n%s%s", code, out, stderr)
	}
	wantAnswers(t, "after the rollback", answeredBy(t, g, "after the rollback", vip6, runs...), all, "", base6, gray6)
	ping6("after the rollback")
}
