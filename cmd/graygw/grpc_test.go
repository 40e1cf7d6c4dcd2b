package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
)

// apiServer answers like the controller and remembers the last request.
type apiServer struct {
	graygwv1.UnimplementedControllerServer
	last proto.Message
}

func (s *apiServer) Apply(_ context.Context, r *graygwv1.ApplyRequest) (*graygwv1.ApplyResponse, error) {
	s.last = r
	return &graygwv1.ApplyResponse{Result: &graygwv1.ChangeResult{Applied: !r.GetOptions().GetDryRun(), Version: 4, Summary: "apply",
		Plans: []*graygwv1.GatewayPlan{{Gateway: "gw1", Reachable: true, Inserts: 4097,
			Groups: []*graygwv1.ChangeGroup{{Op: "INSERT", Table: "GrayIngress.backend_select", Origin: "pool gray-router v1", Count: 4096},
				{Op: "INSERT", Table: "GrayIngress.gray_rules", Origin: "rule vm-5001-192.168.1.5", Count: 1}}}}}}, nil
}

func (s *apiServer) Cutover(_ context.Context, r *graygwv1.CutoverRequest) (*graygwv1.CutoverResponse, error) {
	s.last = r
	if r.GetVni() != nil && r.GetVni().GetVni() == 7777 {
		return &graygwv1.CutoverResponse{Result: &graygwv1.ChangeResult{Problems: []*graygwv1.Problem{
			{Path: "cutover.match.vni", Message: "VNI 7777 belongs to no tenant", Class: "unknown_ref"}}}}, nil
	}
	return &graygwv1.CutoverResponse{Rule: "vm-5001-192.168.1.5", Result: &graygwv1.ChangeResult{Applied: true, Version: 5}}, nil
}

func (s *apiServer) Rollback(_ context.Context, r *graygwv1.RollbackRequest) (*graygwv1.RollbackResponse, error) {
	s.last = r
	return &graygwv1.RollbackResponse{Result: &graygwv1.ChangeResult{Applied: true, Version: 6}, RemovedRules: []string{"a", "b"}}, nil
}

func (s *apiServer) Status(context.Context, *graygwv1.StatusRequest) (*graygwv1.StatusResponse, error) {
	return &graygwv1.StatusResponse{Version: 6, Gateways: []*graygwv1.GatewayStatus{{Name: "gw1", Address: "127.0.0.1:9559", Connected: true,
		Primary: false, Version: 6, InSync: true, Entries: 16403, LastReconcile: timestamppb.New(time.Unix(1700000000, 0)), LastResult: "ok"}},
		Vnis: []*graygwv1.VNIStatus{{Vni: 5001, Tenant: "acme", State: graygwv1.GrayState_PARTLY_GRAY, Vips: []*graygwv1.VIPGrayState{
			{Vip: "vpc-router", GrayVms: []string{"192.168.1.5"}, Selectors: []*graygwv1.Selector{{Rule: "vm-5001-192.168.1.5"}}}}}}}, nil
}

func (s *apiServer) Counters(_ context.Context, r *graygwv1.CountersRequest) (*graygwv1.CountersResponse, error) {
	s.last = r
	return &graygwv1.CountersResponse{Gateways: []*graygwv1.GatewayCounters{
		{Gateway: "gw1", Rules: []*graygwv1.NamedCounter{{Name: "vm-5001-192.168.1.5", Packets: 3, Bytes: 300}}, Drops: []*graygwv1.NamedCounter{{Name: "NO_BACKEND", Packets: 1}}},
		{Gateway: "gw2", Error: "unreachable"}}}, nil
}

func (s *apiServer) Get(context.Context, *graygwv1.GetRequest) (*graygwv1.GetResponse, error) {
	return nil, status.Error(codes.NotFound, "no intent stored yet")
}

func (s *apiServer) Diff(context.Context, *graygwv1.DiffRequest) (*graygwv1.DiffResponse, error) {
	return nil, status.Error(codes.Unavailable, "controller draining: no changes accepted")
}

func startAPI(t *testing.T) (*apiServer, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "controller.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	s := &apiServer{}
	gs := grpc.NewServer()
	graygwv1.RegisterControllerServer(gs, s)
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	return s, "unix://" + sock
}

func api(t *testing.T, addr string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append(args, "--controller", addr), &out, &errb, dial)
	return code, out.String(), errb.String()
}

