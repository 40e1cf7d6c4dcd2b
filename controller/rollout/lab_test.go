package rollout_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/controller/rollout"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/topo"
)

// labVPCs: the plan below moves 5001 and 5002; 5003 is not in it and must stay
// on base throughout.
var labVPCs = []topo.VPC{
	{VNI: 5001, Subnet: 1, VMs: []uint8{5, 6, 7}},
	{VNI: 5002, Subnet: 2, VMs: []uint8{5, 6, 7}},
	{VNI: 5003, Subnet: 3, VMs: []uint8{5, 6}},
}

// labPlanFor is a plan named name over the lab's routers that moves one VM
// at a time, then whole VPCs, with fast probes; vpcs are its vpcs: lines.
func labPlanFor(name, vpcs string) string {
	return `version: 1
name: ` + name + `
vip: vpc-router
pool: gray-router
base_pool: base-router
individual_vms: 1
probe: {count: 2, interval: 10ms, timeout: 500ms}
vpcs:
` + vpcs
}

var labPlan = labPlanFor("lab", `  - {vni: 5001, router: 192.168.1.1, router_mac: "02:00:00:00:10:fe", vms: [192.168.1.5, 192.168.1.6, 192.168.1.7]}
  - {vni: 5002, router: 192.168.2.1, router_mac: "02:00:00:00:10:fe", vms: [192.168.2.5, 192.168.2.6, 192.168.2.7]}
`)

type labEnv struct {
	lab    *probetest.Lab
	ctrl   *rollout.Local
	prober *probe.Prober
}

// newLabEnv builds the namespace lab with the XDP gateway, an in-process
// controller applying compiled intents to it, and a prober on the hypervisor.
func newLabEnv(t *testing.T) *labEnv {
	t.Helper()
	return newLabEnvWith(t, labVPCs)
}

// newLabEnvWith is newLabEnv over vpcs.
func newLabEnvWith(t *testing.T, vpcs []topo.VPC) *labEnv {
	t.Helper()
	l := labtest.Build(t, "network namespaces, XDP and AF_PACKET", func() (*probetest.Lab, error) { return probetest.New("ggroll", vpcs) })
	spec, err := intent.Parse([]byte(l.IntentYAML("")))
	if err != nil {
		t.Fatal(err)
	}
	in, err := spec.Validate()
	if err != nil {
		t.Fatal(err)
	}
	p, err := probe.New(l.ProberConfig(in))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	ctrl, err := rollout.NewLocal(spec, func(_ *intent.Intent, res *compile.Result) error { return l.Apply(res) }, p)
	if err != nil {
		t.Fatal(err)
	}
	return &labEnv{lab: l, ctrl: ctrl, prober: p}
}

