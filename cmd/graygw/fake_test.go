package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/graygw/graygw/api/convert"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/rollout"
	"github.com/graygw/graygw/controller/trace"
)

// fake is the controller's API with canned answers, served over a real gRPC
// unix socket: the CLI under test dials it as it dials a controller. It
// records the calls and the last request.
type fake struct {
	graygwv1.UnimplementedControllerServer
	mu    sync.Mutex
	calls []string      // "apply", "cutover", "rollout status", ...
	last  proto.Message // the last request
	// err is returned by every call when set; fail by the call's name.
	err  error
	fail map[string]error
	// progress are the rollout answers, in order (none left: no rollout).
	progress []*rollout.Progress
	// precheck, when set, fails every rollout start's precheck with them.
	precheck []probe.Result
	// results answer probes (nil: every target ok, answered by base-1).
	results []probe.Result
	// unreadable, when set, is a gateway whose counters cannot be read.
	unreadable string
	// replicas are the controller replicas status lists.
	replicas []*graygwv1.Replica
	// traces answer Trace.
	traces []trace.Gateway
}

func (f *fake) rec(name string, req proto.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.last = append(f.calls, name), req
	if err := f.fail[name]; err != nil {
		return err
	}
	return f.err
}

// lastReq is the last request f was sent.
func (f *fake) lastReq() proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// serve serves f on a fresh unix socket until the test ends; it returns the
// --controller address and a stop that waits for the handlers to return.
func (f *fake) serve(t testing.TB) (string, func()) {
	t.Helper()
	// Not t.TempDir: a fuzz seed's name ('#') would end the socket's URL.
	dir, err := os.MkdirTemp("", "graygw-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "controller.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	graygwv1.RegisterControllerServer(gs, f)
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	return "unix://" + sock, gs.Stop
}

// cli runs graygw with args against f and returns the exit code and outputs.
func cli(t testing.TB, f *fake, args ...string) (int, string, string) {
	t.Helper()
	addr, stop := f.serve(t)
	defer stop()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(o dialOptions) (*apiClient, error) {
		if _, _, err := o.target(); err != nil {
			return nil, usageErr(err)
		}
		o.Address = addr
		return dial(o)
	})
	return code, out.String(), errb.String()
}

// startAPI serves a fake whose Get, Diff, RolloutPause and UndrainGateway
// fail as a controller's can, and whose gw2 counters are unreadable.
func startAPI(t *testing.T) (*fake, string) {
	t.Helper()
	f := &fake{unreadable: "gw2", fail: map[string]error{
		"get":           status.Error(codes.NotFound, "no intent stored yet"),
		"diff":          status.Error(codes.Unavailable, "controller draining: no changes accepted"),
		"rollout pause": status.Error(codes.Unimplemented, "method RolloutPause not implemented"),
		"undrain":       status.Error(codes.Unimplemented, "this controller runs without BGP (give its config file a bgp: section to announce the VIPs)"),
	}}
	addr, _ := f.serve(t)
	return f, addr
}

// api runs graygw with args against the controller at addr.
func api(t *testing.T, addr string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append(args, "--controller", addr), &out, &errb, dial)
	return code, out.String(), errb.String()
}

var fakeTime = timestamppb.New(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))

func (f *fake) Apply(_ context.Context, r *graygwv1.ApplyRequest) (*graygwv1.ApplyResponse, error) {
	if err := f.rec("apply", r); err != nil {
		return nil, err
	}
	return &graygwv1.ApplyResponse{Result: &graygwv1.ChangeResult{Applied: !r.GetOptions().GetDryRun(), Version: 7, Summary: "apply",
		Plans: []*graygwv1.GatewayPlan{{Gateway: "gw1", Reachable: true, Inserts: 4097,
			Groups: []*graygwv1.ChangeGroup{{Op: "INSERT", Table: "GrayIngress.backend_select", Origin: "pool gray-router v1", Count: 4096},
				{Op: "INSERT", Table: "GrayIngress.gray_rules", Origin: "rule x", Count: 1}}}}}}, nil
}

func (f *fake) Diff(_ context.Context, r *graygwv1.DiffRequest) (*graygwv1.DiffResponse, error) {
	return &graygwv1.DiffResponse{}, f.rec("diff", r)
}

func (f *fake) Get(_ context.Context, r *graygwv1.GetRequest) (*graygwv1.GetResponse, error) {
	if err := f.rec("get", r); err != nil {
		return nil, err
	}
	doc, err := os.ReadFile("../../docs/examples/intent.yaml")
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &graygwv1.GetResponse{Version: 3, CurrentVersion: 3, Actor: "alice", Time: fakeTime, IntentYaml: string(doc)}, nil
}

func (f *fake) History(_ context.Context, r *graygwv1.HistoryRequest) (*graygwv1.HistoryResponse, error) {
	return &graygwv1.HistoryResponse{Events: []*graygwv1.Event{{Seq: 9, Time: fakeTime, Actor: "alice", Operation: "cutover",
		Summary: "vm 5001/192.168.1.5 -> gray-router", Before: 2, After: 3}}}, f.rec("history", r)
}

