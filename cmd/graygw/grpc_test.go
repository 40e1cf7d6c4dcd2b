package main

import (
	"bytes"
	"context"
	"net"
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
	if code, _, stderr := api(t, addr, "rollback", "--rule", "x"); code != ExitError || !strings.Contains(stderr, "has no call for this yet: removing one rule by name") {
		t.Errorf("rollback --rule: %d %s", code, stderr)
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
	if code, _, stderr := api(t, addr, "get"); code != ExitError || !strings.Contains(stderr, "NotFound: no intent stored yet") {
		t.Errorf("get: %d %s", code, stderr)
	}
	if code, _, stderr := api(t, addr, "diff"); code != ExitError || !strings.Contains(stderr, "unavailable (not running, or draining)") {
		t.Errorf("diff: %d %s", code, stderr)
	}
	if code, _, stderr := api(t, addr, "rollout", "status"); code != ExitError || !strings.Contains(stderr, "no call for this yet: rollouts") {
		t.Errorf("rollout: %d %s", code, stderr)
	}
	if code, _, stderr := api(t, "unix:///nonexistent/controller.sock", "status"); code != ExitError || !strings.Contains(stderr, "is graygw-controller running?") {
		t.Errorf("no socket: %d %s", code, stderr)
	}
}
