package main

import (
	"strings"
	"testing"
)

// TestTraceProbeInTheLab runs 'graygw trace --probe' through the controller
// (its probe host the hypervisor's namespace) and a real agent on the lab's
// XDP gateway: the moved VM's echo requests are answered by the gray backend
// the trace gives, the other VM's by base; with the gray backend broken for
// the VNI the probe goes unanswered and the trace exits 4.
func TestTraceProbeInTheLab(t *testing.T) {
	ls := startLabStack(t, "ggtr")
	l := ls.Lab
	g := ls.cli(t)
	path := ls.intentFile(t, "  - {name: vm-1-5, match: {vip: vpc-router, vni: 5001, src: 192.168.1.5}, pool: gray-router}\n")
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
