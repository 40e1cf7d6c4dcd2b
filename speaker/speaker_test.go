package speaker

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/controller/bgp"
)

var (
	vip1 = netip.MustParseAddr("10.255.0.1")
	vip2 = netip.MustParseAddr("10.255.0.2")
	vip3 = netip.MustParseAddr("10.255.0.3")
)

func ip4(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// newObserver returns an Observer of cfg's dataplane, closed when t ends.
func newObserver(t *testing.T, cfg DataplaneConfig) *Observer {
	t.Helper()
	o, err := NewObserver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// TestObserveReadsWhatTheDataplaneServes: against a real agent server, a VIP
// is served only when it is in the vip table and its default pool's bucket
// points at a backend in the backend table; a stopped target is unreachable.
func TestObserveReadsWhatTheDataplaneServes(t *testing.T) {
	a := p4rtest.Serve(t, dataplane.NewMemory(dataplane.Limits{}), "")
	b := p4rtest.Builder{T: t, Info: a.Info}
	ctx := context.Background()
	err := a.Ctl.Write(ctx,
		p4rtest.Ins(b.VIP(ip4(vip1), 1, 1)), // served: pool 1 -> backend 11
		p4rtest.Ins(b.VIP(ip4(vip2), 2, 2)), // pool 2 has no bucket
		p4rtest.Ins(b.VIP(ip4(vip3), 3, 3)), // pool 3 -> backend 33, not in the backend table
		p4rtest.Ins(b.Bucket(1, 0, 11)),
		p4rtest.Ins(b.Bucket(3, 0, 33)),
		p4rtest.Ins(b.Backend(11, 2, 0x0a02000b)))
	if err != nil {
		t.Fatal(err)
	}
	o := newObserver(t, DataplaneConfig{P4Runtime: a.Addr, DeviceID: 1})
	obs := o.Observe(ctx)
	if !obs.Reachable || !obs.Forwarding || len(obs.Problems) > 0 {
		t.Fatalf("observation %+v: want reachable, forwarding, no problems", obs)
	}
	if !obs.Served[vip1] || obs.Served[vip2] || obs.Served[vip3] || len(obs.Served) != 1 {
		t.Errorf("served %v: want only %s", obs.Served, vip1)
	}
	if !strings.Contains(obs.NotServed[vip2], "default pool 2 has no backend") ||
		!strings.Contains(obs.NotServed[vip3], "backend 33 is not in the backend table") {
		t.Errorf("not served: %v", obs.NotServed)
	}

	// The VIP's only bucket goes: no longer served.
	if err := a.Ctl.Write(ctx, p4rtest.Upd(p4v1.Update_DELETE, b.Bucket(1, 0, 11))); err != nil {
		t.Fatal(err)
	}
	if obs := o.Observe(ctx); obs.Served[vip1] {
		t.Errorf("after deleting pool 1's bucket: %v still served", vip1)
	}

	// An interface that does not exist is a problem: not forwarding.
	o2 := newObserver(t, DataplaneConfig{P4Runtime: a.Addr, DeviceID: 1, Interfaces: []string{"nosuchif0"}})
	if obs := o2.Observe(ctx); obs.Forwarding || !obs.Reachable || len(obs.Problems) != 1 {
		t.Errorf("missing interface: %+v, want reachable and not forwarding with one problem", obs)
	}

	// Nothing listening: unreachable within the timeout, nothing served.
	o3 := newObserver(t, DataplaneConfig{P4Runtime: "127.0.0.1:1", DeviceID: 1, Timeout: 200 * time.Millisecond})
	start := time.Now()
	if obs := o3.Observe(ctx); obs.Reachable || len(obs.Served) > 0 || len(obs.Problems) == 0 {
		t.Errorf("no target: %+v, want unreachable with a problem", obs)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("an unreachable target took %s to observe (timeout 200ms)", d)
	}
}

// TestInputFollowsTheDataplane: the decision for one gateway announces a VIP
// only when the policy allows it and the dataplane serves it and forwards.
func TestInputFollowsTheDataplane(t *testing.T) {
	med := uint32(50)
	p := &bgp.Policy{Gateway: "gw1", NextHop: netip.MustParseAddr("10.1.0.1"), VIPs: []bgp.PolicyVIP{
		{Name: "a", Address: vip1, Attributes: bgp.Attributes{Communities: []string{"65000:100"}, MED: &med}},
		{Name: "b", Address: vip2},
		{Name: "c", Address: vip3, Withdraw: []bgp.Reason{bgp.ReasonNoHealthyBackend}},
	}}
	good := Observation{Reachable: true, Forwarding: true, Served: map[netip.Addr]bool{vip1: true, vip3: true}}
	decide := func(p *bgp.Policy, o Observation) (announced []string, reasons map[string][]bgp.Reason) {
		t.Helper()
		d, err := bgp.Decide(Input(p, o))
		if err != nil {
			t.Fatal(err)
		}
		reasons = map[string][]bgp.Reason{}
		for _, a := range d.Announce {
			announced = append(announced, a.VIP.String())
		}
		for _, w := range d.Withdraw {
			reasons[w.VIP.String()] = w.Reasons
		}
		return announced, reasons
	}
	got, why := decide(p, good)
	if !slices.Equal(got, []string{"10.255.0.1"}) {
		t.Errorf("announced %v, want only 10.255.0.1 (10.255.0.2 not served, 10.255.0.3 withdrawn by the controller)", got)
	}
	if !slices.Equal(why["10.255.0.2"], []bgp.Reason{bgp.ReasonNoHealthyBackend}) {
		t.Errorf("reasons of the unserved VIP: %v", why["10.255.0.2"])
	}
	for _, c := range []struct {
		name string
		o    Observation
		want bgp.Reason
	}{
		{"agent unreachable", Observation{Forwarding: true}, bgp.ReasonP4RuntimeDisconnected},
		{"interface down", Observation{Reachable: true, Served: good.Served}, bgp.ReasonHealthCheckFailed},
	} {
		got, why := decide(p, c.o)
		if len(got) != 0 || !slices.Contains(why["10.255.0.1"], c.want) {
			t.Errorf("%s: announced %v, reasons %v; want nothing, %s", c.name, got, why["10.255.0.1"], c.want)
		}
	}
	drained := *p
	drained.Drained = true
	if got, why := decide(&drained, good); len(got) != 0 || !slices.Contains(why["10.255.0.1"], bgp.ReasonDrained) {
		t.Errorf("drained: announced %v, reasons %v", got, why)
	}
	if got, _ := decide(nil, good); len(got) != 0 {
		t.Errorf("no policy: announced %v", got)
	}
}

// TestPolicyFileSurvivesAndRefusesGarbage: the policy is saved atomically and
// read back whole; a corrupt or invalid file is an error, not a guess.
func TestPolicyFileSurvivesAndRefusesGarbage(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.json")
	if sp, err := loadPolicy(path); sp != nil || err != nil {
		t.Fatalf("missing file: %v, %v; want nothing, no error", sp, err)
	}
	lp := uint32(300)
	want := &savedPolicy{Policy: bgp.Policy{Gateway: "gw1", NextHop: netip.MustParseAddr("10.1.0.1"), Drained: true,
		VIPs: []bgp.PolicyVIP{{Name: "a", Address: vip1, Attributes: bgp.Attributes{LocalPref: &lp}}}},
		IntentVersion: 7, Received: time.Now().UTC().Round(0), From: "unix:///x"}
	if err := savePolicy(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadPolicy(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Policy.Equal(want.Policy) || got.IntentVersion != 7 || !got.Received.Equal(want.Received) {
		t.Errorf("read back %+v, want %+v", got, want)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.tmp*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	for name, text := range map[string]string{
		"truncated":    `{"policy": {"gateway": "gw1"`,
		"bad next hop": `{"policy": {"gateway": "gw1", "nextHop": "::1", "vips": []}}`,
		"no gateway":   `{"policy": {"nextHop": "10.1.0.1", "vips": []}}`,
	} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if sp, err := loadPolicy(path); err == nil {
			t.Errorf("%s: loaded %+v, want an error", name, sp)
		}
	}
}

// slowTarget is the agent's P4Runtime server with a Read that can be made to
// hang (a gateway CPU starved, or an agent stuck).
type slowTarget struct {
	p4v1.P4RuntimeServer
	hang atomic.Bool
}

func (s *slowTarget) Read(req *p4v1.ReadRequest, srv p4v1.P4Runtime_ReadServer) error {
	if s.hang.Load() {
		<-srv.Context().Done()
		return srv.Context().Err()
	}
	return s.P4RuntimeServer.Read(req, srv)
}

// servingVIP1 serves an agent that serves vip1: pool 1, bucket 0 -> backend
// 11.
func servingVIP1(t *testing.T) *p4rtest.Agent {
	t.Helper()
	a := p4rtest.Serve(t, dataplane.NewMemory(dataplane.Limits{}), "")
	b := p4rtest.Builder{T: t, Info: a.Info}
	if err := a.Ctl.Write(context.Background(), p4rtest.Ins(b.VIP(ip4(vip1), 1, 1)), p4rtest.Ins(b.Bucket(1, 0, 11)),
		p4rtest.Ins(b.Backend(11, 2, 0x0a02000b))); err != nil {
		t.Fatal(err)
	}
	return a
}

// TestSlowTargetIsToleratedForAGrace: reads that time out keep the last
// observation for SlowGrace, then the target counts as unreachable; one
// answer resets it.
func TestSlowTargetIsToleratedForAGrace(t *testing.T) {
	a := servingVIP1(t)
	ctx := context.Background()
	slow := &slowTarget{P4RuntimeServer: a.Server}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	p4v1.RegisterP4RuntimeServer(gs, slow)
	go gs.Serve(lis)
	defer gs.Stop()
	o := newObserver(t, DataplaneConfig{P4Runtime: lis.Addr().String(), DeviceID: 1, Timeout: 50 * time.Millisecond, SlowGrace: 400 * time.Millisecond})
	if obs := o.Observe(ctx); !obs.Served[vip1] {
		t.Fatalf("first observation: %+v", obs)
	}
	slow.hang.Store(true)
	start := time.Now()
	for time.Since(start) < 300*time.Millisecond {
		if obs := o.Observe(ctx); !obs.Reachable || !obs.Served[vip1] || len(obs.Problems) != 1 {
			t.Fatalf("%s into the slowness: %+v, want still served with one problem", time.Since(start).Round(time.Millisecond), obs)
		}
	}
	for {
		obs := o.Observe(ctx)
		if !obs.Reachable {
			if d := time.Since(start); d < 400*time.Millisecond || d > 2*time.Second {
				t.Errorf("unreachable after %s, grace 400ms", d)
			}
			break
		}
		if time.Since(start) > 3*time.Second {
			t.Fatal("a hung target was never unreachable")
		}
	}
	slow.hang.Store(false)
	if obs := o.Observe(ctx); !obs.Reachable || !obs.Served[vip1] {
		t.Fatalf("after the target answers again: %+v", obs)
	}
}

// TestObserveOverUnixSocket: the agent's default listener is a unix socket;
// the observer reads through it (dataplane.p4runtime: unix:///path).
func TestObserveOverUnixSocket(t *testing.T) {
	a := servingVIP1(t)
	ctx := context.Background()
	sock := t.TempDir() + "/p4rt.sock"
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	p4v1.RegisterP4RuntimeServer(gs, a.Server)
	go gs.Serve(lis)
	defer gs.Stop()
	o := newObserver(t, DataplaneConfig{P4Runtime: "unix://" + sock, DeviceID: 1})
	if obs := o.Observe(ctx); !obs.Reachable || !obs.Served[vip1] {
		t.Fatalf("over a unix socket: %+v", obs)
	}
}
