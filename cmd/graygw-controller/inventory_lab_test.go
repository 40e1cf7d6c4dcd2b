package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/topo"
)

// invLabVPCs: 5001 and 5002 have an inventory and are in the plan; 5003 has no
// inventory (a plan naming it is refused) and stays on base throughout.
var invLabVPCs = []topo.VPC{
	{VNI: 5001, Subnet: 1, VMs: []uint8{5, 6, 7}},
	{VNI: 5002, Subnet: 2, VMs: []uint8{5, 6}},
	{VNI: 5003, Subnet: 3, VMs: []uint8{5, 6}},
}

// invLabInventory is the intent's vpcs section for 5001 and 5002: every VM of
// the topology, and routes whose next hop is the VPC router address the lab
// backends answer (two routes through it: one destination, probed once).
func invLabInventory() string {
	var b strings.Builder
	b.WriteString("vpcs:\n")
	for _, v := range invLabVPCs[:2] {
		var vms []string
		for _, h := range v.VMs {
			vms = append(vms, fmt.Sprintf("{address: %s, name: vm-%d-%d}", v.VMAddr(h), v.Subnet, h))
		}
		fmt.Fprintf(&b, "  - vni: %d\n    cidrs: [192.168.%d.0/24]\n    router_mac: \"%s\"\n", v.VNI, v.Subnet, topo.RouterMAC)
		fmt.Fprintf(&b, "    routes:\n      - {prefix: 0.0.0.0/0, next_hop: %s}\n      - {prefix: 10.96.0.0/16, next_hop: %s}\n", v.RouterAddr(), v.RouterAddr())
		fmt.Fprintf(&b, "    vms: [%s]\n", strings.Join(vms, ", "))
	}
	return b.String()
}

// invPlan names only VNIs: the VMs and the router come from the inventory.
func invPlan(name string, vnis ...uint32) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: %s\nvip: %s\npool: %s\nbase_pool: %s\nindividual_vms: 1\n", name, probetest.VIPName,
		probetest.GrayPool, probetest.BasePool)
	b.WriteString("probe: {count: 3, interval: 10ms, timeout: 500ms}\nvpcs:\n")
	for _, v := range vnis {
		fmt.Fprintf(&b, "  - {vni: %d}\n", v)
	}
	return b.String()
}

// rxPackets reads the received-packet counter of the VXLAN device of vni in
// the backend namespace ns: what that backend got of the VPC's traffic.
func rxPackets(t *testing.T, rl *rolloutLab, ns string, vni uint32) int {
	t.Helper()
	out, err := rl.l.Topo.Lab.Exec(ns, "cat", fmt.Sprintf("/sys/class/net/vx%d/statistics/rx_packets", vni))
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("rx_packets of vx%d in %s: %q", vni, ns, out)
	}
	return n
}