func (f *fake) Cutover(_ context.Context, r *graygwv1.CutoverRequest) (*graygwv1.CutoverResponse, error) {
	name, rule := "cutover", or(r.GetRule(), "vm-5001-192.168.1.5")
	if r.GetMirror() != nil {
		name, rule = "mirror", or(r.GetRule(), "vni-5001")
	}
	if err := f.rec(name, r); err != nil {
		return nil, err
	}
	if r.GetVni().GetVni() == 7777 {
		return &graygwv1.CutoverResponse{Result: &graygwv1.ChangeResult{Problems: []*graygwv1.Problem{
			{Path: "cutover.match.vni", Message: "VNI 7777 belongs to no tenant", Class: "unknown_ref"}}}}, nil
	}
	return &graygwv1.CutoverResponse{Rule: rule, Result: &graygwv1.ChangeResult{Applied: !r.GetOptions().GetDryRun(), Version: 5}}, nil
}

func (f *fake) Rollback(_ context.Context, r *graygwv1.RollbackRequest) (*graygwv1.RollbackResponse, error) {
	if err := f.rec("rollback", r); err != nil {
		return nil, err
	}
	resp := &graygwv1.RollbackResponse{Result: &graygwv1.ChangeResult{Applied: !r.GetOptions().GetDryRun(), Version: 6}}
	switch r.GetMode() {
	case graygwv1.RollbackRequest_RULE:
		resp.RemovedRules = []string{r.GetRule()}
	case graygwv1.RollbackRequest_ALL:
		resp.RemovedRules = []string{"a", "b"}
	}
	return resp, nil
}

func (f *fake) Status(_ context.Context, r *graygwv1.StatusRequest) (*graygwv1.StatusResponse, error) {
	return &graygwv1.StatusResponse{Version: 3, Replicas: f.replicas, Gateways: []*graygwv1.GatewayStatus{
			{Name: "gw1", Address: "10.0.0.1:9559", Connected: true, Primary: true, Version: 3, Entries: 12, InSync: true, LastResult: "ok"},
			{Name: "gw2", Address: "127.0.0.1:9559", Connected: true, Version: 3, InSync: true, Entries: 16403, LastReconcile: fakeTime, LastResult: "ok"}},
			Vnis: []*graygwv1.VNIStatus{{Vni: 5001, Tenant: "acme", State: graygwv1.GrayState_PARTLY_GRAY, Vips: []*graygwv1.VIPGrayState{
				{Vip: "vpc-router", State: graygwv1.GrayState_PARTLY_GRAY, GrayVms: []string{"192.168.1.5"}, Selectors: []*graygwv1.Selector{{Rule: "vm-5001-192.168.1.5"}}}}}}},
		f.rec("status", r)
}

func (f *fake) Counters(_ context.Context, r *graygwv1.CountersRequest) (*graygwv1.CountersResponse, error) {
	resp := &graygwv1.CountersResponse{Gateways: []*graygwv1.GatewayCounters{{Gateway: "gw1",
		Rules: []*graygwv1.NamedCounter{{Name: "vm5", Packets: 10, Bytes: 1000}}, Drops: []*graygwv1.NamedCounter{{Name: "NO_BACKEND", Packets: 1}}}}}
	if f.unreadable != "" {
		resp.Gateways = append(resp.Gateways, &graygwv1.GatewayCounters{Gateway: f.unreadable, Error: "unreachable"})
	}
	return resp, f.rec("counters "+r.GetGateway(), r)
}

// bgp: gw1 drained by alice (its path withdrawn), gw2's path announced.
func (f *fake) bgp() *graygwv1.BGPStatusResponse {
	med := uint32(50)
	return &graygwv1.BGPStatusResponse{Asn: 65001, RouterId: "10.1.0.100", HealthCheck: "reconciled",
		Neighbors: []*graygwv1.BGPNeighbor{{Address: "10.1.0.254", Asn: 65000, State: "established", Up: true, Uptime: durationpb.New(time.Minute),
			Advertised: 1, GracefulRestart: true}},
		Gateways: []*graygwv1.BGPGateway{{Name: "gw1", NextHop: "10.1.0.1", P4RuntimeConnected: true, Healthy: true, Drained: true,
			DrainedBy: "alice (uid=1000)", DrainedAt: fakeTime, DrainReason: "maintenance"},
			{Name: "gw2", NextHop: "10.1.0.2", P4RuntimeConnected: true, Healthy: true}},
		Announced: []*graygwv1.BGPPath{{Vip: "10.255.0.1", VipName: "vpc-router", NextHop: "10.1.0.2", Gateway: "gw2", Med: &med, Since: fakeTime}},
		Withdrawn: []*graygwv1.BGPPath{{Vip: "10.255.0.1", VipName: "vpc-router", NextHop: "10.1.0.1", Gateway: "gw1", Reasons: []string{"drained"},
			Detail: "drained by alice (uid=1000) at 2025-01-02T03:04:05Z (maintenance)"}}}
}

