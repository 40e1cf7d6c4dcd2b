package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/server"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/internal/vipindex"
)

// TestVIPWindowCheckedBeforeCommit: nine IPv4 VIPs of one vip_index home
// passed every check, were committed and the XDP agent refused one with
// ErrFull (its window of 8 cells taken) after the rest were written. The
// window is now checked with the table sizes: --dry-run and the API refuse
// the intent before the store commit (RESOURCE_EXHAUSTED, exit 1), naming the
// addresses and what to do; eight pass.
func TestVIPWindowCheckedBeforeCommit(t *testing.T) {
	mem := dataplane.NewMemory(dataplane.XDPLimits())
	a := stack.StartAgent(t, stack.AgentConfig{Server: server.Config{Dataplane: mem}})
	c := stack.StartController(t, stack.Config{Engine: engine.Config{
		VIPWindow: func(string) int { return vipindex.Probe }}})
	ctrl := "unix://" + c.Socket
	text := exampleIntent(t, a.Addr)
	write := func(n int) string {
		home := (vipindex.Home(0x0aff0001) + vipindex.Size/2) % vipindex.Size // far from the example's VIPs
		var b strings.Builder
		for i, v := range vipindex.WithHome(home, n) {
			addr := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
			fmt.Fprintf(&b, "  - {name: c%d, address: %s, default_pool: base-router}\n", i, addr)
		}
		return writeFile(t, "intent.yaml", strings.Replace(text, "vips:\n", "vips:\n"+b.String(), 1))
	}
	g := func(args ...string) (int, string) {
		t.Helper()
		code, out, stderr := api(t, ctrl, append(args, "--actor", "tester")...)
		return code, out + stderr
	}
	over := write(vipindex.Probe + 1)
	for _, args := range [][]string{{"apply", "-f", over, "--dry-run"}, {"apply", "-f", over}} {
		code, out := g(args...)
		if code != ExitError || !strings.Contains(out, "ResourceExhausted") || !strings.Contains(out, "vip: intent has 9 IPv4 VIPs") ||
			!strings.Contains(out, "gateway gw1, which holds 8 per window") || !strings.Contains(out, "use another address for") {
			t.Fatalf("%v: exit %d, want %d refusing the vip window:\n%s", args, code, ExitError, out)
		}
	}
	if _, err := c.Store.Current(context.Background()); err == nil {
		t.Fatal("the refused intent was stored")
	}
	if code, out := g("apply", "-f", write(vipindex.Probe), "--wait"); code != 0 {
		t.Fatalf("8 VIPs of one home: exit %d:\n%s", code, out)
	}
	if n := len(mem.State().VIPs); n != 2+vipindex.Probe {
		t.Fatalf("the gateway holds %d VIPs, want %d", n, 2+vipindex.Probe)
	}
}
