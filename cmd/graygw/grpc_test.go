package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
)

func TestGRPCClient(t *testing.T) {
	s, addr := startAPI(t)

	code, out, stderr := api(t, addr, "cutover", "--vm", "5001/192.168.1.5", "--pool", "gray-router", "--wait", "--actor", "carol")
	req, _ := s.lastReq().(*graygwv1.CutoverRequest)
	if code != 0 || req.GetVm().GetVni() != 5001 || req.GetVm().GetSrc() != "192.168.1.5" || req.GetPool() != "gray-router" ||
		!req.GetOptions().GetWait() || req.GetOptions().GetActor() != "carol" || req.GetOptions().GetWaitTimeout().AsDuration() != time.Minute {
		t.Errorf("cutover --vm: exit %d %v %s", code, req, stderr)
	}
	if !strings.Contains(out, "rule vm-5001-192.168.1.5") || !strings.Contains(out, "applied as intent version 5") {
		t.Errorf("cutover output:\n%s", out)
	}
	for _, tc := range []struct {
		args  []string
		check func(*graygwv1.CutoverRequest) bool
	}{
		{[]string{"--vni", "5002", "--percent", "10"}, func(r *graygwv1.CutoverRequest) bool {
			return r.GetPercent().GetVni() == 5002 && r.GetPercent().GetPercent() == 10
		}},
		{[]string{"--vni", "5002", "--vip", "vpc-router", "--name", "vpc-5002"}, func(r *graygwv1.CutoverRequest) bool {
			return r.GetVni().GetVni() == 5002 && r.GetVip() == "vpc-router" && r.GetRule() == "vpc-5002"
		}},
		{[]string{"--prefix", "192.168.1.0/28"}, func(r *graygwv1.CutoverRequest) bool {
			return r.GetPrefix().Vni == nil && r.GetPrefix().GetSrc() == "192.168.1.0/28"
		}},
		{[]string{"--vni", "5001", "--flow", "tcp/192.168.1.5:33001/192.168.1.1:22"}, func(r *graygwv1.CutoverRequest) bool {
			f := r.GetFlow()
			return f.GetVni() == 5001 && f.GetProto() == "tcp" && f.GetSrc() == "192.168.1.5" && f.GetSport() == 33001 && f.GetDst() == "192.168.1.1" && f.GetDport() == 22
		}},
	} {
		code, _, stderr := api(t, addr, append([]string{"cutover", "--pool", "gray-router"}, tc.args...)...)
		r, _ := s.lastReq().(*graygwv1.CutoverRequest)
		if code != 0 || !tc.check(r) {
			t.Errorf("%v: exit %d %s: request %v", tc.args, code, stderr, r)
		}
	}
	// A refused change lists the problems and exits 3.
	code, _, stderr = api(t, addr, "cutover", "--vni", "7777", "--pool", "gray-router")
	if code != ExitRefused || !strings.Contains(stderr, "cutover.match.vni: VNI 7777 belongs to no tenant [unknown_ref]") {
		t.Errorf("refused: %d %s", code, stderr)
	}
	// Apply --dry-run: groups per gateway.
	code, out, _ = api(t, addr, "apply", "-f", "../../docs/examples/intent.yaml", "--dry-run")
	ar, _ := s.lastReq().(*graygwv1.ApplyRequest)
	if code != 0 || !ar.GetOptions().GetDryRun() || !strings.Contains(ar.GetIntentYaml(), "vpc-router") ||
		!strings.Contains(out, "dry run: nothing applied") || !strings.Contains(out, "backend_select  pool gray-router v1") {
		t.Errorf("apply: %d\n%s", code, out)
	}
	// Rollback modes.
	if code, out, _ := api(t, addr, "rollback", "--all"); code != 0 || s.lastReq().(*graygwv1.RollbackRequest).GetMode() != graygwv1.RollbackRequest_ALL || !strings.Contains(out, "removed rules: a, b") {
		t.Errorf("rollback --all: %d %s", code, out)
	}
	if code, _, _ := api(t, addr, "rollback", "--step"); code != 0 || s.lastReq().(*graygwv1.RollbackRequest).GetMode() != graygwv1.RollbackRequest_STEP {
		t.Errorf("rollback --step: %d", code)
	}
	if code, out, stderr := api(t, addr, "rollback", "--rule", "x"); code != 0 || s.lastReq().(*graygwv1.RollbackRequest).GetMode() != graygwv1.RollbackRequest_RULE ||
		s.lastReq().(*graygwv1.RollbackRequest).GetRule() != "x" || !strings.Contains(out, "removed rules") {
		t.Errorf("rollback --rule: %d %s %s", code, out, stderr)
	}
	// Status and counters.
	code, out, _ = api(t, addr, "status")
	for _, w := range []string{"standby", "16403", "partly-gray", "192.168.1.5", "vm-5001-192.168.1.5"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("status lacks %q:\n%s", w, out)
		}
	}
	code, out, stderr = api(t, addr, "counters", "--gateway", "gw1")
	if s.lastReq().(*graygwv1.CountersRequest).GetGateway() != "gw1" || !strings.Contains(out, "NO_BACKEND") || code != ExitError || !strings.Contains(stderr, "gw2: unreachable") {
		t.Errorf("counters: %d %s %s", code, out, stderr)
	}
	// gRPC errors say what to do.
	if code, _, stderr := api(t, addr, "get"); code != ExitError || !strings.Contains(stderr, "controller.sock: no intent stored yet") {
		t.Errorf("get: %d %s", code, stderr)
	}
	if code, _, stderr := api(t, addr, "diff"); code != ExitError || !strings.Contains(stderr, "unavailable (not running, draining, or its store without a quorum: retry)") {
		t.Errorf("diff: %d %s", code, stderr)
	}
	if code, _, stderr := api(t, addr, "rollout", "pause"); code != ExitError || !strings.Contains(stderr, "cannot do this: method RolloutPause not implemented") {
		t.Errorf("rollout: %d %s", code, stderr)
	}
	if code, _, stderr := api(t, "unix:///nonexistent/controller.sock", "status"); code != ExitError || !strings.Contains(stderr, "is graygw-controller running?") {
		t.Errorf("no socket: %d %s", code, stderr)
	}
}