// TestInventoryRolloutInTheLab: the intent carries a VPC inventory; a rollout
// plan naming only VNIs runs through the daemon's API against the real agent
// and XDP gateway, its probes (real VXLAN echo requests from the hypervisor)
// taken from the inventory. First a plan naming 5003, which has no inventory,
// is refused and changes nothing, and a Probe of VNI 5003 says what to add.
// Then the plan for 5001 and 5002 completes: after each step the probes were
// exactly the inventory's VMs (each once: its two routes share a next hop),
// answered by gray for the VMs moved so far and by base for the rest;
// afterwards server-side probes of the VNIs (Probe with only a VNI) are
// answered by gray, 5003 by base, and the backends' VXLAN receive counters
// show each VM's own kernel pings ending on gray exactly for the inventory's
// VMs.
func TestInventoryRolloutInTheLab(t *testing.T) {
	rl := newRolloutLabWith(t, "ggin", invLabVPCs, invLabInventory())
	r := startController(t, rl.args...)
	c := r.client(t)
	waitInSync(t, c)
	ctx := context.Background()

	// Refused: 5003 has no inventory (and the plan gives no VMs for it).
	resp, err := c.RolloutStart(ctx, &graygwv1.RolloutStartRequest{PlanYaml: invPlan("bad", 5001, 5003), Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, p := range resp.GetProblems() {
		msgs = append(msgs, p.GetPath()+": "+p.GetMessage())
	}
	t.Logf("plan naming 5003 refused: %s", strings.Join(msgs, "; "))
	if len(msgs) == 0 || !strings.Contains(strings.Join(msgs, " "), "5003") || resp.GetProgress().GetState() == "running" {
		t.Fatalf("plan naming VNI 5003 without inventory: %v", resp)
	}
	if _, err := c.RolloutStatus(ctx, &graygwv1.RolloutStatusRequest{}); status.Code(err) != codes.NotFound {
		t.Errorf("a refused plan left a rollout: %v", err)
	}
	if got := rules(t, c); got != "" {
		t.Errorf("rules after the refused plan: %q", got)
	}
	if n := len(rl.l.DP.Rules()); n != 0 {
		t.Errorf("%d gray rules in the dataplane after the refused plan", n)
	}
	_, err = c.Probe(ctx, &graygwv1.ProbeRequest{Vni: 5003})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "VNI 5003 has no inventory in the intent in force: add a vpcs entry") {
		t.Errorf("probe of VNI 5003: %v", err)
	}
	// Everything on base, probed from the inventory server-side.
	for _, vni := range []uint32{5001, 5002} {
		pr, err := c.Probe(ctx, &graygwv1.ProbeRequest{Vni: vni, ExpectCluster: "base"})
		if err != nil || len(pr.GetResults()) != map[uint32]int{5001: 3, 5002: 2}[vni] {
			t.Fatalf("probe %d before: %v %v", vni, pr, err)
		}
		for _, res := range pr.GetResults() {
			if res.GetStatus() != "ok" || res.GetAnswers()[0].GetBackend() != "base-1" {
				t.Fatalf("before, %d: %v", vni, res)
			}
		}
	}

	resp, err = c.RolloutStart(ctx, &graygwv1.RolloutStartRequest{PlanYaml: invPlan("inv", 5001, 5002), Actor: "test"})
	if err != nil || len(resp.GetProblems()) > 0 || resp.GetPrecheckFailed() != "" {
		t.Fatalf("start: %v %v", resp, err)
	}
	last := follow(t, c)
	if last.GetState() != "completed" || last.GetTotal() != 4 || last.GetStep() != 4 {
		t.Fatalf("rollout: %v", last)
	}
	wantRules := []string{"inv.5001.192.168.1.5", "inv.5001", "inv.5002.192.168.2.5", "inv.5002"}
	movedAfter := []func(vni uint32, vm string) bool{
		func(vni uint32, vm string) bool { return vm == "192.168.1.5" },
		func(vni uint32, vm string) bool { return vni == 5001 },
		func(vni uint32, vm string) bool { return vni == 5001 || vm == "192.168.2.5" },
		func(vni uint32, vm string) bool { return vni == 5001 || vni == 5002 },
	}
	inventoryVMs := "5001/192.168.1.5 5001/192.168.1.6 5001/192.168.1.7 5002/192.168.2.5 5002/192.168.2.6"
	for i, s := range last.GetSteps() {
		if s.GetState() != "done" || s.GetRule() != wantRules[i] {
			t.Errorf("step %d: %s rule %s, want done %s", i+1, s.GetState(), s.GetRule(), wantRules[i])
		}
		var probed []string
		for _, res := range s.GetProbes() {
			tg := res.GetTarget()
			probed = append(probed, fmt.Sprintf("%d/%s", tg.GetVni(), tg.GetVm()))
			want := "base-1"
			if movedAfter[i](tg.GetVni(), tg.GetVm()) {
				want = "gray-1"
			}
			if tg.GetRouter() != fmt.Sprintf("192.168.%d.1", tg.GetVni()-5000) || res.GetStatus() != "ok" ||
				len(res.GetAnswers()) != 1 || res.GetAnswers()[0].GetBackend() != want {
				t.Errorf("step %d, %v: %s by %v, want ok by %s", i+1, tg, res.GetStatus(), res.GetAnswers(), want)
			}
		}
		if got := strings.Join(probed, " "); got != inventoryVMs {
			t.Errorf("step %d probed %s, want the inventory's VMs %s", i+1, got, inventoryVMs)
		}
	}
	if got := rules(t, c); got != strings.Join(wantRules, " ") {
		t.Errorf("rules %q", got)
	}
	// Server-side probes: the VNIs from the inventory on gray; VNI 5003
	// (explicit targets, no inventory) on base.
	for _, vni := range []uint32{5001, 5002} {
		pr, err := c.Probe(ctx, &graygwv1.ProbeRequest{Inventory: []*graygwv1.InventoryScope{{Vni: vni}}})
		if err != nil || len(pr.GetResults()) == 0 {
			t.Fatalf("probe %d after: %v %v", vni, pr, err)
		}
		for _, res := range pr.GetResults() {
			if res.GetStatus() != "ok" || res.GetTarget().GetExpectPool() != probetest.GrayPool || res.GetAnswers()[0].GetBackend() != "gray-1" {
				t.Errorf("after, %d: %v", vni, res)
			}
		}
	}
	pr, err := c.Probe(ctx, &graygwv1.ProbeRequest{Targets: []*graygwv1.ProbeTarget{
		{Vni: 5003, Vm: "192.168.3.5", Router: "192.168.3.1"}, {Vni: 5003, Vm: "192.168.3.6", Router: "192.168.3.1"}}})
	if err != nil || len(pr.GetResults()) != 2 {
		t.Fatalf("probe 5003 after: %v %v", pr, err)
	}
	for _, res := range pr.GetResults() {
		if res.GetStatus() != "ok" || res.GetAnswers()[0].GetBackend() != "base-1" {
			t.Errorf("after, 5003: %v", res)
		}
	}

	// The VMs' own traffic, counted where it lands: each VM pings its
	// router; the backend that receives the VNI's packets (its VXLAN
	// device's rx counter) is gray exactly for the inventory's VMs. (A stray
	// IPv6 control packet of the hypervisor's VXLAN device may add one or two
	// to either side; none of it is an echo request.)
	const count = 20
	for _, v := range invLabVPCs {
		for _, h := range v.VMs {
			gray0, base0 := rxPackets(t, rl, rl.l.Topo.Gray, v.VNI), rxPackets(t, rl, rl.l.Topo.Base, v.VNI)
			got, err := rl.l.Topo.Ping(v, h, count)
			if err != nil || got != count {
				t.Errorf("ping from %s: %d/%d %v", v.VMAddr(h), got, count, err)
			}
			gray, base := rxPackets(t, rl, rl.l.Topo.Gray, v.VNI)-gray0, rxPackets(t, rl, rl.l.Topo.Base, v.VNI)-base0
			t.Logf("%d/%s: gray received %d, base %d", v.VNI, v.VMAddr(h), gray, base)
			on, off := gray, base
			if v.VNI == 5003 {
				on, off = base, gray
			}
			if on < count || off > 2 {
				t.Errorf("%d/%s: gray received %d, base %d; want the %d echo requests on %s", v.VNI, v.VMAddr(h), gray, base, count,
					map[bool]string{true: "base", false: "gray"}[v.VNI == 5003])
			}
		}
	}
}
