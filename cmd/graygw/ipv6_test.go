package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/server"
	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent/intenttest"
	"github.com/graygw/graygw/internal/stack"
)

// An IPv6 VIP's route shows as its /128 in the BGP view, an IPv4 one as its
// /32.
func TestBGPViewIPv6Route(t *testing.T) {
	st := bgpStatusOf(&graygwv1.BGPStatusResponse{Announced: []*graygwv1.BGPPath{
		{Vip: "10.255.0.1", VipName: "v4", NextHop: "10.1.0.1", Gateway: "gw1"},
		{Vip: "2001:db8:ff::1", VipName: "v6", NextHop: "2001:db8:1::1", Gateway: "gw1"}}})
	var got []string
	for _, r := range st.Routes {
		got = append(got, r.Prefix)
	}
	if strings.Join(got, " ") != "10.255.0.1/32 2001:db8:ff::1/128" {
		t.Fatalf("routes %v", got)
	}
}

// The hash key of a trace is spaced by field, for either family.
func TestGroupKeyIPv6(t *testing.T) {
	k4 := "001389" + "0000" + "0a000005" + "00000000" + "00" + "0000" + "0000"
	if got := groupKey(k4); got != "001389 0000 0a000005 00000000 00 0000 0000" {
		t.Errorf("IPv4: %s", got)
	}
	k6 := "001389" + "0007" + "20010db8000000000000000000000005" + "20010db8000100000000000000000001" + "06" + "3039" + "0050"
	if got := groupKey(k6); got != "001389 0007 20010db8000000000000000000000005 20010db8000100000000000000000001 06 3039 0050" {
		t.Errorf("IPv6: %s", got)
	}
}

// TestIPv6CutoverAgainstTheController moves an IPv6 VM through the CLI and
// the real controller, whose engine programs the XDP agent's P4Runtime server
// (over an in-memory dataplane): the cutover is applied and read back equal to
// the intent's entries (in sync, nothing to diff), the views show the IPv6
// addresses, the trace of the VM names its rule and a gray backend's IPv6
// underlay, and a rollback of the rule takes it back to base.
func TestIPv6CutoverAgainstTheController(t *testing.T) {
	ctrl, agent := startStack(t)
	d := intenttest.IPv6(intenttest.VPC(agent))
	d.Tenants = []string{"{name: acme, id: 7, vnis: [5001]}"}
	path := writeFile(t, "intent.yaml", d.YAML())
	g := func(args ...string) string { t.Helper(); return mustAPI(t, ctrl, append(args, "--actor", "tester")...) }

	g("apply", "-f", path, "--wait")
	out := g("cutover", "--vm", "5001/2001:db8::5", "--pool", "gray", "--wait")
	if !strings.Contains(out, "rule vm-5001-2001-db8--5") || !strings.Contains(out, "applied as intent version 2") {
		t.Fatalf("cutover: %s", out)
	}
	inSync := func(version uint64) {
		t.Helper()
		var st Status
		if err := json.Unmarshal([]byte(mustAPI(t, ctrl, "status", "-o", "json")), &st); err != nil {
			t.Fatal(err)
		}
		if st.IntentVersion != version || len(st.Gateways) != 1 || !st.Gateways[0].InSync {
			t.Fatalf("status: %+v", st)
		}
		if out := mustAPI(t, ctrl, "diff"); !strings.Contains(out, "gw1: 0 inserts, 0 modifies, 0 deletes") {
			t.Fatalf("the gateway's entries differ from the intent's:\n%s", out)
		}
	}
	inSync(2)

	var rules []Rule
	if err := json.Unmarshal([]byte(mustAPI(t, ctrl, "get", "--rules", "-o", "json")), &rules); err != nil {
		t.Fatal(err)
	}
	if len(rules) != 1 || rules[0].Match != "vni=5001 src=2001:db8::5" || rules[0].Tier != "vm" || rules[0].Priority != 5152 {
		t.Fatalf("rules %+v", rules)
	}
	if y := mustAPI(t, ctrl, "get", "-o", "yaml"); !strings.Contains(y, "2001:db8::5") || !strings.Contains(y, "2001:db8:ff::1") {
		t.Errorf("get -o yaml lacks the IPv6 addresses:\n%s", y)
	}

	var tr TraceReport
	if err := json.Unmarshal([]byte(mustAPI(t, ctrl, "trace", "--vm", "5001/2001:db8::5", "-o", "json")), &tr); err != nil {
		t.Fatal(err)
	}
	if len(tr.Gateways) != 1 || len(tr.Gateways[0].VIPs) != 1 {
		t.Fatalf("trace %+v", tr)
	}
	p := tr.Gateways[0].VIPs[0]
	if p.Verdict != "forward" || p.Rule != "vm-5001-2001-db8--5" || p.Backend != "gray-1" || p.Rewrite == nil ||
		p.Rewrite.OuterDst != "2001:db8:3::21" || !p.AgreesWithIntent {
		t.Fatalf("trace of the moved VM: %+v", p)
	}

	// A mirror of an IPv6 VM is refused, saying why; nothing changes.
	code, mout, mstderr := api(t, ctrl, "mirror", "--vm", "5001/2001:db8::6", "--pool", "gray", "--actor", "tester")
	if code != ExitRefused || !strings.Contains(mout+mstderr, "not supported on an IPv6 rule") {
		t.Fatalf("mirror of an IPv6 VM: exit %d\n%s%s", code, mout, mstderr)
	}
	inSync(2)

	out = g("rollback", "--rule", "vm-5001-2001-db8--5", "--wait")
	if !strings.Contains(out, "removed rules: vm-5001-2001-db8--5") {
		t.Fatalf("rollback: %s", out)
	}
	inSync(3)
	var after TraceReport
	if err := json.Unmarshal([]byte(mustAPI(t, ctrl, "trace", "--vm", "5001/2001:db8::5", "-o", "json")), &after); err != nil {
		t.Fatal(err)
	}
	if p := after.Gateways[0].VIPs[0]; p.Rule != "" || p.Backend != "base-1" || p.Rewrite == nil || p.Rewrite.OuterDst != "2001:db8:2::11" {
		t.Fatalf("trace after the rollback: %+v", p)
	}
}