const testPlan = "version: 1\nname: r1\nvip: vpc-router\npool: gray-router\nvpcs:\n  - {vni: 5001, router: 192.168.1.1, vms: [192.168.1.5]}\n"

// TestGRPCClientBGPRolloutsProbes: the commands wired to the BGP, drain,
// rollout and probe calls send what they should and show what comes back.
func TestGRPCClientBGPRolloutsProbes(t *testing.T) {
	s, addr := startAPI(t)
	code, out, stderr := api(t, addr, "bgp")
	for _, w := range []string{"AS 65001, router id 10.1.0.100, health check reconciled", "10.1.0.254", "established", "vpc-router",
		"10.1.0.2  gw2", "drained", "why not announced:", "drained by alice (uid=1000) at 2025-01-02T03:04:05Z (maintenance)"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("bgp lacks %q: %d %s\n%s", w, code, stderr, out)
		}
	}
	code, out, _ = api(t, addr, "bgp", "-o", "json")
	if code != 0 || !strings.Contains(out, `"med": 50`) || !strings.Contains(out, `"reason": "drained"`) {
		t.Errorf("bgp -o json: %s", out)
	}
	code, out, stderr = api(t, addr, "drain", "gw1", "--reason", "kernel", "--actor", "bob")
	req, _ := s.lastReq().(*graygwv1.DrainGatewayRequest)
	if code != 0 || req.GetGateway() != "gw1" || req.GetReason() != "kernel" || req.GetActor() != "bob" || !strings.Contains(out, "gateway gw1 drained") ||
		strings.Contains(out, "gw2") {
		t.Errorf("drain: %d %v %s\n%s", code, req, stderr, out)
	}
	if code, _, stderr := api(t, addr, "drain", "gw9"); code != ExitError || !strings.Contains(stderr, `no gateway "gw9" in the intent in force`) {
		t.Errorf("drain gw9: %d %s", code, stderr)
	}
	if code, _, stderr := api(t, addr, "undrain", "gw1"); code != ExitError || !strings.Contains(stderr, "cannot do this: this controller runs without BGP") {
		t.Errorf("undrain without BGP: %d %s", code, stderr)
	}
	if code, _, stderr := api(t, addr, "drain"); code != ExitUsage || !strings.Contains(stderr, "takes one gateway name") {
		t.Errorf("drain without a gateway: %d %s", code, stderr)
	}

	plan := filepath.Join(t.TempDir(), "plan.yaml")
	os.WriteFile(plan, []byte(testPlan), 0o644)
	s.progress = []*rollout.Progress{progress(rollout.StateDryRun, 0, "dry run")}
	code, out, stderr = api(t, addr, "rollout", "start", "-f", plan, "--dry-run")
	if code != 0 || !s.lastReq().(*graygwv1.RolloutStartRequest).GetDryRun() || !strings.Contains(out, "rollout router-v2: dry run, 2 steps to pool gray-router") ||
		!strings.Contains(out, "router-v2.5001.192.168.1.5") {
		t.Errorf("rollout start --dry-run: %d %s\n%s", code, stderr, out)
	}
	done := progress(rollout.StateCompleted, 2, "completed")
	done.Updated = done.Updated.Add(time.Minute)
	s.progress = []*rollout.Progress{progress(rollout.StateRunning, 1, "running"), done}
	code, out, stderr = api(t, addr, "rollout", "start", "-f", plan, "--wait")
	if code != 0 || strings.Count(out, "running  step 1/2") != 1 || !strings.Contains(out, "completed  step 2/2") {
		t.Errorf("rollout start --wait: %d %s\n%s", code, stderr, out)
	}
	s.precheck = []probe.Result{{Target: probe.Target{VNI: 5002, VM: netip.MustParseAddr("192.168.2.5"), Router: netip.MustParseAddr("192.168.2.1"), ExpectCluster: intent.ClusterBase},
		Status: probe.StatusWrongBackend, Sent: 3, Received: 3, Answers: []probe.Answer{{Underlay: netip.MustParseAddr("10.3.0.21"), Backend: "gray-1", Cluster: intent.ClusterGray, Replies: 3}}}}
	code, out, stderr = api(t, addr, "rollout", "start", "-f", plan)
	s.precheck = nil
	if code != ExitFailed || !strings.Contains(out, "wrong-backend") || !strings.Contains(out, "gray-1") || !strings.Contains(stderr, "precheck before any change") {
		t.Errorf("failed precheck: %d %s\n%s", code, stderr, out)
	}
	if code, _, stderr := api(t, addr, "rollout", "status"); code != ExitError || !strings.Contains(stderr, "no rollout has been started") {
		t.Errorf("rollout status without a rollout: %d %s", code, stderr)
	}

	code, out, stderr = api(t, addr, "probe", "--plan", plan, "--count", "3")
	pr, _ := s.lastReq().(*graygwv1.ProbeRequest)
	if code != 0 || pr.GetVip() != "vpc-router" || len(pr.GetTargets()) != 1 || pr.GetTargets()[0].GetVm() != "192.168.1.5" ||
		pr.GetOptions().GetCount() != 3 || !strings.Contains(out, "base-1") {
		t.Errorf("probe --plan: %d %v %s\n%s", code, pr, stderr, out)
	}
	code, _, stderr = api(t, addr, "probe", "--vm", "5001/192.168.1.6", "--router", "192.168.1.1", "--vip", "other", "--expect", "gray")
	pr, _ = s.lastReq().(*graygwv1.ProbeRequest)
	if code != 0 || pr.GetVip() != "other" || pr.GetTargets()[0].GetExpectCluster() != "gray" {
		t.Errorf("probe --vm: %d %v %s", code, pr, stderr)
	}
	// An IPv6 VM towards its IPv6 router; a VM and a router of two families
	// is a usage error, sent nowhere.
	code, _, stderr = api(t, addr, "probe", "--vm", "5001/fd00:1::5", "--router", "fd00:1::1")
	pr, _ = s.lastReq().(*graygwv1.ProbeRequest)
	if code != 0 || pr.GetTargets()[0].GetVm() != "fd00:1::5" || pr.GetTargets()[0].GetRouter() != "fd00:1::1" {
		t.Errorf("probe --vm IPv6: %d %v %s", code, pr, stderr)
	}
	for _, args := range [][]string{{"--vm", "5001/fd00:1::5", "--router", "192.168.1.1"}, {"--vm", "5001/192.168.1.5", "--router", "fd00:1::1"},
		{"--vm", "5001/fd00:1::5", "--router", "fe80::1%eth0"}} {
		code, _, stderr = api(t, addr, append([]string{"probe"}, args...)...)
		if code != ExitUsage || s.lastReq() != pr {
			t.Errorf("probe %v: exit %d, want %d and no request: %s", args, code, ExitUsage, stderr)
		}
	}
}

