package change_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/change"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/testvectors"
)

// Rollouts reads the counters the rollout gates compare from the gateways
// themselves: frames through the agent's dataplane count on the gray rule that
// matched them, and a frame with a bad VXLAN flag counts a drop.
func TestRolloutsCounterSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, _, m := startManager(t)
	if res, err := m.Apply(ctx, []byte(doc(a.Addr)), change.Options{Actor: "t", Wait: true}); err != nil || !res.Applied {
		t.Fatalf("apply: %+v %v", res, err)
	}
	r := change.Rollouts{Changes: m}
	before, err := r.Drops(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The document's rule "keep" moves VM 10.0.2.9 of VNI 5002 to gray.
	l4 := testpkt.L4{Proto: testpkt.ProtoUDP, SPort: 1000, DPort: 53, Payload: []byte("gate")}
	for range 3 {
		a.Memory.Process(testvectors.Overlay(netip.MustParseAddr("10.255.0.1"), 5002, "10.0.2.9", "10.0.2.1", l4))
	}
	bad := testvectors.Overlay(netip.MustParseAddr("10.255.0.1"), 5002, "10.0.2.9", "10.0.2.1", l4)
	bad[14+20+8] = 0 // VXLAN flags without the I bit
	a.Memory.Process(bad)

	n, err := r.RulePackets(ctx, "keep")
	if err != nil || n != 3 {
		t.Errorf("rule keep: %d packets, %v; want 3", n, err)
	}
	after, err := r.Drops(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := after["VXLAN_BAD_FLAGS"] - before["VXLAN_BAD_FLAGS"]; d != 1 {
		t.Errorf("VXLAN_BAD_FLAGS +%d, want +1 (drops %v)", d, after)
	}

	// The pool_healthy gate's source: the pool's members whose address is down.
	if _, err := r.Unhealthy(ctx, "gray"); err == nil {
		t.Error("Unhealthy without health checks did not fail")
	}
	r.Down = func(a netip.Addr) (bool, string) {
		return a == netip.MustParseAddr("10.3.0.21"), "3 echo requests failed"
	}
	if down, err := r.Unhealthy(ctx, "gray"); err != nil || len(down) != 1 || down[0] != "g1 (10.3.0.21): 3 echo requests failed" {
		t.Errorf("Unhealthy(gray) = %q, %v", down, err)
	}
	if down, err := r.Unhealthy(ctx, "base"); err != nil || len(down) != 0 {
		t.Errorf("Unhealthy(base) = %q, %v", down, err)
	}
	if _, err := r.Unhealthy(ctx, "nope"); err == nil {
		t.Error("Unhealthy of an unknown pool did not fail")
	}
}
