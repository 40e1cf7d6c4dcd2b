package rollout_test

import (
	"testing"

	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
	"github.com/graygw/graygw/topo"
)

// TestLabRolloutOfIPv6VMs: a rollout of a dual-stack VPC (issue 19) moves an
// IPv6 VM on its own (a gray_rules_v6 rule, named with its colons as '-'),
// then the VPC (its VNI rule, written to both tables); each step's probes
// (ICMPv6 for the IPv6 VMs, ICMP for the IPv4 one, each towards its family's
// router) see exactly the VMs moved so far on gray, through the real XDP
// gateway.
func TestLabRolloutOfIPv6VMs(t *testing.T) {
	e := newLabEnvWith(t, []topo.VPC{{VNI: 5001, Subnet: 1, VMs: []uint8{5, 6}, IPv6: true}})
	p := runPlan(t, e.ctrl, labPlanFor("lab6", `  - {vni: 5001, router: 192.168.1.1, destinations: ["fd00:1::1"], router_mac: "02:00:00:00:10:fe", vms: ["fd00:1::5", 192.168.1.6, "fd00:1::6"]}
`))
	if p.State != rollout.StateCompleted {
		t.Fatalf("rollout: %s: %s", p.State, p.Error)
	}
	if len(p.Steps) != 2 || p.Steps[0].Rule != "lab6.5001.fd00-1--5" {
		t.Fatalf("steps %+v", p.Steps)
	}
	movedAfter := []func(vm string) bool{
		func(vm string) bool { return vm == "fd00:1::5" },
		func(string) bool { return true },
	}
	for i, s := range p.Steps {
		if s.State != rollout.StepDone || len(s.Probes) != 3 {
			t.Errorf("step %d: %s with %d probes", i+1, s.State, len(s.Probes))
		}
		for _, pr := range s.Probes {
			want := "base-1"
			if movedAfter[i](pr.Target.VM.String()) {
				want = "gray-1"
			}
			if pr.Status != probe.StatusOK || pr.AnsweredBy() != want || pr.Target.VM.Is6() != pr.Target.Router.Is6() {
				t.Errorf("step %d, %v: %s by %s, want ok by %s", i+1, pr.Target, pr.Status, pr.AnsweredBy(), want)
			}
		}
	}
	if n, n6 := len(e.lab.DP.Rules()), len(e.lab.DP.RulesV6()); n != 1 || n6 != 2 {
		t.Errorf("%d gray_rules and %d gray_rules_v6 entries in the dataplane, want 1 (the VNI) and 2 (the VM, the VNI)", n, n6)
	}
	if got, err := e.lab.Topo.Ping6(topo.VPC{VNI: 5001, Subnet: 1, VMs: []uint8{5, 6}, IPv6: true}, 6, 3); err != nil || got != 3 {
		t.Errorf("ping6 from fd00:1::6 through the gateway: %d/3 %v", got, err)
	}
}
