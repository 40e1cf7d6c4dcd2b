package service_test

import (
	"strings"
	"testing"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
)

// inventory gives VNI 5002 three VMs and two route destinations (the VPC
// router, and a service prefix probed at its first address).
const inventory = `vpcs:
  - vni: 5002
    routes:
      - {prefix: 0.0.0.0/0, next_hop: 10.0.1.1}
      - {prefix: 10.96.0.0/16}
    vms: [{address: 10.0.1.6, name: a}, {address: 10.0.1.7}, {address: 10.0.1.8}]
`

// invPlan names the VNI only: its VMs and router come from the intent.
const invPlan = `version: 1
name: r3
vip: vpc
pool: gray
base_pool: base
individual_vms: 1
probe: {count: 2, interval: 1ms, timeout: 50ms}
vpcs:
  - {vni: 5002}
`

// TestRolloutOfVNIsFromTheIntentInventory: a plan that names only a VNI takes
// the VPC's VMs from the inventory of the intent in force; the rollout moves
// exactly those VMs (first one alone, then the VNI), probing each VM towards
// each route destination, and nothing else moves.
func TestRolloutOfVNIsFromTheIntentInventory(t *testing.T) {
	addr, mem := startAgent(t)
	h := &simHost{mem: mem, broken: map[string]bool{}}
	c := startControllerWith(t, ctlOpts{dir: t.TempDir(), probe: h.host()})

	// Without the inventory the plan is refused, saying where the VMs come from.
	mustApply(t, c, intentYAML(addr), "t")
	resp, err := c.c.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: invPlan, DryRun: true})
	if err != nil || len(resp.GetProblems()) != 2 || !strings.Contains(resp.GetProblems()[0].GetMessage(), "inventory in the intent") {
		t.Fatalf("plan without inventory: %v %v", resp, err)
	}
	mustApply(t, c, intentYAML(addr)+inventory, "t")

	// Probing the plan's VNI: 3 VMs x 2 destinations, all on base now.
	pr, err := c.c.Probe(ctx(t), &graygwv1.ProbeRequest{PlanYaml: invPlan, Vni: 5002, Options: &graygwv1.ProbeOptions{Count: 1}})
	if err != nil || len(pr.GetResults()) != 6 {
		t.Fatalf("probe of the plan: %v %v", pr, err)
	}
	for _, r := range pr.GetResults() {
		if r.GetStatus() != "ok" || r.GetAnswers()[0].GetCluster() != "base" {
			t.Fatalf("before: %v", r)
		}
	}
	if d := pr.GetResults()[1].GetTarget().GetRouter(); d != "10.96.0.1" {
		t.Fatalf("second destination %s, want the service prefix's first address", d)
	}

	resp, err = c.c.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: invPlan, Actor: "alice"})
	if err != nil || resp.GetProgress().GetState() != "running" || len(resp.GetProgress().GetPrecheck()) != 6 {
		t.Fatalf("start: %v %v", resp, err)
	}
	seen := watch(t, c)
	last := seen[len(seen)-1]
	if last.GetState() != "completed" || last.GetTotal() != 2 {
		t.Fatalf("rollout: %v", last)
	}
	steps := last.GetSteps()
	if steps[0].GetRule() != "r3.5002.10.0.1.6" || steps[1].GetRule() != "r3.5002" {
		t.Fatalf("steps %v", steps)
	}
	for _, s := range steps {
		if s.GetState() != "done" || len(s.GetProbes()) != 6 {
			t.Fatalf("step %v", s)
		}
	}
	// After step 1 only the first VM is on gray, towards both destinations.
	for _, r := range steps[0].GetProbes() {
		want := "base"
		if r.GetTarget().GetVm() == "10.0.1.6" {
			want = "gray"
		}
		if r.GetStatus() != "ok" || r.GetAnswers()[0].GetCluster() != want {
			t.Fatalf("after step 1: %v, want %s", r, want)
		}
	}
	// The progress keeps the plan as resolved: a restarted controller goes on
	// with the same VMs whatever the inventory becomes.
	if !strings.Contains(last.GetPlanYaml(), "10.0.1.8") {
		t.Fatalf("stored plan without the inventory's VMs:\n%s", last.GetPlanYaml())
	}
	if got := strings.Join(ruleNames(t, c), " "); got != "vm-10.0.0.5 r3.5002.10.0.1.6 r3.5002" {
		t.Fatalf("rules %s", got)
	}
	// Exactly those VMs moved: the inventory's VMs answer from gray, a VM of
	// VNI 5001 (outside the plan) still from base.
	pr, err = c.c.Probe(ctx(t), &graygwv1.ProbeRequest{Targets: []*graygwv1.ProbeTarget{
		{Vni: 5002, Vm: "10.0.1.7", Router: "10.0.1.1", ExpectCluster: "gray"},
		{Vni: 5002, Vm: "10.0.1.8", Router: "10.96.0.1", ExpectCluster: "gray"},
		{Vni: 5001, Vm: "10.0.0.6", Router: "10.0.0.1", ExpectCluster: "base"}}})
	if err != nil || len(pr.GetResults()) != 3 {
		t.Fatalf("after: %v %v", pr, err)
	}
	for _, r := range pr.GetResults() {
		if r.GetStatus() != "ok" {
			t.Fatalf("after the rollout: %v", r)
		}
	}
}
