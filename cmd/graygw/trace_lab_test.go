package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/agent/xdp"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/probe"
	"github.com/graygw/graygw/controller/probe/probetest"
	"github.com/graygw/graygw/internal/lab/labtest"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/topo"
)

// TestTraceProbeInTheLab runs 'graygw trace --probe' through the controller
// (its probe host the hypervisor's namespace) and a real agent on the lab's
// XDP gateway: the moved VM's echo requests are answered by the gray backend
// the trace gives, the other VM's by base; with the gray backend broken for
// the VNI the probe goes unanswered and the trace exits 4.
func TestTraceProbeInTheLab(t *testing.T) {
	l := labtest.Build(t, "network namespaces, XDP and AF_PACKET", func() (*probetest.Lab, error) { return probetest.New("ggtr", nil) })
	ag := stack.StartAgent(t, stack.AgentConfig{Server: server.Config{Dataplane: xdp.New(l.DP)}})
	host := &probe.Host{NetNS: l.Topo.HV, Interface: "h0", Source: topo.HVAddr, GatewayMAC: l.Topo.PortMAC[topo.PortHV], RouterMAC: topo.RouterMAC}
	dir := t.TempDir()
	sock := stack.StartController(t, stack.Config{Dir: dir, Service: service.Config{Probe: host}}).Socket
	g := func(args ...string) (int, string, string) {
		t.Helper()
		return api(t, "unix://"+sock, args...)
	}
	doc := l.IntentYAML("  - {name: vm-1-5, match: {vip: vpc-router, vni: 5001, src: 192.168.1.5}, pool: gray-router}\n")
	path := filepath.Join(dir, "intent.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(doc, "127.0.0.1:9559", ag.Addr, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := g("apply", "-f", path, "--wait"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, stderr)
	}
	for _, tc := range []struct{ vm, rule, backend string }{
		{"192.168.1.5", "* vm-1-5", "gray-1"},
		{"192.168.1.6", "pool      base-router (the VIP's default pool)", "base-1"},
	} {
		code, out, stderr := g("trace", "--vni", "5001", "--flow", "icmp/"+tc.vm+"/192.168.1.1", "--probe", "--count", "2")
		if code != 0 || !strings.Contains(out, tc.rule) || !strings.Contains(out, "backend   "+tc.backend) ||
			!strings.Contains(out, "answered, by "+tc.backend+": the backend the trace gives") {
			t.Errorf("trace --probe %s: exit %d\n%s%s", tc.vm, code, out, stderr)
		}
	}
	if err := l.SetBackendVNI(true, 5001, false); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := g("trace", "--vni", "5001", "--flow", "icmp/192.168.1.5/192.168.1.1", "--probe", "--count", "2")
	if code != ExitFailed || !strings.Contains(out, "by nobody: NOT the backend the trace gives (gray-1)") || !strings.Contains(stderr, "the probe was not answered") {
		t.Errorf("trace --probe with gray broken: exit %d\n%s%s", code, out, stderr)
	}
}
