package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/agent/dataplane"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
)

// simHost is a probe host simulated over the agent's reference dataplane: each
// probe frame (VXLAN echo to the VIP, as the VM) goes through the agent's
// tables (model.Process), and the backend it is forwarded to answers, unless
// that backend is broken. So the probes see exactly what the gateway holds.
type simHost struct {
	mem *dataplane.Memory

	mu     sync.Mutex
	broken map[string]bool // backend names that answer nothing
	vips   []netip.Addr    // the VIP of every run
	// gate, when set, is called before every run (with its number) and may block.
	gate func(n int)
	runs int
}

func (h *simHost) host() *probe.Host {
	return &probe.Host{NetNS: "sim", Open: func(cfg probe.Config) (probe.Runner, error) {
		return &simProber{h: h, cfg: cfg}, nil
	}}
}

func (h *simHost) setBroken(backend string, b bool) {
	h.mu.Lock()
	h.broken[backend] = b
	h.mu.Unlock()
}

type simProber struct {
	h   *simHost
	cfg probe.Config
}

func (p *simProber) Close() error { return nil }

func (p *simProber) Run(ctx context.Context, ts []probe.Target, o probe.Options) ([]probe.Result, error) {
	h := p.h
	h.mu.Lock()
	h.runs++
	n, gate := h.runs, h.gate
	h.vips = append(h.vips, p.cfg.VIP)
	h.mu.Unlock()
	if gate != nil {
		gate(n)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o = o.WithDefaults()
	var out []probe.Result
	for i, t := range ts {
		r := probe.Result{Target: t, Sent: o.Count}
		inner := testpkt.Inner(testpkt.Eth{Dst: testpkt.MAC("02:00:00:00:10:fe"), Src: testpkt.MAC("02:00:00:00:10:01")},
			testpkt.IP{Src: t.VM, Dst: t.Router}, testpkt.L4{Proto: testpkt.ProtoICMP, SPort: 7, DPort: 1})
		frame := testpkt.VXLAN(testpkt.Eth{Dst: testpkt.MAC("02:00:00:00:01:01"), Src: testpkt.MAC("02:00:00:00:00:01")},
			testpkt.IP{Src: netip.MustParseAddr("10.9.0.1"), Dst: p.cfg.VIP}, uint16(40000+i), t.VNI, inner)
		res := h.mem.Process(frame)
		if res.Verdict != model.Forward {
			r.Status, r.Reason = probe.StatusLost, fmt.Sprintf("dropped by the gateway: %v", res.Reason)
			out = append(out, r)
			continue
		}
		under := netip.AddrFrom4([4]byte(res.Frame[30:34]))
		var be probe.Backend
		for _, b := range p.cfg.Backends {
			if b.Underlay == under {
				be = b
			}
		}
		h.mu.Lock()
		broken := h.broken[be.Name]
		h.mu.Unlock()
		expected := (t.ExpectPool == "" || contains(be.Pools, t.ExpectPool)) && (t.ExpectCluster == "" || be.Cluster == t.ExpectCluster)
		switch {
		case broken:
			r.Status, r.Reason = probe.StatusLost, fmt.Sprintf("%d of %d requests unanswered", o.Count, o.Count)
		case !expected:
			r.Status, r.Received = probe.StatusWrongBackend, o.Count
			r.Answers = []probe.Answer{{Underlay: under, Backend: be.Name, Cluster: be.Cluster, Replies: o.Count}}
			r.Reason = "answered by " + be.Name
		default:
			r.Status, r.Received = probe.StatusOK, o.Count
			r.Answers = []probe.Answer{{Underlay: under, Backend: be.Name, Cluster: be.Cluster, Replies: o.Count, Expected: true}}
		}
		out = append(out, r)
	}
	return out, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// planOf is a plan named name over the test intent's vpc VIP, gray and base
// pools, one VM at a time, with fast probes; vpcs are its vpcs: lines.
func planOf(name, vpcs string) string {
	return `version: 1
name: ` + name + `
vip: vpc
pool: gray
base_pool: base
individual_vms: 1
probe: {count: 2, interval: 1ms, timeout: 50ms}
vpcs:
` + vpcs
}

// plan moves two VPCs of the test intent; planNamed is it under another name.
var plan = planNamed("r1")

func planNamed(name string) string {
	return planOf(name, `  - {vni: 5001, router: 10.0.0.1, vms: [10.0.0.6, 10.0.0.7]}
  - {vni: 5002, router: 10.0.1.1, vms: [10.0.1.6, 10.0.1.7]}
`)
}

func ruleNames(t *testing.T, c *controller) []string {
	t.Helper()
	in, _ := c.Engine.Intent()
	var out []string
	for _, r := range in.Rules {
		out = append(out, r.Name)
	}
	return out
}

// watch follows the rollout through RolloutWatch until the stream ends.
func watch(t *testing.T, c *controller) []*graygwv1.RolloutProgress {
	t.Helper()
	s, err := c.Client.RolloutWatch(ctx(t), &graygwv1.RolloutWatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*graygwv1.RolloutProgress
	for {
		p, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		out = append(out, p)
	}
}

// TestRolloutThroughTheAPI: a dry run changes nothing; a rollout completes
// step by step (watched as it goes), its rules in the intent and its changes
// recorded as the rollout's; a broken gray backend stops it at the first step,
// rolled back; a controller restarted in the middle of a step reports that step
// and resumes from it; a pause stops it after the current step until resumed.
func TestRolloutThroughTheAPI(t *testing.T) {
	addr, mem := startAgent(t)
	h := &simHost{mem: mem, broken: map[string]bool{}}
	dir := t.TempDir()
	c := startControllerWith(t, ctlOpts{dir: dir, probe: h.host()})
	v := mustApply(t, c, intentYAML(addr), "t").GetVersion()

	// Probe: expectations from the tables in force.
	pr, err := c.Client.Probe(ctx(t), &graygwv1.ProbeRequest{Targets: []*graygwv1.ProbeTarget{
		{Vni: 5001, Vm: "10.0.0.5", Router: "10.0.0.1"}, {Vni: 5001, Vm: "10.0.0.6", Router: "10.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := pr.GetResults(); pr.GetVip() != "10.255.0.1" || len(r) != 2 || r[0].GetStatus() != "ok" || r[0].GetTarget().GetExpectPool() != "gray" ||
		r[1].GetStatus() != "ok" || r[1].GetTarget().GetExpectPool() != "base" || r[1].GetAnswers()[0].GetCluster() != "base" {
		t.Fatalf("probe: %v", pr)
	}
	// A plan's VMs, expecting gray: wrong-backend.
	pr, err = c.Client.Probe(ctx(t), &graygwv1.ProbeRequest{PlanYaml: plan, Vni: 5002, Targets: nil,
		Options: &graygwv1.ProbeOptions{Count: 1}})
	if err != nil || len(pr.GetResults()) != 2 || pr.GetResults()[0].GetTarget().GetVni() != 5002 {
		t.Fatalf("probe of a plan: %v %v", pr, err)
	}

	// Bad plans and refused steps change nothing.
	resp, err := c.Client.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: "version: 1\nname: X!\npool: gray\nvpcs: []\n"})
	if err != nil || len(resp.GetProblems()) < 2 || resp.GetProgress() != nil {
		t.Fatalf("bad plan: %v %v", resp, err)
	}
	resp, err = c.Client.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: strings.Replace(plan, "pool: gray\n", "pool: nope\n", 1)})
	if err != nil || len(resp.GetProblems()) != 1 || !strings.Contains(resp.GetProblems()[0].GetMessage(), "step 1") ||
		!strings.Contains(resp.GetProblems()[0].GetMessage(), "nope") {
		t.Fatalf("refused step: %v %v", resp, err)
	}

	// Dry run.
	resp, err = c.Client.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: plan, DryRun: true})
	if err != nil || resp.GetProgress().GetState() != "dry-run" || resp.GetProgress().GetTotal() != 4 || len(resp.GetProgress().GetPrecheck()) != 4 {
		t.Fatalf("dry run: %v %v", resp, err)
	}
	if _, cur := c.Engine.Intent(); cur != v {
		t.Fatalf("a dry run changed the intent: version %d -> %d", v, cur)
	}

	// The rollout. Its steps' probes wait (after the start's precheck, one
	// run) until the test has tried a second start and is watching: a cutover
	// takes about a millisecond, the whole rollout would be over before.
	hold := make(chan struct{})
	h.mu.Lock()
	runs0 := h.runs
	h.gate = func(n int) {
		if n > runs0+1 {
			<-hold
		}
	}
	h.mu.Unlock()
	resp, err = c.Client.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: plan, Actor: "alice"})
	if err != nil || resp.GetProgress().GetState() != "running" {
		t.Fatalf("start: %v %v", resp, err)
	}
	if _, err := c.Client.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: planNamed("r9")}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a second rollout while one runs: %v", err)
	}
	go func() {
		time.Sleep(100 * time.Millisecond) // the watch below is subscribed
		close(hold)
	}()
	seen := watch(t, c)
	h.mu.Lock()
	h.gate = nil
	h.mu.Unlock()
	last := seen[len(seen)-1]
	if last.GetState() != "completed" || last.GetStep() != 4 || len(seen) < 3 {
		t.Fatalf("watched %d updates, last %v", len(seen), last)
	}
	for _, s := range last.GetSteps() {
		if s.GetState() != "done" || len(s.GetProbes()) != 4 {
			t.Fatalf("step %v", s)
		}
	}
	want := "vm-10.0.0.5 r1.5001.10.0.0.6 r1.5001 r1.5002.10.0.1.6 r1.5002"
	if got := strings.Join(ruleNames(t, c), " "); got != want {
		t.Fatalf("rules %s, want %s", got, want)
	}
	// The history holds the rollout's changes (cutovers by the rollout) and
	// its decisions (records): started, each step passed, completed.
	var ops []string
	var lastChange *graygwv1.Event
	for deadline := time.Now().Add(5 * time.Second); ; {
		hist, _ := c.Client.History(ctx(t), &graygwv1.HistoryRequest{Limit: 20})
		ops, lastChange = nil, nil
		for _, ev := range hist.GetEvents() {
			if !ev.GetRecord() {
				if lastChange == nil {
					lastChange = ev
				}
				continue
			}
			if strings.HasPrefix(ev.GetOperation(), "rollout-") {
				ops = append([]string{ev.GetOperation()}, ops...)
			}
		}
		if len(ops) > 0 && ops[len(ops)-1] == "rollout-completed" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if lastChange.GetOperation() != "cutover" || !strings.Contains(lastChange.GetActor(), "rollout r1 (started by alice") {
		t.Fatalf("last change: %v", lastChange)
	}
	if got := strings.Join(ops, " "); got != "rollout-started rollout-step-passed rollout-step-passed rollout-step-passed rollout-step-passed rollout-completed" {
		t.Fatalf("rollout records in the history: %s", got)
	}
	for _, ip := range h.vips {
		if ip != netip.MustParseAddr("10.255.0.1") {
			t.Fatalf("probed through %v", ip)
		}
	}

	// A broken gray backend: the first step fails its probes and is rolled back.
	if _, err := c.Client.Rollback(ctx(t), &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_STEP, Options: opts("t")}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"r1.5002", "r1.5002.10.0.1.6", "r1.5001", "r1.5001.10.0.0.6"} {
		c.Client.Rollback(ctx(t), &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_RULE, Rule: r, Options: opts("t")})
	}
	h.setBroken("gray-1", true)
	resp, err = c.Client.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: planNamed("r2")})
	if err != nil || resp.GetProgress() == nil {
		t.Fatalf("start r2: %v %v", resp, err)
	}
	seen = watch(t, c)
	last = seen[len(seen)-1]
	if last.GetState() != "failed" || last.GetStep() != 1 || last.GetSteps()[0].GetState() != "rolled-back" ||
		!strings.Contains(last.GetError(), "step 1 (vm 5001/10.0.0.6)") || !strings.Contains(last.GetError(), "rolled back") {
		t.Fatalf("broken gray: %v", last)
	}
	if got := strings.Join(ruleNames(t, c), " "); got != "vm-10.0.0.5" {
		t.Fatalf("rules after the failed step: %s", got)
	}
	after := last.GetSteps()[0].GetAfterRollback()
	for _, r := range after {
		if r.GetStatus() != "ok" {
			t.Fatalf("after the rollback: %v", r)
		}
	}
	h.setBroken("gray-1", false)
	if _, err := c.Client.RolloutAbort(ctx(t), &graygwv1.RolloutActionRequest{}); err != nil {
		t.Fatal(err)
	}
	watch(t, c)

	// A restart in the middle of step 2: the status names the step; resume
	// redoes it and completes.
	release := make(chan struct{})
	reached := make(chan struct{})
	var once sync.Once
	h.mu.Lock()
	base := h.runs
	h.gate = func(n int) {
		if n == base+3 { // precheck, step 1's probes, then step 2's
			once.Do(func() { close(reached) })
			<-release
		}
	}
	h.mu.Unlock()
	resp, err = c.Client.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: planNamed("r3")})
	if err != nil || resp.GetProgress() == nil {
		t.Fatalf("start r3: %v %v", resp, err)
	}
	select {
	case <-reached:
	case <-time.After(30 * time.Second):
		t.Fatal("step 2's probes never ran")
	}
	stopped := make(chan struct{})
	go func() { c.Stop(); close(stopped) }()
	time.Sleep(100 * time.Millisecond)
	close(release)
	<-stopped
	h.mu.Lock()
	h.gate = nil
	h.mu.Unlock()
	c = startControllerWith(t, ctlOpts{dir: dir, probe: h.host()})
	st, err := c.Client.RolloutStatus(ctx(t), &graygwv1.RolloutStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	p := st.GetProgress()
	if p.GetState() != "paused" || p.GetStep() != 2 ||
		!strings.Contains(p.GetMessage(), "controller restarted during step 2 of 4 (vni 5001, probing)") {
		t.Fatalf("after the restart: %v", p)
	}
	if _, err := c.Client.RolloutResume(ctx(t), &graygwv1.RolloutActionRequest{}); err != nil {
		t.Fatal(err)
	}
	seen = watch(t, c)
	if last := seen[len(seen)-1]; last.GetState() != "completed" {
		t.Fatalf("resumed: %v", last)
	}
	if got := strings.Join(ruleNames(t, c), " "); got != "vm-10.0.0.5 r3.5001.10.0.0.6 r3.5001 r3.5002.10.0.1.6 r3.5002" {
		t.Fatalf("rules after the resumed rollout: %s", got)
	}

	// Pause during step 1: the rollout stops after it; resume goes on.
	if _, err := c.Client.Rollback(ctx(t), &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_ALL, Options: opts("t")}); err != nil {
		t.Fatal(err)
	}
	release = make(chan struct{})
	reached = make(chan struct{})
	once = sync.Once{}
	h.mu.Lock()
	base = h.runs
	h.gate = func(n int) {
		if n == base+2 { // the precheck, then step 1's probes
			once.Do(func() { close(reached) })
			<-release
		}
	}
	h.mu.Unlock()
	if _, err := c.Client.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: planNamed("r4")}); err != nil {
		t.Fatal(err)
	}
	<-reached
	pp, err := c.Client.RolloutPause(ctx(t), &graygwv1.RolloutActionRequest{})
	if err != nil || !pp.GetProgress().GetPauseRequested() || pp.GetProgress().GetState() != "running" {
		t.Fatalf("pause: %v %v", pp, err)
	}
	close(release)
	seen = watch(t, c)
	if last := seen[len(seen)-1]; last.GetState() != "paused" || last.GetStep() != 1 || last.GetSteps()[0].GetState() != "done" ||
		!strings.Contains(last.GetMessage(), "paused before step 2 of 4") {
		t.Fatalf("paused: %v", last)
	}
	if _, err := c.Client.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: planNamed("r5")}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("a start while one is paused: %v", err)
	}
	if _, err := c.Client.RolloutResume(ctx(t), &graygwv1.RolloutActionRequest{}); err != nil {
		t.Fatal(err)
	}
	if seen = watch(t, c); seen[len(seen)-1].GetState() != "completed" {
		t.Fatalf("resumed after the pause: %v", seen[len(seen)-1])
	}
	if _, err := c.Client.RolloutResume(ctx(t), &graygwv1.RolloutActionRequest{}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("resume of a completed rollout: %v", err)
	}
}

// TestProbeAndRolloutWithoutProbeHost: a controller without a probe host says
// so; status still answers.
func TestProbeAndRolloutWithoutProbeHost(t *testing.T) {
	c := startController(t)
	if _, err := c.Client.Probe(ctx(t), &graygwv1.ProbeRequest{Targets: []*graygwv1.ProbeTarget{{Vni: 1, Vm: "10.0.0.1", Router: "10.0.0.2"}}}); status.Code(err) != codes.Unimplemented ||
		!strings.Contains(err.Error(), "no probe host") {
		t.Fatalf("Probe: %v", err)
	}
	if _, err := c.Client.RolloutStart(ctx(t), &graygwv1.RolloutStartRequest{PlanYaml: plan}); status.Code(err) != codes.Unimplemented ||
		!strings.Contains(err.Error(), "probe: section") {
		t.Fatalf("RolloutStart: %v", err)
	}
	if _, err := c.Client.RolloutStatus(ctx(t), &graygwv1.RolloutStatusRequest{}); status.Code(err) != codes.NotFound {
		t.Fatalf("RolloutStatus: %v", err)
	}
}