// TestGRPCProbeFromTheInventory: probe --vni / --vm without --router send
// inventory scopes (and --expect) for the controller to expand; --router sends
// explicit targets as before.
func TestGRPCProbeFromTheInventory(t *testing.T) {
	s, addr := startAPI(t)
	if code, _, stderr := api(t, addr, "probe", "--vni", "5002", "--expect", "gray"); code != 0 {
		t.Fatalf("--vni: %d %s", code, stderr)
	}
	r, _ := s.lastReq().(*graygwv1.ProbeRequest)
	if len(r.GetInventory()) != 1 || r.GetInventory()[0].GetVni() != 5002 || r.GetInventory()[0].GetVm() != "" || r.GetExpectCluster() != "gray" || len(r.GetTargets()) != 0 {
		t.Errorf("--vni request: %v", r)
	}
	if code, _, stderr := api(t, addr, "probe", "--vm", "192.168.2.6", "--vm", "5001/192.168.1.5"); code != 0 {
		t.Fatalf("--vm: %d %s", code, stderr)
	}
	r, _ = s.lastReq().(*graygwv1.ProbeRequest)
	if inv := r.GetInventory(); len(inv) != 2 || inv[0].GetVni() != 0 || inv[0].GetVm() != "192.168.2.6" || inv[1].GetVni() != 5001 || inv[1].GetVm() != "192.168.1.5" {
		t.Errorf("--vm request: %v", r)
	}
	if code, _, stderr := api(t, addr, "probe", "--vm", "5001/192.168.1.5", "--router", "192.168.1.1"); code != 0 {
		t.Fatalf("--router: %d %s", code, stderr)
	}
	r, _ = s.lastReq().(*graygwv1.ProbeRequest)
	if len(r.GetInventory()) != 0 || len(r.GetTargets()) != 1 || r.GetTargets()[0].GetRouter() != "192.168.1.1" {
		t.Errorf("--router request: %v", r)
	}
}
