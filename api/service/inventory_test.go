package service_test

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
var invPlan = planOf("r3", "  - {vni: 5002}\n")

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
	resp, err := c.Client.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: invPlan, DryRun: true})
	if err != nil || len(resp.GetProblems()) != 2 || !strings.Contains(resp.GetProblems()[0].GetMessage(), "inventory in the intent") {
		t.Fatalf("plan without inventory: %v %v", resp, err)
	}
	mustApply(t, c, intentYAML(addr)+inventory, "t")

	// Probing the plan's VNI: 3 VMs x 2 destinations, all on base now.
	pr, err := c.Client.Probe(ctx(t), &graygwv1.ProbeRequest{PlanYaml: invPlan, Vni: 5002, Options: &graygwv1.ProbeOptions{Count: 1}})
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

	resp, err = c.Client.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: invPlan, Actor: "alice"})
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
	pr, err = c.Client.Probe(ctx(t), &graygwv1.ProbeRequest{Targets: []*graygwv1.ProbeTarget{
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

// TestProbeExpandsTheInventoryServerSide: a Probe that gives only a VNI, or
// inventory scopes (a VNI, a VM with or without its VNI), is expanded from the
// inventory of the intent in force, with the tables' expectations; a VNI
// without inventory is FailedPrecondition saying what to add; a VNI no tenant
// lists, a VM not in the inventory or two forms at once InvalidArgument; the
// explicit-target form works as before.
func TestProbeExpandsTheInventoryServerSide(t *testing.T) {
	addr, mem := startAgent(t)
	h := &simHost{mem: mem, broken: map[string]bool{}}
	c := startControllerWith(t, ctlOpts{dir: t.TempDir(), probe: h.host()})
	opts := &graygwv1.ProbeOptions{Count: 1}

	// No inventory yet: FailedPrecondition, naming the vpcs entry to add.
	mustApply(t, c, intentYAML(addr), "t")
	_, err := c.Client.Probe(ctx(t), &graygwv1.ProbeRequest{Vni: 5002, Options: opts})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "VNI 5002 has no inventory in the intent in force: add a vpcs entry") {
		t.Fatalf("VNI without inventory: %v", err)
	}
	mustApply(t, c, intentYAML(addr)+inventory, "t")

	// The VNI alone: 3 VMs x 2 destinations, expectations from the tables.
	pr, err := c.Client.Probe(ctx(t), &graygwv1.ProbeRequest{Vni: 5002, Options: opts})
	if err != nil || len(pr.GetResults()) != 6 {
		t.Fatalf("vni 5002: %v %v", pr, err)
	}
	want := []string{"10.0.1.6>10.0.1.1", "10.0.1.6>10.96.0.1", "10.0.1.7>10.0.1.1", "10.0.1.7>10.96.0.1", "10.0.1.8>10.0.1.1", "10.0.1.8>10.96.0.1"}
	for i, r := range pr.GetResults() {
		tg := r.GetTarget()
		if got := tg.GetVm() + ">" + tg.GetRouter(); got != want[i] || tg.GetVni() != 5002 || tg.GetExpectPool() != "base" || r.GetStatus() != "ok" {
			t.Fatalf("result %d: %v, want %s on base", i, r, want[i])
		}
	}
	// Scopes: one VM by address only, one with its VNI; expect_cluster applies.
	pr, err = c.Client.Probe(ctx(t), &graygwv1.ProbeRequest{Options: opts, ExpectCluster: "base",
		Inventory: []*graygwv1.InventoryScope{{Vm: "10.0.1.7"}, {Vni: 5002, Vm: "10.0.1.8"}}})
	if err != nil || len(pr.GetResults()) != 4 || pr.GetResults()[0].GetTarget().GetVm() != "10.0.1.7" ||
		pr.GetResults()[2].GetTarget().GetVm() != "10.0.1.8" || pr.GetResults()[0].GetTarget().GetExpectCluster() != "base" {
		t.Fatalf("scopes: %v %v", pr, err)
	}
	// The tables decide the expectation: the rule moving 10.0.1.6 makes it gray.
	mustApply(t, c, intentYAML(addr)+
		"  - {name: vm-10.0.1.6, match: {vip: vpc, vni: 5002, src: 10.0.1.6}, pool: gray}\n"+inventory, "t")
	pr, err = c.Client.Probe(ctx(t), &graygwv1.ProbeRequest{Options: opts, Inventory: []*graygwv1.InventoryScope{{Vni: 5002}}})
	if err != nil || len(pr.GetResults()) != 6 {
		t.Fatalf("after the VM rule: %v %v", pr, err)
	}
	for _, r := range pr.GetResults() {
		wantPool := "base"
		if r.GetTarget().GetVm() == "10.0.1.6" {
			wantPool = "gray"
		}
		if r.GetTarget().GetExpectPool() != wantPool || r.GetStatus() != "ok" || r.GetAnswers()[0].GetCluster() != wantPool {
			t.Fatalf("after the VM rule: %v, want %s", r, wantPool)
		}
	}

	for _, tc := range []struct {
		req  *graygwv1.ProbeRequest
		code codes.Code
		msg  string
	}{
		{&graygwv1.ProbeRequest{Vni: 5001}, codes.FailedPrecondition, "VNI 5001 has no inventory"},
		{&graygwv1.ProbeRequest{Vni: 7777}, codes.InvalidArgument, "VNI 7777 is no tenant's VNI in the intent in force (known VNIs: 5001, 5002, 5003)"},
		{&graygwv1.ProbeRequest{Inventory: []*graygwv1.InventoryScope{{Vni: 5002, Vm: "10.0.1.9"}}}, codes.InvalidArgument, "10.0.1.9 is not a VM of VNI 5002"},
		{&graygwv1.ProbeRequest{Inventory: []*graygwv1.InventoryScope{{Vm: "10.0.1.600"}}}, codes.InvalidArgument, "want an IPv4 or IPv6 address"},
		{&graygwv1.ProbeRequest{Inventory: []*graygwv1.InventoryScope{{}}}, codes.InvalidArgument, "give a VNI, a VM or both"},
		{&graygwv1.ProbeRequest{Vni: 5002, ExpectCluster: "blue"}, codes.InvalidArgument, "expect_cluster \"blue\""},
		{&graygwv1.ProbeRequest{Inventory: []*graygwv1.InventoryScope{{Vni: 5002}}, PlanYaml: invPlan}, codes.InvalidArgument, "not several"},
		{&graygwv1.ProbeRequest{ExpectCluster: "gray", Targets: []*graygwv1.ProbeTarget{{Vni: 5002, Vm: "10.0.1.7", Router: "10.0.1.1"}}},
			codes.InvalidArgument, "explicit targets carry their own"},
		{&graygwv1.ProbeRequest{Vni: 5002, Checks: &graygwv1.ProbeChecks{Tcp: []uint32{443, 0, 443}}}, codes.InvalidArgument,
			"checks.tcp[1]: 0: want a port, 1 to 65535"},
		{&graygwv1.ProbeRequest{Vni: 5002, Checks: &graygwv1.ProbeChecks{NoIcmp: true}}, codes.InvalidArgument, "nothing would be probed"},
		{&graygwv1.ProbeRequest{Checks: &graygwv1.ProbeChecks{Tcp: []uint32{443}}, Targets: []*graygwv1.ProbeTarget{{Vni: 5002, Vm: "10.0.1.7", Router: "10.0.1.1"}}},
			codes.InvalidArgument, "checks are for inventory scopes"},
	} {
		_, err := c.Client.Probe(ctx(t), tc.req)
		if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: %v, want %s %q", tc.req, err, tc.code, tc.msg)
		}
	}
	// Checks: each inventory target once per check, in order, with the
	// same expectation.
	pr, err = c.Client.Probe(ctx(t), &graygwv1.ProbeRequest{Options: opts, Inventory: []*graygwv1.InventoryScope{{Vni: 5002, Vm: "10.0.1.7"}},
		Checks: &graygwv1.ProbeChecks{NoIcmp: true, Tcp: []uint32{443}, Udp: []uint32{53}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range pr.GetResults() {
		tg := r.GetTarget()
		got = append(got, fmt.Sprintf("%s>%s %s/%d %s", tg.GetVm(), tg.GetRouter(), tg.GetProto(), tg.GetPort(), tg.GetExpectPool()))
	}
	if want := "10.0.1.7>10.0.1.1 tcp/443 base,10.0.1.7>10.0.1.1 udp/53 base,10.0.1.7>10.96.0.1 tcp/443 base,10.0.1.7>10.96.0.1 udp/53 base"; strings.Join(got, ",") != want {
		t.Errorf("inventory targets with checks:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
	// The explicit form is unchanged.
	pr, err = c.Client.Probe(ctx(t), &graygwv1.ProbeRequest{Options: opts, Targets: []*graygwv1.ProbeTarget{{Vni: 5001, Vm: "10.0.0.6", Router: "10.0.0.1"}}})
	if err != nil || len(pr.GetResults()) != 1 || pr.GetResults()[0].GetStatus() != "ok" || pr.GetResults()[0].GetTarget().GetExpectPool() != "base" {
		t.Fatalf("explicit target: %v %v", pr, err)
	}
}