func TestGRPCClient(t *testing.T) {
	s, addr := startAPI(t)

	code, out, stderr := api(t, addr, "cutover", "--vm", "5001/192.168.1.5", "--pool", "gray-router", "--wait", "--actor", "carol")
	req, _ := s.last.(*graygwv1.CutoverRequest)
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
		r, _ := s.last.(*graygwv1.CutoverRequest)
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
	ar, _ := s.last.(*graygwv1.ApplyRequest)
	if code != 0 || !ar.GetOptions().GetDryRun() || !strings.Contains(ar.GetIntentYaml(), "vpc-router") ||
		!strings.Contains(out, "dry run: nothing applied") || !strings.Contains(out, "backend_select  pool gray-router v1") {
		t.Errorf("apply: %d\n%s", code, out)
	}
	// Rollback modes.
	if code, out, _ := api(t, addr, "rollback", "--all"); code != 0 || s.last.(*graygwv1.RollbackRequest).GetMode() != graygwv1.RollbackRequest_ALL || !strings.Contains(out, "removed rules: a, b") {
		t.Errorf("rollback --all: %d %s", code, out)
	}
	if code, _, _ := api(t, addr, "rollback", "--step"); code != 0 || s.last.(*graygwv1.RollbackRequest).GetMode() != graygwv1.RollbackRequest_STEP {
		t.Errorf("rollback --step: %d", code)
	}
	if code, out, stderr := api(t, addr, "rollback", "--rule", "x"); code != 0 || s.last.(*graygwv1.RollbackRequest).GetMode() != graygwv1.RollbackRequest_RULE ||
		s.last.(*graygwv1.RollbackRequest).GetRule() != "x" || !strings.Contains(out, "removed rules") {
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
	if s.last.(*graygwv1.CountersRequest).GetGateway() != "gw1" || !strings.Contains(out, "NO_BACKEND") || code != ExitError || !strings.Contains(stderr, "gw2: unreachable") {
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

func (s *apiServer) BGPStatus(context.Context, *graygwv1.BGPStatusRequest) (*graygwv1.BGPStatusResponse, error) {
	med := uint32(50)
	return &graygwv1.BGPStatusResponse{Asn: 65001, RouterId: "10.0.0.1", HealthCheck: "reconciled",
		Neighbors: []*graygwv1.BGPNeighbor{{Address: "10.0.0.2", Asn: 65000, State: "established", Up: true, Advertised: 1, GracefulRestart: true}},
		Announced: []*graygwv1.BGPPath{{Vip: "10.255.0.1", VipName: "vpc-router", NextHop: "10.1.0.2", Gateway: "gw2", Med: &med,
			Since: timestamppb.New(time.Unix(1700000000, 0))}},
		Withdrawn: []*graygwv1.BGPPath{{Vip: "10.255.0.1", VipName: "vpc-router", NextHop: "10.1.0.1", Gateway: "gw1",
			Reasons: []string{"p4runtime-disconnected"}, Detail: "p4runtime-disconnected: P4Runtime session to 10.0.0.1:9559 down"}},
		Gateways: []*graygwv1.BGPGateway{{Name: "gw1", NextHop: "10.1.0.1"}, {Name: "gw2", NextHop: "10.1.0.2", P4RuntimeConnected: true, Healthy: true}}}, nil
}

func (s *apiServer) DrainGateway(_ context.Context, r *graygwv1.DrainGatewayRequest) (*graygwv1.DrainGatewayResponse, error) {
	s.last = r
	if r.GetGateway() != "gw1" {
		return nil, status.Errorf(codes.NotFound, "no gateway %q in the intent in force", r.GetGateway())
	}
	bs, _ := s.BGPStatus(context.Background(), nil)
	return &graygwv1.DrainGatewayResponse{Changed: true, Bgp: bs}, nil
}

func (s *apiServer) UndrainGateway(context.Context, *graygwv1.UndrainGatewayRequest) (*graygwv1.DrainGatewayResponse, error) {
	return nil, status.Error(codes.Unimplemented, "this controller runs without BGP (give its config file a bgp: section to announce the VIPs)")
}

const testPlan = "version: 1\nname: r1\nvip: vpc-router\npool: gray-router\nvpcs:\n  - {vni: 5001, router: 192.168.1.1, vms: [192.168.1.5]}\n"

func (s *apiServer) progress(state string) *graygwv1.RolloutProgress {
	return &graygwv1.RolloutProgress{PlanYaml: testPlan, Name: "r1", Pool: "gray-router", State: state, Step: 1, Total: 2, Vni: 5001,
		Steps: []*graygwv1.RolloutStep{{Index: 1, Kind: "vm", Vni: 5001, Vm: "192.168.1.5", RequestedRule: "r1.5001.192.168.1.5", State: "done",
			Probes: []*graygwv1.ProbeResult{{Target: &graygwv1.ProbeTarget{Vni: 5001, Vm: "192.168.1.5", Router: "192.168.1.1", ExpectPool: "gray-router"},
				Status: "ok", Sent: 3, Received: 3}}},
			{Index: 2, Kind: "vni", Vni: 5001, RequestedRule: "r1.5001", State: "pending"}},
		Message: "m " + state, Updated: timestamppb.New(time.Unix(1700000000, 0))}
}

func (s *apiServer) RolloutStart(_ context.Context, r *graygwv1.RolloutStartRequest) (*graygwv1.RolloutResponse, error) {
	s.last = r
	if strings.Contains(r.GetPlanYaml(), "5002") {
		return &graygwv1.RolloutResponse{PrecheckFailed: "rollout: probes failed: precheck before any change: 5002/192.168.2.5 wrong-backend",
			Precheck: []*graygwv1.ProbeResult{{Target: &graygwv1.ProbeTarget{Vni: 5002, Vm: "192.168.2.5", Router: "192.168.2.1", ExpectCluster: "base"},
				Status: "wrong-backend", Sent: 3, Received: 3, Answers: []*graygwv1.ProbeAnswer{{Underlay: "10.3.0.21", Backend: "gray-1", Cluster: "gray", Replies: 3}}}}}, nil
	}
	if r.GetDryRun() {
		return &graygwv1.RolloutResponse{Progress: s.progress("dry-run")}, nil
	}
	return &graygwv1.RolloutResponse{Progress: s.progress("running")}, nil
}

func (s *apiServer) RolloutStatus(context.Context, *graygwv1.RolloutStatusRequest) (*graygwv1.RolloutResponse, error) {
	return nil, status.Error(codes.NotFound, "no rollout has been started on this controller")
}

func (s *apiServer) RolloutWatch(_ *graygwv1.RolloutWatchRequest, st grpc.ServerStreamingServer[graygwv1.RolloutProgress]) error {
	for _, state := range []string{"running", "completed"} {
		p := s.progress(state)
		if state == "completed" {
			p.Updated = timestamppb.New(time.Unix(1700000060, 0))
			p.Step = 2
		}
		if err := st.Send(p); err != nil {
			return err
		}
	}
	return nil
}

func (s *apiServer) Probe(_ context.Context, r *graygwv1.ProbeRequest) (*graygwv1.ProbeResponse, error) {
	s.last = r
	var out []*graygwv1.ProbeResult
	for _, t := range r.GetTargets() {
		out = append(out, &graygwv1.ProbeResult{Target: t, Status: "ok", Sent: r.GetOptions().GetCount(), Received: r.GetOptions().GetCount(),
			Answers: []*graygwv1.ProbeAnswer{{Underlay: "10.2.0.11", Backend: "base-1", Cluster: "base", Replies: 3, Expected: true}}})
	}
	return &graygwv1.ProbeResponse{Vip: "10.255.0.1", Results: out}, nil
}

// TestGRPCClientBGPRolloutsProbes: the commands wired to the BGP, drain,
// rollout and probe calls send what they should and show what comes back.
func TestGRPCClientBGPRolloutsProbes(t *testing.T) {
	s, addr := startAPI(t)
	code, out, stderr := api(t, addr, "bgp")
	for _, w := range []string{"AS 65001, router id 10.0.0.1, health check reconciled", "10.0.0.2", "established", "vpc-router",
		"10.1.0.2  gw2", "p4runtime-disconnected", "why not announced:", "P4Runtime session to 10.0.0.1:9559 down"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Errorf("bgp lacks %q: %d %s\n%s", w, code, stderr, out)
		}
	}
	code, out, _ = api(t, addr, "bgp", "-o", "json")
	if code != 0 || !strings.Contains(out, `"med": 50`) || !strings.Contains(out, `"reason": "p4runtime-disconnected"`) {
		t.Errorf("bgp -o json: %s", out)
	}
	code, out, stderr = api(t, addr, "drain", "gw1", "--reason", "kernel", "--actor", "bob")
	req, _ := s.last.(*graygwv1.DrainGatewayRequest)
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
	code, out, stderr = api(t, addr, "rollout", "start", "-f", plan, "--dry-run")
	if code != 0 || !s.last.(*graygwv1.RolloutStartRequest).GetDryRun() || !strings.Contains(out, "rollout r1: dry run, 2 steps to pool gray-router") ||
		!strings.Contains(out, "r1.5001.192.168.1.5") {
		t.Errorf("rollout start --dry-run: %d %s\n%s", code, stderr, out)
	}
	code, out, stderr = api(t, addr, "rollout", "start", "-f", plan, "--wait")
	if code != 0 || strings.Count(out, "running  step 1/2") != 1 || !strings.Contains(out, "completed  step 2/2") {
		t.Errorf("rollout start --wait: %d %s\n%s", code, stderr, out)
	}
	bad := filepath.Join(t.TempDir(), "plan.yaml")
	os.WriteFile(bad, []byte(strings.Replace(testPlan, "5001", "5002", 1)), 0o644)
	code, out, stderr = api(t, addr, "rollout", "start", "-f", bad)
	if code != ExitFailed || !strings.Contains(out, "wrong-backend") || !strings.Contains(out, "gray-1") || !strings.Contains(stderr, "precheck before any change") {
		t.Errorf("failed precheck: %d %s\n%s", code, stderr, out)
	}
	if code, _, stderr := api(t, addr, "rollout", "status"); code != ExitError || !strings.Contains(stderr, "no rollout has been started") {
		t.Errorf("rollout status without a rollout: %d %s", code, stderr)
	}

	code, out, stderr = api(t, addr, "probe", "--plan", plan, "--count", "3")
	pr, _ := s.last.(*graygwv1.ProbeRequest)
	if code != 0 || pr.GetVip() != "vpc-router" || len(pr.GetTargets()) != 1 || pr.GetTargets()[0].GetVm() != "192.168.1.5" ||
		pr.GetOptions().GetCount() != 3 || !strings.Contains(out, "base-1") {
		t.Errorf("probe --plan: %d %v %s\n%s", code, pr, stderr, out)
	}
	code, _, stderr = api(t, addr, "probe", "--vm", "5001/192.168.1.6", "--router", "192.168.1.1", "--vip", "other", "--expect", "gray")
	pr, _ = s.last.(*graygwv1.ProbeRequest)
	if code != 0 || pr.GetVip() != "other" || pr.GetTargets()[0].GetExpectCluster() != "gray" {
		t.Errorf("probe --vm: %d %v %s", code, pr, stderr)
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
	r, _ := s.last.(*graygwv1.ProbeRequest)
	if len(r.GetInventory()) != 1 || r.GetInventory()[0].GetVni() != 5002 || r.GetInventory()[0].GetVm() != "" || r.GetExpectCluster() != "gray" || len(r.GetTargets()) != 0 {
		t.Errorf("--vni request: %v", r)
	}
	if code, _, stderr := api(t, addr, "probe", "--vm", "192.168.2.6", "--vm", "5001/192.168.1.5"); code != 0 {
		t.Fatalf("--vm: %d %s", code, stderr)
	}
	r, _ = s.last.(*graygwv1.ProbeRequest)
	if inv := r.GetInventory(); len(inv) != 2 || inv[0].GetVni() != 0 || inv[0].GetVm() != "192.168.2.6" || inv[1].GetVni() != 5001 || inv[1].GetVm() != "192.168.1.5" {
		t.Errorf("--vm request: %v", r)
	}
	if code, _, stderr := api(t, addr, "probe", "--vm", "5001/192.168.1.5", "--router", "192.168.1.1"); code != 0 {
		t.Fatalf("--router: %d %s", code, stderr)
	}
	r, _ = s.last.(*graygwv1.ProbeRequest)
	if len(r.GetInventory()) != 0 || len(r.GetTargets()) != 1 || r.GetTargets()[0].GetRouter() != "192.168.1.1" {
		t.Errorf("--router request: %v", r)
	}
}