func (f *fake) BGPStatus(_ context.Context, r *graygwv1.BGPStatusRequest) (*graygwv1.BGPStatusResponse, error) {
	return f.bgp(), f.rec("bgp", r)
}

func (f *fake) DrainGateway(_ context.Context, r *graygwv1.DrainGatewayRequest) (*graygwv1.DrainGatewayResponse, error) {
	if err := f.rec("drain", r); err != nil {
		return nil, err
	}
	if r.GetGateway() != "gw1" && r.GetGateway() != "gw2" {
		return nil, status.Errorf(codes.NotFound, "no gateway %q in the intent in force", r.GetGateway())
	}
	return &graygwv1.DrainGatewayResponse{Changed: true, Bgp: f.bgp()}, nil
}

func (f *fake) UndrainGateway(_ context.Context, r *graygwv1.UndrainGatewayRequest) (*graygwv1.DrainGatewayResponse, error) {
	return &graygwv1.DrainGatewayResponse{Changed: false}, f.rec("undrain", r)
}

// rollout answers the next progress (none left: no rollout).
func (f *fake) rollout(name string, req proto.Message) (*graygwv1.RolloutResponse, error) {
	if err := f.rec(name, req); err != nil {
		return nil, err
	}
	p := f.next()
	if p == nil {
		return nil, status.Error(codes.NotFound, "no rollout has been started on this controller")
	}
	pp, err := convert.Progress(p)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &graygwv1.RolloutResponse{Progress: pp}, nil
}

func (f *fake) next() *rollout.Progress {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.progress) == 0 {
		return nil
	}
	p := f.progress[0]
	f.progress = f.progress[1:]
	return p
}

func (f *fake) RolloutStart(_ context.Context, r *graygwv1.RolloutStartRequest) (*graygwv1.RolloutResponse, error) {
	if f.precheck != nil {
		return &graygwv1.RolloutResponse{PrecheckFailed: "rollout: probes failed: precheck before any change",
			Precheck: convert.ProbeResults(f.precheck)}, f.rec("rollout start", r)
	}
	return f.rollout("rollout start", r)
}

func (f *fake) RolloutStatus(_ context.Context, r *graygwv1.RolloutStatusRequest) (*graygwv1.RolloutResponse, error) {
	return f.rollout("rollout status", r)
}

func (f *fake) RolloutPause(_ context.Context, r *graygwv1.RolloutActionRequest) (*graygwv1.RolloutResponse, error) {
	return f.rollout("rollout pause", r)
}

func (f *fake) RolloutResume(_ context.Context, r *graygwv1.RolloutActionRequest) (*graygwv1.RolloutResponse, error) {
	return f.rollout("rollout resume", r)
}

func (f *fake) RolloutAbort(_ context.Context, r *graygwv1.RolloutActionRequest) (*graygwv1.RolloutResponse, error) {
	return f.rollout("rollout abort", r)
}

// RolloutWatch streams the progress left.
func (f *fake) RolloutWatch(r *graygwv1.RolloutWatchRequest, st grpc.ServerStreamingServer[graygwv1.RolloutProgress]) error {
	if err := f.rec("rollout watch", r); err != nil {
		return err
	}
	for p := f.next(); p != nil; p = f.next() {
		pp, err := convert.Progress(p)
		if err != nil {
			return err
		}
		if err := st.Send(pp); err != nil {
			return err
		}
	}
	return nil
}

func (f *fake) Probe(_ context.Context, r *graygwv1.ProbeRequest) (*graygwv1.ProbeResponse, error) {
	if err := f.rec("probe", r); err != nil {
		return nil, err
	}
	if f.results != nil {
		return &graygwv1.ProbeResponse{Results: convert.ProbeResults(f.results)}, nil
	}
	var out []*graygwv1.ProbeResult
	for _, t := range r.GetTargets() {
		out = append(out, &graygwv1.ProbeResult{Target: t, Status: "ok", Sent: r.GetOptions().GetCount(), Received: r.GetOptions().GetCount(),
			Answers: []*graygwv1.ProbeAnswer{{Underlay: "10.2.0.11", Backend: "base-1", Cluster: "base", Replies: 3, Expected: true}}})
	}
	return &graygwv1.ProbeResponse{Vip: "10.255.0.1", Results: out}, nil
}

func (f *fake) Trace(_ context.Context, r *graygwv1.TraceRequest) (*graygwv1.TraceResponse, error) {
	if err := f.rec("trace", r); err != nil {
		return nil, err
	}
	resp := &graygwv1.TraceResponse{}
	for i := range f.traces {
		resp.Gateways = append(resp.Gateways, convert.GatewayTrace(&f.traces[i]))
	}
	return resp, nil
}
