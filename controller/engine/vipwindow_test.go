package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/internal/vipindex"
)

// collidingVIPs adds n IPv4 VIPs whose vip_index homes are one cell, far
// from the test intent's own VIP (10.255.0.1), to doc; it returns their
// addresses too.
func collidingVIPs(doc string, n int) (string, []netip.Addr) {
	home := (vipindex.Home(0x0aff0001) + vipindex.Size/2) % vipindex.Size
	var b strings.Builder
	var addrs []netip.Addr
	for i, a := range vipindex.WithHome(home, n) {
		addr := netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)})
		addrs = append(addrs, addr)
		fmt.Fprintf(&b, "  - {name: c%d, id: %d, address: %s, default_pool: base}\n", i, 100+i, addr)
	}
	return strings.Replace(doc, "vips:\n", "vips:\n"+b.String(), 1), addrs
}

// TestVIPWindowCheckedBeforeWrite: nine IPv4 VIPs of one vip_index home could
// fill one's window on an XDP gateway (the agent would refuse the ninth with
// ErrFull after the rest were written); the plan says so, refusing it, and
// the engine writes nothing there. A BMv2 or Tofino gateway (no window)
// takes the same intent, and eight such VIPs pass everywhere.
func TestVIPWindowCheckedBeforeWrite(t *testing.T) {
	xdp, bmv2 := startAgent(t, nil), startAgent(t, nil)
	e, err := engine.New(engine.Config{P4Info: stack.P4Info(t), ElectionID: 10, Interval: time.Hour,
		Retry: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Logger: logger(t), VIPWindow: func(gw string) int {
			if gw == "gw1" {
				return vipindex.Probe // the XDP agent
			}
			return 0
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	base := intentYAML([]string{xdp.addr, bmv2.addr}, threeBackends())

	nine, addrs := collidingVIPs(base, vipindex.Probe+1)
	p, err := e.Prepare(load(t, nine))
	if err != nil {
		t.Fatal(err)
	}
	var ov []engine.Overflow
	for _, gp := range e.ChangePlan(p) {
		switch {
		case gp.Gateway == "gw1":
			ov = gp.Overflows
		case len(gp.Overflows) != 0:
			t.Fatalf("%s (no vip window): overflows %+v", gp.Gateway, gp.Overflows)
		}
	}
	if len(ov) != 1 || ov[0].Unit != engine.UnitVIPWindow || ov[0].Table != "vip" || ov[0].Need != 9 || ov[0].Size != 8 ||
		!ov[0].Refuse() || len(ov[0].VIPs) != 9 {
		t.Fatalf("gw1 overflows %+v, want the vip window: 9 VIPs, window 8", ov)
	}
	if err := (&engine.CapacityError{Overflows: ov}); !errors.Is(err, engine.ErrCapacity) {
		t.Fatalf("%v is not ErrCapacity", err)
	}
	msg := ov[0].String()
	for _, want := range []string{"vip: intent has 9 IPv4 VIPs", "gateway gw1, which holds 8 per window",
		`"the 8 cells of its window are taken"`, "use another address for " + ov[0].VIPs[0].String()} {
		if !strings.Contains(msg, want) {
			t.Fatalf("message %q lacks %q", msg, want)
		}
	}
	for _, a := range addrs {
		if !strings.Contains(msg, a.String()) {
			t.Fatalf("message %q does not name %v", msg, a)
		}
	}

	if err := e.Commit(p, 1); err != nil {
		t.Fatal(err)
	}
	gatewayStatus(t, e, "gw2", func(st engine.GatewayStatus) bool { return st.InSync && st.Version == 1 })
	sameEntries(t, bmv2.entries(t), desired(t, p.Result(), "gw2"))
	st := gatewayStatus(t, e, "gw1", failed)
	if want := (engine.Overflow{Gateway: "gw1", Table: "vip", Need: 9, Final: 9, Size: 8, Source: engine.SourceVIPWindow,
		Unit: engine.UnitVIPWindow, Version: 1, VIPs: ov[0].VIPs}).String(); st.LastError != want {
		t.Fatalf("gw1 error\n got %q\nwant %q", st.LastError, want)
	}
	if n := len(xdp.entries(t)); n != 0 || st.EntriesWritten != 0 || st.WriteErrors != 0 {
		t.Fatalf("gw1 holds %d entries, %d written, %d refused: want none", n, st.EntriesWritten, st.WriteErrors)
	}

	// Eight VIPs of one home fit a window of eight: both gateways take them.
	eight, _ := collidingVIPs(base, vipindex.Probe)
	p2 := stack.Commit(t, e, load(t, eight), 2)
	stack.WaitVersion(t, e, 2)
	sameEntries(t, xdp.entries(t), desired(t, p2.Result(), "gw1"))
	sameEntries(t, bmv2.entries(t), desired(t, p2.Result(), "gw2"))
}
