package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/internal/stack"
)

// maskRules returns n gray rules of n distinct masks (source prefixes /1../32,
// then destination prefixes, then both), each with its own priority so that
// none overlaps another of equal priority.
func maskRules(n int) string {
	var b strings.Builder
	b.WriteString("gray_rules:\n")
	for i := range n {
		var match string
		switch {
		case i < 32:
			match = fmt.Sprintf("src: 0.0.0.0/%d", i+1)
		case i < 64:
			match = fmt.Sprintf("dst: 0.0.0.0/%d", i-31)
		default:
			match = fmt.Sprintf("src: 0.0.0.0/%d, dst: 0.0.0.0/%d", i-63, i-63)
		}
		fmt.Fprintf(&b, "  - {name: m%d, match: {vip: vpc-router, vni: 5001, %s}, pool: gray-router, priority: %d}\n", i, match, 1000+i)
	}
	return b.String()
}

// TestMaskBoundCheckedBeforeCommit: the intent with 65 distinct
// gray-rule masks passed --dry-run and the capacity check, was committed and sat
// half-applied (64 of 65) against the XDP target's tuple-space bound. The bound
// is now checked with the table sizes: --dry-run and the API refuse it before
// the store commit (RESOURCE_EXHAUSTED, exit 1, as a table overflow is), saying
// what the agent would say; 64 masks pass.
func TestMaskBoundCheckedBeforeCommit(t *testing.T) {
	mem := dataplane.NewMemory(dataplane.XDPLimits()) // the XDP target's limits
	a := stack.StartAgent(t, stack.AgentConfig{Server: server.Config{Dataplane: mem}})
	c := stack.StartController(t, stack.Config{Engine: engine.Config{
		MaxGrayMasks: func(string) int { return dataplane.XDPLimits().MaxMasks }}})
	ctrl := "unix://" + c.Socket
	text := exampleIntent(t, a.Addr)
	write := func(n int) string { return writeFile(t, "intent.yaml", text+maskRules(n)) }
	g := func(args ...string) (int, string) {
		t.Helper()
		code, out, stderr := api(t, ctrl, append(args, "--actor", "tester")...)
		return code, out + stderr
	}
	over := write(65)
	want := "gray_rules: intent needs 65 distinct masks, gateway gw1 holds 64"
	for _, args := range [][]string{{"apply", "-f", over, "--dry-run"}, {"apply", "-f", over}} {
		code, out := g(args...)
		if code != ExitError || !strings.Contains(out, "ResourceExhausted") || !strings.Contains(out, want) || !strings.Contains(out, "64 distinct masks in use (the tuple-space bound)") {
			t.Fatalf("%v: exit %d, want %d with %q:\n%s", args, code, ExitError, want, out)
		}
	}
	if _, err := c.Store.Current(context.Background()); err == nil {
		t.Fatal("the refused intent was stored")
	}
	if code, out := g("apply", "-f", write(64), "--wait"); code != 0 {
		t.Fatalf("64 masks: exit %d:\n%s", code, out)
	}
	if n := len(mem.State().GrayRules); n != 64 {
		t.Fatalf("the gateway holds %d gray rules, want 64", n)
	}
}