// where probes every VM of the lab and returns who answered each ("vni/vm" ->
// backend name, "lost" when nobody did).
func (e *labEnv) where(t *testing.T) map[string]string {
	t.Helper()
	ts, err := probe.Targets(e.lab.VPCs(), 0, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := e.prober.Run(context.Background(), ts, probe.Options{Count: 2, Interval: 10 * time.Millisecond, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rs {
		switch {
		case r.Received == 0:
			out[r.Target.String()] = "lost"
		case r.Received != r.Sent:
			out[r.Target.String()] = "partial:" + r.AnsweredBy()
		default:
			out[r.Target.String()] = r.AnsweredBy()
		}
	}
	return out
}

func expectWhere(t *testing.T, got map[string]string, gray func(vm string) bool) {
	t.Helper()
	for vm, who := range got {
		want := "base-1"
		if gray(vm) {
			want = "gray-1"
		}
		if who != want {
			t.Errorf("%s answered by %s, want %s", vm, who, want)
		}
	}
}

// expectAllBase checks that nothing is left on gray: the probes run after a
// rollback (after) all answered by base-1, no rule in the controller or the
// dataplane, and every VM answered by base-1 now.
func (e *labEnv) expectAllBase(t *testing.T, after []probe.Result) {
	t.Helper()
	for _, a := range after {
		if a.Status != probe.StatusOK || a.AnsweredBy() != "base-1" {
			t.Errorf("after rollback %v: %s by %s", a.Target, a.Status, a.AnsweredBy())
		}
	}
	if len(e.ctrl.Rules()) != 0 || len(e.lab.DP.Rules()) != 0 {
		t.Errorf("rules left: controller %v, dataplane %d", e.ctrl.Rules(), len(e.lab.DP.Rules()))
	}
	expectWhere(t, e.where(t), func(string) bool { return false })
}

func startPlan(t *testing.T, r *rollout.Runner, doc string) (*rollout.Progress, error) {
	t.Helper()
	spec, err := rollout.ParsePlan([]byte(doc))
	if err != nil {
		return nil, err
	}
	return r.Start(context.Background(), spec)
}

// TestLabRolloutAcrossTwoVPCs: with a healthy gray cluster the rollout moves
// exactly the planned traffic, step by step, and leaves the VPC outside the plan
// on base.
func TestLabRolloutAcrossTwoVPCs(t *testing.T) {
	e := newLabEnv(t)
	expectWhere(t, e.where(t), func(string) bool { return false })
	p := runPlan(t, e.ctrl, labPlan)
	if p.State != rollout.StateCompleted {
		t.Fatalf("rollout: %s: %s", p.State, p.Error)
	}
	// What each step's probes saw: the VMs moved so far on gray, the rest on base.
	movedAfter := []func(vni uint32, vm string) bool{
		func(vni uint32, vm string) bool { return vm == "192.168.1.5" },
		func(vni uint32, vm string) bool { return vni == 5001 },
		func(vni uint32, vm string) bool { return vni == 5001 || vm == "192.168.2.5" },
		func(vni uint32, vm string) bool { return vni == 5001 || vni == 5002 },
	}
	if len(p.Steps) != len(movedAfter) {
		t.Fatalf("%d steps, want %d", len(p.Steps), len(movedAfter))
	}
	for i, s := range p.Steps {
		if s.State != rollout.StepDone || len(s.Probes) != 6 {
			t.Errorf("step %d: %s with %d probes", i+1, s.State, len(s.Probes))
		}
		for _, pr := range s.Probes {
			want := "base-1"
			if movedAfter[i](pr.Target.VNI, pr.Target.VM.String()) {
				want = "gray-1"
			}
			if pr.Status != probe.StatusOK || pr.AnsweredBy() != want {
				t.Errorf("step %d, %v: %s by %s, want ok by %s", i+1, pr.Target, pr.Status, pr.AnsweredBy(), want)
			}
		}
	}
	// Independently of the rollout's own probes: 5001 and 5002 on gray, 5003 on base.
	expectWhere(t, e.where(t), func(vm string) bool { return !strings.HasPrefix(vm, "5003/") })
	if n := len(e.lab.DP.Rules()); n != 4 {
		t.Errorf("%d gray rules in the dataplane, want 4", n)
	}
	// The VMs' own kernel traffic follows too.
	if got, err := e.lab.Topo.Ping(labVPCs[0], 6, 3); err != nil || got != 3 {
		t.Errorf("ping from 192.168.1.6 through the gateway: %d/3 %v", got, err)
	}
}

// TestLabBrokenGrayStopsAtFirstStep: the gray backend does not answer VNI 5001;
// the first step fails its probes, is rolled back, and every VM is on base again.
func TestLabBrokenGrayStopsAtFirstStep(t *testing.T) {
	e := newLabEnv(t)
	if err := e.lab.SetBackendVNI(true, 5001, false); err != nil {
		t.Fatal(err)
	}
	p := runPlan(t, e.ctrl, labPlan) // the precheck passes: nothing is on gray yet
	if p.State != rollout.StateFailed || p.Step != 1 || p.Steps[0].State != rollout.StepRolledBack {
		t.Fatalf("state %s at step %d (%s), want failed at step 1, rolled back: %s", p.State, p.Step, p.Steps[0].State, p.Error)
	}
	if !strings.Contains(p.Error, "5001/192.168.1.5 lost") {
		t.Errorf("error does not name the lost VM: %s", p.Error)
	}
	for _, s := range p.Steps[1:] {
		if s.State != rollout.StepPending {
			t.Errorf("step %v ran: %s", s.Step, s.State)
		}
	}
	e.expectAllBase(t, p.Steps[0].AfterRollback)
}

// TestLabBadInputChangesNothing: an unknown VNI, a malformed plan and
// overlapping flows are refused with a clear error, and the gateway's tables
// and traffic stay as they were.
func TestLabBadInputChangesNothing(t *testing.T) {
	e := newLabEnv(t)
	r := rollout.NewRunner(e.ctrl, &rollout.MemoryStore{}, rollout.Options{})
	before := len(e.lab.DP.Rules())

	_, err := startPlan(t, r, strings.Replace(labPlan, "vni: 5002", "vni: 7777", 1))
	if !errors.Is(err, rollout.ErrRefused) || !errors.Is(err, rollout.ErrUnknownVNI) || !strings.Contains(err.Error(), "unknown VNI 7777: no tenant of the intent lists it (known VNIs: 5001, 5002, 5003)") {
		t.Errorf("unknown VNI: %v", err)
	}
	_, err = startPlan(t, r, strings.Replace(labPlan, "vms: [192.168.1.5", "vms: [192.168.1.500", 1))
	if !errors.Is(err, rollout.ErrPlan) || !strings.Contains(err.Error(), `vpcs[0].vms[0]: "192.168.1.500": want an IPv4 or IPv6 address`) {
		t.Errorf("malformed plan: %v", err)
	}
	_, err = startPlan(t, r, strings.Replace(labPlan, "pool: gray-router", "pool: gray-routr", 1))
	if !errors.Is(err, rollout.ErrRefused) || !errors.Is(err, intent.ErrUnknownRef) {
		t.Errorf("unknown pool: %v", err)
	}

	ctx := context.Background()
	vni := int64(5001)
	tcp, dport80, sport1000 := "tcp", int64(80), int64(1000)
	flowA := rollout.Scope{Match: intent.MatchSpec{VIP: "vpc-router", VNI: &vni, Src: "192.168.1.5", Proto: tcp, DPort: &dport80}}
	flowB := rollout.Scope{Match: intent.MatchSpec{VIP: "vpc-router", VNI: &vni, Src: "192.168.1.5", Proto: tcp, SPort: &sport1000}}
	ruleA, err := e.ctrl.Cutover(ctx, flowA, "gray-router", false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.ctrl.Cutover(ctx, flowB, "gray-router", false)
	if !errors.Is(err, rollout.ErrRefused) || !errors.Is(err, intent.ErrOverlap) {
		t.Errorf("overlapping flows: %v", err)
	}
	if got := len(e.lab.DP.Rules()); got != before+1 {
		t.Errorf("%d rules after one flow and one refused overlap, want %d", got, before+1)
	}
	if err := e.ctrl.Rollback(ctx, ruleA); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Status(); !errors.Is(err, rollout.ErrNoRollout) {
		t.Errorf("a refused start left a rollout: %v", err)
	}
	if got := len(e.lab.DP.Rules()); got != before {
		t.Errorf("%d rules at the end, want %d", got, before)
	}
	expectWhere(t, e.where(t), func(string) bool { return false })
}

// serve takes a started TCP or UDP service of a lab backend and stops it at
// cleanup: serve(t)(e.lab.ServeTCP(false, 8080)).
func serve(t *testing.T) func(*probetest.Service, error) *probetest.Service {
	return func(s *probetest.Service, err error) *probetest.Service {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Stop)
		return s
	}
}

// labL4Plan probes TCP 8080 and UDP 7777 besides ICMP.
var labL4Plan = strings.Replace(labPlan, "probe: {count: 2, interval: 10ms, timeout: 500ms}",
	"probe: {count: 2, interval: 10ms, timeout: 500ms, tcp: [8080], udp: [7777]}", 1)

// TestLabTCPOnlyFailureRollsBack: the gray cluster answers ICMP and UDP but
// refuses TCP 8080 (base serves all three). The precheck passes (every VM on
// base); the first step's TCP probe of the moved VM is refused by gray-1
// while its ICMP and UDP probes pass: the step is rolled back and the
// rollout fails, every VM on base again.
func TestLabTCPOnlyFailureRollsBack(t *testing.T) {
	e := newLabEnv(t)
	serve(t)(e.lab.ServeTCP(false, 8080))
	serve(t)(e.lab.ServeUDPEcho(false, 7777))
	serve(t)(e.lab.ServeUDPEcho(true, 7777))
	p := runPlan(t, e.ctrl, labL4Plan)
	if p.State != rollout.StateFailed || p.Step != 1 || p.Steps[0].State != rollout.StepRolledBack {
		t.Fatalf("state %s at step %d (%s), want failed at step 1, rolled back: %s", p.State, p.Step, p.Steps[0].State, p.Error)
	}
	if !strings.Contains(p.Error, "5001/192.168.1.5 tcp/8080 refused") || !strings.Contains(p.Error, "refused (TCP reset) by gray-1") {
		t.Errorf("error does not name the refused connection: %s", p.Error)
	}
	if n := len(p.Precheck); n != 18 {
		t.Errorf("%d precheck probes, want 6 VMs x 3 checks", n)
	}
	for _, pr := range p.Steps[0].Probes {
		moved := pr.Target.VNI == 5001 && pr.Target.VM.String() == "192.168.1.5"
		want, by := probe.StatusOK, "base-1"
		if moved {
			by = "gray-1"
			if pr.Target.Proto == probe.ProtoTCP {
				want = probe.StatusRefused
			}
		}
		if pr.Status != want || pr.AnsweredBy() != by {
			t.Errorf("step 1, %v: %s by %s, want %s by %s", pr.Target, pr.Status, pr.AnsweredBy(), want, by)
		}
	}
	e.expectAllBase(t, p.Steps[0].AfterRollback)
}

// runPlan runs the plan doc over ctrl to its end (a minute at most) and
// returns the final progress.
func runPlan(t *testing.T, ctrl rollout.Controller, doc string) *rollout.Progress {
	t.Helper()
	r := rollout.NewRunner(ctrl, &rollout.MemoryStore{}, rollout.Options{})
	if _, err := startPlan(t, r, doc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := r.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stopAfter is the lab controller with a hook: after its n-th probe run the
// given service stops (a gray side that fails only after a while).
type stopAfter struct {
	*rollout.Local
	mu    sync.Mutex
	calls int
	n     int
	stop  func()
}

func (s *stopAfter) Probe(ctx context.Context, ts []probe.Target, o probe.Options) ([]probe.Result, error) {
	res, err := s.Local.Probe(ctx, ts, o)
	s.mu.Lock()
	s.calls++
	if s.calls == s.n {
		s.stop()
	}
	s.mu.Unlock()
	return res, err
}

// TestLabDelayedTCPFailure: gray serves TCP 8080 at first and stops after a
// while. With a bake, the step whose own probes passed fails during its bake
// and is rolled back; with a watch (and watch_rollback), every step passes
// and the watch catches it and rolls everything back.
func TestLabDelayedTCPFailure(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
		stopAfter   int // probe runs: 1 precheck, then one per step
	}{
		{"bake", "bake: 1s\nbake_every: 200ms\n", 2},                         // after step 1's probes
		{"watch", "watch: 3s\nbake_every: 200ms\nwatch_rollback: true\n", 5}, // after the last step's
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLabEnv(t)
			serve(t)(e.lab.ServeTCP(false, 8080))
			gray := serve(t)(e.lab.ServeTCP(true, 8080))
			plan := strings.Replace(labPlan, "probe: {count: 2, interval: 10ms, timeout: 500ms}",
				"probe: {count: 2, interval: 10ms, timeout: 500ms, tcp: [8080]}", 1) + tc.extra
			p := runPlan(t, &stopAfter{Local: e.ctrl, n: tc.stopAfter, stop: gray.Stop}, plan)
			switch tc.name {
			case "bake":
				if p.State != rollout.StateFailed || p.Step != 1 || p.Steps[0].State != rollout.StepRolledBack ||
					!strings.Contains(p.Error, "tcp/8080 refused") {
					t.Fatalf("state %s at step %d (%s): %s", p.State, p.Step, p.Steps[0].State, p.Error)
				}
			case "watch":
				if p.State != rollout.StateAborted || !strings.Contains(p.Error, "watch: probes failed") || !strings.Contains(p.Error, "tcp/8080 refused") {
					t.Fatalf("state %s: %s / %s", p.State, p.Message, p.Error)
				}
				for _, s := range p.Steps {
					if s.State != rollout.StepRolledBack {
						t.Errorf("step %v: %s, want rolled back", s.Step, s.State)
					}
				}
			}
			e.expectAllBase(t, nil)
		})
	}
}