// TestIPv6MaskBoundCheckedBeforeCommit: gray_rules_v6's tuple-space bound on
// the XDP target (32 distinct masks) is checked before the store commit as
// gray_rules' is: 33 IPv6 masks are refused by --dry-run and the API, and
// nothing is stored; 32 are applied.
func TestIPv6MaskBoundCheckedBeforeCommit(t *testing.T) {
	mem := dataplane.NewMemory(dataplane.XDPLimits())
	a := stack.StartAgent(t, stack.AgentConfig{Server: server.Config{Dataplane: mem}})
	c := stack.StartController(t, stack.Config{Engine: engine.Config{
		MaxGrayMasks6: func(string) int { return dataplane.XDPLimits().MaxMasks6 }}})
	ctrl := "unix://" + c.Socket
	text := exampleIntent(t, a.Addr)
	write := func(n int) string {
		var b strings.Builder
		b.WriteString("gray_rules:\n")
		for i := range n {
			fmt.Fprintf(&b, "  - {name: m%d, match: {vip: vpc-router, vni: 5001, src: \"::/%d\"}, pool: gray-router, priority: %d}\n", i, i+1, 1000+i)
		}
		return writeFile(t, "intent.yaml", text+b.String())
	}
	want := "gray_rules_v6: intent needs 33 distinct masks, gateway gw1 holds 32"
	for _, args := range [][]string{{"apply", "-f", write(33), "--dry-run"}, {"apply", "-f", write(33)}} {
		code, out, stderr := api(t, ctrl, append(args, "--actor", "tester")...)
		if code != ExitError || !strings.Contains(out+stderr, want) {
			t.Fatalf("%v: exit %d, want %d with %q:\n%s%s", args, code, ExitError, want, out, stderr)
		}
	}
	if _, err := c.Store.Current(context.Background()); err == nil {
		t.Fatal("the refused intent was stored")
	}
	mustAPI(t, ctrl, "apply", "-f", write(32), "--wait", "--actor", "tester")
	if n := len(mem.State().GrayRulesV6); n != 32 {
		t.Fatalf("the gateway holds %d IPv6 gray rules, want 32", n)
	}
}
