package main

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

// TestMirrorAgainstTheController drives `graygw mirror` through the real
// controller to an agent, and sends frames through the agent's dataplane:
// while the mirror runs, every frame of the VPC is still served by base and a
// copy of the sampled VMs' frames goes to a gray backend, marked; status and
// history show it; a cutover of the same VPC turns it into the move; --stop
// ends every mirror and no frame is copied.
func TestMirrorAgainstTheController(t *testing.T) {
	a := stack.StartAgent(t, stack.AgentConfig{})
	c := stack.StartController(t, stack.Config{})
	ctrl := "unix://" + c.Socket
	path := writeFile(t, "intent.yaml", exampleIntent(t, a.Addr))
	g := func(want int, args ...string) string {
		t.Helper()
		code, out, stderr := api(t, ctrl, args...)
		if code != want {
			t.Fatalf("graygw %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, stderr)
		}
		return out + stderr
	}
	g(0, "apply", "-f", path, "--wait", "--actor", "tester")

	// 40 VMs of VNI 5002 send to the VIP: which are copied, and where.
	send := func() (served map[string]int, copies int, marked bool) {
		served = map[string]int{}
		marked = true
		for i := range 40 {
			src := fmt.Sprintf("192.168.2.%d", 10+i)
			r := a.Memory.Process(testvectors.Overlay(netip.MustParseAddr("10.255.0.1"), 5002, src, "192.168.9.9",
				testpkt.L4{Proto: testpkt.ProtoTCP, SPort: 1000, DPort: 80}))
			served[netip.AddrFrom4([4]byte(r.Frame[30:34])).String()]++
			if r.Copy != nil && r.Copy.Sent {
				copies++
				marked = marked && r.Copy.Frame[15]>>2 == pipeline.MirrorDSCP &&
					strings.HasPrefix(netip.AddrFrom4([4]byte(r.Copy.Frame[30:34])).String(), "10.3.0.")
			}
		}
		return served, copies, marked
	}
	base, copies, _ := send()
	if copies != 0 {
		t.Fatalf("%d copies before any mirror", copies)
	}

	g(ExitUsage, "mirror", "--vni", "5002", "--pool", "gray-router", "--rate", "1/0", "--actor", "tester")
	g(ExitUsage, "mirror", "--vni", "5002", "--pool", "gray-router", "--percent", "10", "--actor", "tester")
	g(ExitRefused, "mirror", "--vni", "5002", "--pool", "no-such-pool", "--vip", "vpc-router", "--actor", "tester")
	out := g(0, "mirror", "--vni", "5002", "--pool", "gray-router", "--vip", "vpc-router", "--wait", "--actor", "tester")
	if !strings.Contains(out, "copied to pool gray-router") {
		t.Fatalf("mirror output:\n%s", out)
	}
	served, copies, marked := send()
	if fmt.Sprint(served) != fmt.Sprint(base) || copies != 40 || !marked {
		t.Fatalf("mirror every VM: served %v (before %v), %d copies of 40, marked %v", served, base, copies, marked)
	}
	// The copies are counted: 40 made by the rule, 40 sent to gray backends.
	var cs Counters
	if err := json.Unmarshal([]byte(g(0, "counters", "-o", "json")), &cs); err != nil {
		t.Fatal(err)
	}
	made, sent := map[string]uint64{}, uint64(0)
	for _, r := range cs.Rows {
		switch r.Kind {
		case "mirror":
			made[r.Name] += r.Packets
		case "mirror-backend":
			if !strings.HasPrefix(r.Name, "gray-") {
				t.Fatalf("copies counted on backend %s", r.Name)
			}
			sent += r.Packets
		}
	}
	if made["vpc-router.vni-5002"] != 40 || len(made) != 1 || sent != 40 {
		t.Fatalf("mirror counters: made %v, sent %d; want 40 by vpc-router.vni-5002, 40 sent", made, sent)
	}

	// 1 in 4: the same rule updated; about 10 of 40 VMs.
	out = g(0, "mirror", "--vni", "5002", "--pool", "gray-router", "--vip", "vpc-router", "--rate", "1/4", "--wait", "--actor", "tester")
	if _, copies, _ = send(); copies == 0 || copies > 25 {
		t.Fatalf("1/4: %d of 40 VMs copied\n%s\n%s", copies, out, g(0, "get"))
	}
	var st Status
	if err := json.Unmarshal([]byte(g(0, "status", "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range st.VNIs {
		if v.VNI == 5002 {
			found = strings.Contains(strings.Join(v.Mirrors, ","), "->gray-router 1/4")
		}
	}
	if !found {
		t.Fatalf("status does not show the mirror: %+v", st.VNIs)
	}
	if h := g(0, "history", "--limit", "5"); !strings.Contains(h, "mirror VNI 5002") {
		t.Fatalf("history lacks the mirror:\n%s", h)
	}

	// Cut over the same VPC: the mirror rule becomes the move.
	g(0, "cutover", "--vni", "5002", "--pool", "gray-router", "--vip", "vpc-router", "--wait", "--actor", "tester")
	served, copies, _ = send()
	if copies != 0 || len(served) == 0 {
		t.Fatalf("after the cutover: %d copies, served by %v", copies, served)
	}
	for addr := range served {
		if !strings.HasPrefix(addr, "10.3.0.") {
			t.Fatalf("after the cutover, served by %s, not gray", addr)
		}
	}

	// --stop: a rule that only mirrors goes.
	g(0, "rollback", "--all", "--wait", "--actor", "tester")
	g(0, "mirror", "--vni", "5002", "--pool", "gray-router", "--vip", "vpc-router", "--wait", "--actor", "tester")
	if out := g(0, "mirror", "--stop", "--wait", "--actor", "tester"); !strings.Contains(out, "removed rules") {
		t.Fatalf("--stop output:\n%s", out)
	}
	if served, copies, _ = send(); copies != 0 || fmt.Sprint(served) != fmt.Sprint(base) {
		t.Fatalf("after --stop: %d copies, served %v (before %v)", copies, served, base)
	}
	g(ExitUsage, "mirror", "--stop", "--vni", "5002", "--actor", "tester")
}
