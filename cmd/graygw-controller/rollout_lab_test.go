package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/agent/xdp"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/topo"
)

// rolloutLab is the topo lab with graygw's XDP program on the gateway, driven
// by a real agent (P4Runtime server over the XDP dataplane), and the config of
// a controller whose probe host is the hypervisor's namespace.
type rolloutLab struct {
	l     *probetest.Lab
	args  []string
	agent string // the agent's P4Runtime address
}

func newRolloutLab(t *testing.T) *rolloutLab { return newRolloutLabWith(t, "ggro", nil, "") }

// newRolloutLabWith builds the lab with vpcs (topo.DefaultVPCs when nil) and
// appends extra (YAML sections, e.g. the vpcs inventory) to its intent.
func newRolloutLabWith(t *testing.T, prefix string, vpcs []topo.VPC, extra string) *rolloutLab {
	return newRolloutLabAgent(t, prefix, vpcs, extra, nil)
}

// newRolloutLabAgent is newRolloutLabWith with the agent's XDP dataplane
// wrapped by wrap (when not nil) and opts added to its gRPC server.
func newRolloutLabAgent(t *testing.T, prefix string, vpcs []topo.VPC, extra string, wrap func(dataplane.Dataplane) dataplane.Dataplane,
	opts ...grpc.ServerOption) *rolloutLab {
	t.Helper()
	l := labtest.Build(t, "network namespaces, XDP and AF_PACKET", func() (*probetest.Lab, error) { return probetest.New(prefix, vpcs) })
	var dp dataplane.Dataplane = xdp.New(l.DP)
	if wrap != nil {
		dp = wrap(dp)
	}
	ag := stack.StartAgent(t, stack.AgentConfig{Server: server.Config{Dataplane: dp},
		ServerOptions: append([]grpc.ServerOption{grpc.MaxRecvMsgSize(64 << 20)}, opts...)})

	dir := t.TempDir()
	in := filepath.Join(dir, "intent.yaml")
	if err := os.WriteFile(in, []byte(strings.Replace(l.IntentYAML(""), "127.0.0.1:9559", ag.Addr, 1)+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "controller.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`probe:
  netns: %s
  interface: h0
  source: %s
  gateway_mac: "%s"
  router_mac: "%s"
`, l.Topo.HV, topo.HVAddr, l.Topo.PortMAC[topo.PortHV], topo.RouterMAC)), 0o600); err != nil {
		t.Fatal(err)
	}
	return &rolloutLab{l: l, agent: ag.Addr, args: []string{"--config", cfg, "--intent", in, "--store", filepath.Join(dir, "c.db"),
		"--listen-unix", filepath.Join(dir, "c.sock")}}
}

// flag is the value of the controller argument name (--intent, --config).
func (rl *rolloutLab) flag(t *testing.T, name string) string {
	t.Helper()
	for i, a := range rl.args {
		if a == name {
			return rl.args[i+1]
		}
	}
	t.Fatalf("rollout lab args %v lack %s", rl.args, name)
	return ""
}

// plan is a rollout over the lab's VPCs: per VPC its first VM, then the VNI.
func (rl *rolloutLab) plan(name, settle string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: %s\nvip: %s\npool: %s\nbase_pool: %s\nindividual_vms: 1\n", name, probetest.VIPName,
		probetest.GrayPool, probetest.BasePool)
	fmt.Fprintf(&b, "probe: {count: 3, interval: 10ms, timeout: 500ms, settle: %s}\nvpcs:\n", settle)
	for _, v := range rl.l.VPCs() {
		var vms []string
		for _, vm := range v.VMs {
			vms = append(vms, vm.String())
		}
		fmt.Fprintf(&b, "  - {vni: %d, router: %s, router_mac: \"%s\", vms: [%s]}\n", v.VNI, v.Router, v.RouterMAC, strings.Join(vms, ", "))
	}
	return b.String()
}

// follow watches the rollout until its stream ends and returns the last progress.
func follow(t *testing.T, c graygwv1.ControllerClient) *graygwv1.RolloutProgress {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := c.RolloutWatch(ctx, &graygwv1.RolloutWatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var last *graygwv1.RolloutProgress
	for {
		p, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return last
		}
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		t.Logf("  %s step %d/%d: %s", p.GetState(), p.GetStep(), p.GetTotal(), p.GetMessage())
		last = p
	}
}

func rules(t *testing.T, c graygwv1.ControllerClient) string {
	t.Helper()
	st, err := c.Status(context.Background(), &graygwv1.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, v := range st.GetVnis() {
		for _, vip := range v.GetVips() {
			for _, s := range vip.GetSelectors() {
				out = append(out, s.GetRule())
			}
		}
	}
	return strings.Join(out, " ")
}

// TestRolloutInTheLab runs rollouts through the daemon's gRPC API over the
// lab: the controller drives a real agent (XDP dataplane) and probes from the
// hypervisor's namespace. A rollout across two VPCs completes with every VM
// answered by gray; a controller stopped in the middle of step 2 reports that
// step after its restart, and resume completes the rollout; with the gray
// backend broken for VNI 5001 the first step fails its probes and is rolled
// back (every VM answered by base again). (The broken backend comes last: the
// lab cannot repair it, bringing its VXLAN device back up loses its
// neighbour entries.)
func TestRolloutInTheLab(t *testing.T) {
	rl := newRolloutLab(t)
	r := startController(t, rl.args...)
	c := r.client(t)
	waitInSync(t, c)
	ctx := context.Background()

	// A dry run changes nothing.
	resp, err := c.RolloutStart(ctx, &graygwv1.RolloutStartRequest{PlanYaml: rl.plan("r0", "0s"), DryRun: true})
	if err != nil || resp.GetProgress().GetState() != "dry-run" || len(resp.GetProgress().GetPrecheck()) != 6 {
		t.Fatalf("dry run: %v %v", resp, err)
	}

	start := time.Now()
	resp, err = c.RolloutStart(ctx, &graygwv1.RolloutStartRequest{PlanYaml: rl.plan("r1", "0s"), Actor: "test"})
	if err != nil || len(resp.GetProblems()) > 0 || resp.GetPrecheckFailed() != "" {
		t.Fatalf("start: %v %v", resp, err)
	}
	last := follow(t, c)
	t.Logf("rollout r1: %s in %s", last.GetState(), time.Since(start).Round(time.Millisecond))
	if last.GetState() != "completed" || last.GetStep() != 4 {
		t.Fatalf("r1: %v", last)
	}
	pr, err := c.Probe(ctx, &graygwv1.ProbeRequest{PlanYaml: rl.plan("r1", "0s")})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range pr.GetResults() {
		if res.GetStatus() != "ok" || res.GetTarget().GetExpectPool() != probetest.GrayPool || res.GetAnswers()[0].GetBackend() != "gray-1" {
			t.Fatalf("after r1: %v", res)
		}
	}
	if _, err := c.Rollback(ctx, &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_ALL, Options: &graygwv1.ChangeOptions{Wait: true}}); err != nil {
		t.Fatal(err)
	}

	// Stopped in the middle of step 2 (waiting for its probes): the restarted
	// controller names that step; resume redoes it and completes.
	if resp, err := c.RolloutStart(ctx, &graygwv1.RolloutStartRequest{PlanYaml: rl.plan("r3", "3s")}); err != nil || resp.GetProgress() == nil {
		t.Fatalf("start r3: %v %v", resp, err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := c.RolloutStatus(ctx, &graygwv1.RolloutStatusRequest{})
		if err == nil && st.GetProgress().GetStep() == 2 && st.GetProgress().GetSteps()[1].GetState() == "probing" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("step 2 never probing: %v %v", st, err)
		}
	}
	r.stop(t, 0)
	r = startController(t, rl.args...)
	c = r.client(t)
	st, err := c.RolloutStatus(ctx, &graygwv1.RolloutStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	p := st.GetProgress()
	t.Logf("after the restart: %s: %s", p.GetState(), p.GetMessage())
	if p.GetState() != "paused" || p.GetStep() != 2 || !strings.Contains(p.GetMessage(), "controller restarted during step 2 of 4 (vni 5001, probing)") {
		t.Fatalf("status after the restart: %v", p)
	}
	waitInSync(t, c)
	if _, err := c.RolloutResume(ctx, &graygwv1.RolloutActionRequest{}); err != nil {
		t.Fatal(err)
	}
	if last = follow(t, c); last.GetState() != "completed" {
		t.Fatalf("resumed r3: %v", last)
	}
	if _, err := c.Rollback(ctx, &graygwv1.RollbackRequest{Mode: graygwv1.RollbackRequest_ALL, Options: &graygwv1.ChangeOptions{Wait: true}}); err != nil {
		t.Fatal(err)
	}

	// The gray backend broken for VNI 5001: step 1 fails and is rolled back.
	if err := rl.l.SetBackendVNI(true, 5001, false); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if resp, err := c.RolloutStart(ctx, &graygwv1.RolloutStartRequest{PlanYaml: rl.plan("r2", "0s")}); err != nil || resp.GetProgress() == nil {
		t.Fatalf("start r2: %v %v", resp, err)
	}
	last = follow(t, c)
	t.Logf("rollout r2: %s in %s: %s", last.GetState(), time.Since(start).Round(time.Millisecond), last.GetError())
	s1 := last.GetSteps()[0]
	if last.GetState() != "failed" || last.GetStep() != 1 || s1.GetState() != "rolled-back" ||
		!strings.Contains(last.GetError(), "5001/192.168.1.5 lost") {
		t.Fatalf("r2: %v", last)
	}
	for _, res := range s1.GetAfterRollback() {
		if res.GetStatus() != "ok" || res.GetAnswers()[0].GetBackend() != "base-1" {
			t.Fatalf("after the rollback: %v", res)
		}
	}
	if got := rules(t, c); got != "" {
		t.Fatalf("rules after the failed step: %q", got)
	}

}

// TestRolloutWatchInTheLab: a gray side that fails only after a while, in the
// lab. The plan gates every step on the gateway's real counters (the step's
// rule matched packets, no NO_BACKEND drop) and watches after the last step
// with watch_rollback. Every step passes its gates; once the rollout watches,
// the gray backend stops answering VNI 5001: the watch sees it, every step is
// rolled back (the rollout ends aborted) and every VM is answered by base again.
func TestRolloutWatchInTheLab(t *testing.T) {
	rl := newRolloutLabWith(t, "ggrw", nil, "")
	r := startController(t, rl.args...)
	c := r.client(t)
	waitInSync(t, c)
	ctx := context.Background()

	plan := rl.plan("w1", "0s") + "gates: {rule_traffic: true, no_new_drops: [NO_BACKEND]}\nwatch: 60s\nbake_every: 200ms\nwatch_rollback: true\n"
	if resp, err := c.RolloutStart(ctx, &graygwv1.RolloutStartRequest{PlanYaml: plan}); err != nil || resp.GetProgress() == nil {
		t.Fatalf("start: %v %v", resp, err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := c.RolloutStatus(ctx, &graygwv1.RolloutStatusRequest{})
		if err == nil && strings.HasPrefix(st.GetProgress().GetMessage(), "watching") {
			for _, s := range st.GetProgress().GetSteps() {
				if len(s.GetGates()) != 2 || !s.GetGates()[0].GetOk() || !s.GetGates()[1].GetOk() {
					t.Fatalf("step %d gates %v", s.GetIndex(), s.GetGates())
				}
			}
			t.Logf("watching: %s; step 1 gates: %v", st.GetProgress().GetMessage(), st.GetProgress().GetSteps()[0].GetGates())
			break
		}
		if err == nil && st.GetProgress().GetState() != "running" {
			t.Fatalf("the rollout stopped before its watch: %v", st.GetProgress())
		}
		if time.Now().After(deadline) {
			t.Fatalf("never watching: %v %v", st, err)
		}
	}
	broke := time.Now()
	if err := rl.l.SetBackendVNI(true, 5001, false); err != nil {
		t.Fatal(err)
	}
	last := follow(t, c)
	t.Logf("rollout w1: %s %v after gray broke: %s", last.GetState(), time.Since(broke).Round(time.Millisecond), last.GetError())
	if last.GetState() != "aborted" || !strings.Contains(last.GetError(), "watch: probes failed") || !strings.Contains(last.GetError(), "5001/") {
		t.Fatalf("w1: %v", last)
	}
	if got := rules(t, c); got != "" {
		t.Fatalf("rules after the watch failed: %q", got)
	}
	pr, err := c.Probe(ctx, &graygwv1.ProbeRequest{PlanYaml: rl.plan("w1", "0s")})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range pr.GetResults() {
		if res.GetStatus() != "ok" || res.GetAnswers()[0].GetBackend() != "base-1" {
			t.Fatalf("after the rollback: %v", res)
		}
	}
}
