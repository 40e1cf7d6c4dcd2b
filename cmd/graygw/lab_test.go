package main

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/agent/xdp"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/topo"
)

// labStack is the probe lab with an agent over its XDP gateway and the
// controller, whose probe host is the hypervisor's namespace.
type labStack struct {
	*probetest.Lab
	agent *stack.Agent
	dir   string // the controller's directory, where the test's files go too
	ctrl  string // --controller
}

// startLabStack builds the lab (namespaces prefixed prefix) and starts the
// agent and the controller on it.
func startLabStack(t *testing.T, prefix string) *labStack {
	t.Helper()
	return startLabStackVPCs(t, prefix, nil)
}

// startLabStackVPCs is startLabStack with the lab's VPCs (topo.DefaultVPCs
// when nil).
func startLabStackVPCs(t *testing.T, prefix string, vpcs []topo.VPC) *labStack {
	t.Helper()
	l := labtest.Build(t, "network namespaces, XDP and AF_PACKET", func() (*probetest.Lab, error) { return probetest.New(prefix, vpcs) })
	ag := stack.StartAgent(t, stack.AgentConfig{Server: server.Config{Dataplane: xdp.New(l.DP)}})
	host := &probe.Host{NetNS: l.Topo.HV, Interface: "h0", Source: topo.HVAddr, GatewayMAC: l.Topo.PortMAC[topo.PortHV], RouterMAC: topo.RouterMAC}
	if slices.ContainsFunc(vpcs, func(v topo.VPC) bool { return v.Underlay6 }) {
		// Probes to an IPv6 VIP too: h0's address of the VIP's family.
		host.Source = netip.Addr{}
	}
	dir := t.TempDir()
	sock := stack.StartController(t, stack.Config{Dir: dir, Service: service.Config{Probe: host}}).Socket
	return &labStack{Lab: l, agent: ag, dir: dir, ctrl: "unix://" + sock}
}

// cli runs graygw against the stack's controller: the exit code, stdout and
// stderr.
func (s *labStack) cli(t *testing.T) func(args ...string) (int, string, string) {
	return func(args ...string) (int, string, string) {
		t.Helper()
		return api(t, s.ctrl, args...)
	}
}

// intentFile writes the lab's intent with rules (gray_rules items), the
// agent as its gateway, and returns its path.
func (s *labStack) intentFile(t *testing.T, rules string) string {
	t.Helper()
	path := filepath.Join(s.dir, "intent.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(s.IntentYAML(rules), "127.0.0.1:9559", s.agent.Addr, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLocalProbeInTheLab runs 'graygw probe --local' from the hypervisor's
// namespace through the XDP gateway: the VM the intent moves is answered by the
// gray backend, the other by base; a wrong --expect exits 4.
func TestLocalProbeInTheLab(t *testing.T) {
	l := labtest.Build(t, "network namespaces, XDP and AF_PACKET", func() (*probetest.Lab, error) { return probetest.New("ggcli", nil) })
	doc := l.IntentYAML("  - {name: vm-1-5, match: {vip: vpc-router, vni: 5001, src: 192.168.1.5}, pool: gray-router}\n")
	if _, _, err := l.ApplyYAML(doc); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "intent.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	g := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		base := []string{"probe", "--local", "-f", path, "--netns", l.Topo.HV, "--iface", "h0", "--router-mac", topo.RouterMAC,
			"--vm", "5001/192.168.1.5", "--vm", "5001/192.168.1.6", "--router", "192.168.1.1", "--interval", "10ms"}
		code := run(context.Background(), append(base, args...), &out, &errb, dial)
		return code, out.String(), errb.String()
	}
	code, out, stderr := g()
	lines := strings.Split(out, "\n")
	if code != 0 || len(lines) < 3 || !strings.Contains(lines[1], "192.168.1.5") || !strings.Contains(lines[1], "gray-1") ||
		!strings.Contains(lines[2], "192.168.1.6") || !strings.Contains(lines[2], "base-1") {
		t.Errorf("exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = g("--expect", "base")
	if code != ExitFailed || !strings.Contains(out, "wrong-backend") || !strings.Contains(stderr, "1 of 2 targets not ok") {
		t.Errorf("--expect base: exit %d\n%s\n%s", code, out, stderr)
	}
}

// TestCLIRolloutInTheLab drives rollouts and probes with the CLI through the
// controller's API (the real service on a unix socket, its probe host the
// hypervisor's namespace) driving a real agent over the XDP gateway of the lab:
// probe --plan, rollout start --dry-run, rollout start --wait to completion,
// status; then with the gray backend broken for VNI 5001 a rollout that fails
// at step 1 (exit 4) and leaves every VM on base.
func TestCLIRolloutInTheLab(t *testing.T) {
	ls := startLabStack(t, "ggclr")
	l, dir := ls.Lab, ls.dir
	g := ls.cli(t)
	expect := func(what string, code int, out, stderr string, want int, contains ...string) {
		t.Helper()
		if code != want {
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, code, want, out, stderr)
		}
		for _, c := range contains {
			if !strings.Contains(out+stderr, c) {
				t.Errorf("%s: output lacks %q\nstdout:\n%s\nstderr:\n%s", what, c, out, stderr)
			}
		}
	}
	intentPath := ls.intentFile(t, "")
	code, out, stderr := g("apply", "-f", intentPath, "--wait")
	expect("apply", code, out, stderr, 0, "applied as intent version 1")

	plan := func(name string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "version: 1\nname: %s\nvip: vpc-router\npool: gray-router\nbase_pool: base-router\nprobe: {count: 3, interval: 10ms, timeout: 500ms}\nvpcs:\n", name)
		for _, v := range l.VPCs() {
			var vms []string
			for _, vm := range v.VMs {
				vms = append(vms, vm.String())
			}
			fmt.Fprintf(&b, "  - {vni: %d, router: %s, router_mac: \"%s\", vms: [%s]}\n", v.VNI, v.Router, v.RouterMAC, strings.Join(vms, ", "))
		}
		path := filepath.Join(dir, name+".yaml")
		os.WriteFile(path, []byte(b.String()), 0o644)
		return path
	}
	p1 := plan("r1")
	code, out, stderr = g("probe", "--plan", p1)
	expect("probe --plan", code, out, stderr, 0, "base-1")
	if strings.Contains(out, "gray-1") {
		t.Errorf("probe before the rollout: gray answers\n%s", out)
	}
	code, out, stderr = g("rollout", "start", "-f", p1, "--dry-run")
	expect("rollout start --dry-run", code, out, stderr, 0, "dry run, 4 steps to pool gray-router", "precheck:", "nothing changed")
	start := time.Now()
	code, out, stderr = g("rollout", "start", "-f", p1, "--wait")
	expect("rollout start --wait", code, out, stderr, 0, "completed  step 4/4", "rollout r1: completed, step 4 of 4")
	t.Logf("graygw rollout start --wait: %s", time.Since(start).Round(time.Millisecond))
	code, out, stderr = g("status")
	expect("status", code, out, stderr, 0, "rollout r1: completed", "fully-gray")
	code, out, stderr = g("probe", "--plan", p1, "--expect", "gray")
	expect("probe --expect gray", code, out, stderr, 0, "gray-1")
	code, out, stderr = g("rollback", "--all", "--wait")
	expect("rollback --all", code, out, stderr, 0, "removed rules:")

	if err := l.SetBackendVNI(true, 5001, false); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = g("rollout", "start", "-f", plan("r2"), "--wait")
	expect("broken gray", code, out, stderr, ExitFailed, "rollout r2 failed at step 1 of 4", "rolled-back", "step 1 probes that failed", "lost")
	code, out, stderr = g("rollout", "status")
	expect("rollout status", code, out, stderr, ExitFailed, "rollout r2: failed, step 1 of 4")
	code, out, stderr = g("probe", "--plan", p1, "--expect", "base")
	expect("probe after the failed rollout", code, out, stderr, 0, "base-1")
}

