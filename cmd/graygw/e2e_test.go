package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graygw/graygw/internal/stack"
)

// startStack runs the real controller service (store, engine, gRPC API on a
// unix socket) driving the XDP agent's P4Runtime server over an in-memory
// dataplane, and returns the socket address and the agent's address.
func startStack(t *testing.T) (controller, agent string) {
	t.Helper()
	a := stack.StartAgent(t, stack.AgentConfig{})
	c := stack.StartController(t, stack.Config{})
	return "unix://" + c.Socket, a.Addr
}

// exampleIntent is docs/examples/intent.yaml cut to its first gateway, the
// agent at agent, and without its gray rules.
func exampleIntent(t *testing.T, agent string) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/examples/intent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	text = text[:strings.Index(text, "  - name: gw2")] + "\n" + text[strings.Index(text, "# Anycast VIPs"):strings.Index(text, "gray_rules:")]
	return strings.Replace(text, "127.0.0.1:9559", agent, 1)
}

// writeFile writes text to a new file named name and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// mustAPI runs graygw with args against the controller at addr and returns
// its output; a non-zero exit fails the test.
func mustAPI(t *testing.T, addr string, args ...string) string {
	t.Helper()
	code, out, stderr := api(t, addr, args...)
	if code != 0 {
		t.Fatalf("graygw %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

// TestCLIAgainstTheController drives the real controller through the CLI:
// apply, cutover per VM and per VNI, refusals, status, rules, counters,
// history and rollbacks (by rule, step and all).
func TestCLIAgainstTheController(t *testing.T) {
	ctrl, agent := startStack(t)
	path := writeFile(t, "intent.yaml", exampleIntent(t, agent))
	g := func(args ...string) (int, string, string) {
		t.Helper()
		return api(t, ctrl, append(args, "--actor", "tester")...)
	}
	gr := func(args ...string) (int, string, string) { // read-only commands take no --actor
		t.Helper()
		return api(t, ctrl, args...)
	}
	expect := func(code int, out, stderr string, want int, contains ...string) {
		t.Helper()
		if code != want {
			t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, want, out, stderr)
		}
		for _, c := range contains {
			if !strings.Contains(out+stderr, c) {
				t.Errorf("output lacks %q\nstdout:\n%s\nstderr:\n%s", c, out, stderr)
			}
		}
	}

	code, out, stderr := g("apply", "-f", path, "--dry-run")
	expect(code, out, stderr, 0, "dry run: nothing applied", "gw1:", "backend_select")
	code, out, stderr = g("apply", "-f", path, "--wait")
	expect(code, out, stderr, 0, "applied as intent version 1")

	code, out, stderr = g("cutover", "--vm", "5001/192.168.1.5", "--pool", "gray-router", "--vip", "vpc-router", "--dry-run")
	expect(code, out, stderr, 0, "dry run: nothing applied", "gray_rules")
	code, out, stderr = g("cutover", "--vm", "5001/192.168.1.5", "--pool", "gray-router", "--vip", "vpc-router", "--wait")
	expect(code, out, stderr, 0, "applied as intent version 2")
	code, out, stderr = g("cutover", "--vni", "5002", "--pool", "gray-router", "--vip", "vpc-router", "--wait")
	expect(code, out, stderr, 0, "applied as intent version 3")

	// Refusals: exit 3, with the reason, and nothing stored.
	code, out, stderr = g("cutover", "--vni", "5002", "--pool", "no-such-pool", "--vip", "vpc-router")
	expect(code, out, stderr, ExitRefused, "no-such-pool")
	// The issue: a VNI no tenant owns was applied although this page says it is
	// refused; a negative --wait-timeout was accepted.
	code, out, stderr = g("cutover", "--vni", "7777", "--pool", "gray-router", "--vip", "vpc-router")
	expect(code, out, stderr, ExitRefused, "VNI 7777 belongs to no tenant")
	code, out, stderr = g("cutover", "--vni", "5002", "--pool", "gray-router", "--vip", "vpc-router", "--wait", "--wait-timeout", "-5s")
	expect(code, out, stderr, ExitUsage, "--wait-timeout")
	code, out, stderr = g("cutover", "--vni", "5001", "--flow", "tcp/192.168.1.5:1000/192.168.1.1", "--pool", "gray-router", "--vip", "vpc-router", "--name", "f1")
	expect(code, out, stderr, 0, "applied as intent version 4")
	code, out, stderr = g("cutover", "--vni", "5001", "--flow", "tcp/192.168.1.5/192.168.1.1:80", "--pool", "gray-router", "--vip", "vpc-router", "--name", "f2")
	expect(code, out, stderr, ExitRefused, "overlap")
	code, out, stderr = g("cutover", "--vni", "5001", "--flow", "tcp/*/192.168.1.1:80", "--pool", "gray-router")
	expect(code, out, stderr, ExitUsage, "both addresses")

	code, out, stderr = gr("status", "-o", "json")
	var st Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status json: %v\n%s\n%s", err, out, stderr)
	}
	if st.IntentVersion != 4 || len(st.Gateways) != 1 || !st.Gateways[0].InSync {
		t.Errorf("status: %+v", st)
	}
	states := map[string]string{}
	for _, v := range st.VNIs {
		states[fmt.Sprint(v.VNI)] = v.State
		for _, p := range v.VIPs {
			states[fmt.Sprintf("%d/%s", v.VNI, p.VIP)] = p.State
		}
	}
	// 5002 is fully gray on vpc-router, and still base on the NAT VIP.
	if states["5001/vpc-router"] != "partly-gray" || states["5002/vpc-router"] != "fully-gray" || states["5002/nat"] != "base" || states["5002"] != "partly-gray" {
		t.Errorf("VNI states %v", states)
	}
	code, out, stderr = gr("get", "--rules")
	expect(code, out, stderr, 0, "192.168.1.5", "vni=5002", "gray-router")
	code, out, stderr = gr("counters", "--kind", "drop")
	expect(code, out, stderr, 0, "GATEWAY")
	code, out, stderr = gr("history", "--limit", "10")
	expect(code, out, stderr, 0, "tester", "cutover", "apply")

	code, out, stderr = g("rollback", "--rule", "f1", "--wait")
	expect(code, out, stderr, 0, "removed rules: f1", "applied as intent version 5")
	code, out, stderr = g("rollback", "--rule", "f1")
	expect(code, out, stderr, ExitRefused, `no gray rule "f1"`)
	code, out, stderr = g("rollback", "--step", "--wait") // brings f1 back
	expect(code, out, stderr, 0, "applied as intent version 6")
	code, out, stderr = gr("get", "--rules")
	expect(code, out, stderr, 0, "f1")
	code, out, stderr = g("rollback", "--all", "--wait")
	expect(code, out, stderr, 0, "removed rules:")
	code, out, stderr = gr("status")
	expect(code, out, stderr, 0, "intent version 7")
	if strings.Contains(out, "-gray") {
		t.Errorf("gray VNIs left after rollback --all:\n%s", out)
	}
	code, out, stderr = gr("diff")
	expect(code, out, stderr, 0, "gw1: 0 inserts, 0 modifies, 0 deletes")
}