// TestCLITCPOnlyFailureInTheLab: through the CLI and the controller's API
// over the lab's XDP gateway, a plan that probes TCP 8080 besides ICMP:
// base serves it, gray does not. probe --plan shows each VM's TCP probe
// answered by base-1; the rollout fails its first step on the moved VM's
// refused connection (ICMP still answered by gray-1), rolls it back, exits
// 4, and the history records the failed step with the reason.
func TestCLITCPOnlyFailureInTheLab(t *testing.T) {
	ls := startLabStack(t, "ggcltcp")
	l, dir := ls.Lab, ls.dir
	svc, err := l.ServeTCP(false, 8080)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Stop)
	g := ls.cli(t)
	intentPath := ls.intentFile(t, "")
	if code, out, stderr := g("apply", "-f", intentPath, "--wait"); code != 0 {
		t.Fatalf("apply: %d\n%s%s", code, out, stderr)
	}
	var b strings.Builder
	b.WriteString("version: 1\nname: tcp\nvip: vpc-router\npool: gray-router\nbase_pool: base-router\nprobe: {count: 2, interval: 10ms, timeout: 500ms, tcp: [8080]}\nvpcs:\n")
	for _, v := range l.VPCs() {
		var vms []string
		for _, vm := range v.VMs {
			vms = append(vms, vm.String())
		}
		fmt.Fprintf(&b, "  - {vni: %d, router: %s, router_mac: \"%s\", vms: [%s]}\n", v.VNI, v.Router, v.RouterMAC, strings.Join(vms, ", "))
	}
	plan := filepath.Join(dir, "tcp.yaml")
	os.WriteFile(plan, []byte(b.String()), 0o644)

	code, out, stderr := g("probe", "--plan", plan)
	if code != 0 || strings.Count(out, "tcp/8080  ok") != 6 || strings.Contains(out, "gray-1") {
		t.Errorf("probe --plan: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = g("rollout", "start", "-f", plan, "--wait")
	if code != ExitFailed || !strings.Contains(out+stderr, "rollout tcp failed at step 1") || !strings.Contains(out+stderr, "tcp/8080") ||
		!strings.Contains(out+stderr, "refused") {
		t.Errorf("rollout start --wait: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = g("history", "--limit", "5")
	if code != 0 || !strings.Contains(out, "rollout-step-failed") || !strings.Contains(out, "failed and was rolled back") ||
		!strings.Contains(out, "tcp/8080 refused") {
		t.Errorf("history: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = g("probe", "--plan", plan, "--expect", "base")
	if code != 0 || strings.Contains(out, "gray-1") {
		t.Errorf("probe after the failed rollout: exit %d\n%s%s", code, out, stderr)
	}
}
