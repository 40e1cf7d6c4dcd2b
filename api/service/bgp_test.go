package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/bgp"
	"github.com/graygw/graygw/controller/bgp/announce"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
)

// startStoppableAgent is an agent that a test can stop (the gateway lost) and
// start again on the same address, over the same dataplane.
func startStoppableAgent(t *testing.T) *stack.Agent { return stack.StartAgent(t, stack.AgentConfig{}) }

func newSpeaker(t *testing.T) *bgp.Speaker {
	t.Helper()
	sp, err := bgp.New(bgp.Config{ASN: 65001, RouterID: "10.0.0.1", ListenPort: -1,
		Neighbors: []bgp.Neighbor{{Address: "127.0.0.1", ASN: 65002, Passive: true}}}, bgp.WithLogger(logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func u32(v uint32) *uint32 { return &v }

func bgpConfig(sp *bgp.Speaker) *announce.Config {
	return &announce.Config{Speaker: sp, StartWait: 10 * time.Second,
		VIPs: map[string]bgp.Attributes{"vpc": {Communities: []string{"65000:100"}, MED: u32(50)}}}
}

// announced lists the speaker's paths as "vip via nexthop".
func announced(t *testing.T, sp *bgp.Speaker) []string {
	t.Helper()
	st, err := sp.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range st.Announced {
		out = append(out, p.PathKey.String())
	}
	return out
}

// waitPaths polls the speaker until it announces exactly want, and returns how
// long that took.
func waitPaths(t *testing.T, sp *bgp.Speaker, what string, want ...string) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := announced(t, sp)
		if slices.Equal(got, want) {
			return time.Since(start)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%s: announced %v, want %v", what, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const path1 = "10.255.0.1 via 10.1.0.1"

// TestBGPFollowsTheGatewayAndDrains: the first decision waits for the gateway
// to be reconciled and announces the VIP through it; a drain withdraws it at
// once, survives a controller restart, and an undrain announces again; losing
// the gateway's agent withdraws it and its return announces it again once
// reconciled; every withdrawal is explained.
func TestBGPFollowsTheGatewayAndDrains(t *testing.T) {
	a := startStoppableAgent(t)
	dir := t.TempDir()
	sp := newSpeaker(t)
	c := startControllerWith(t, ctlOpts{dir: dir, bgp: bgpConfig(sp)})

	// Before StartBGP: no intent, speaker not started.
	st, err := c.Client.BGPStatus(ctx(t), &graygwv1.BGPStatusRequest{})
	if err != nil || !strings.Contains(st.GetError(), "not started yet") {
		t.Fatalf("status before start: %v %v", st, err)
	}
	// Apply without waiting, then start: the first decision waits for the pass.
	if _, err := c.Client.Apply(ctx(t), &graygwv1.ApplyRequest{IntentYaml: intentYAML(a.Addr), Options: &graygwv1.ChangeOptions{Actor: "t"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Service.StartBGP(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := announced(t, sp); !slices.Equal(got, []string{path1}) {
		t.Fatalf("first decision announced %v, want %s", got, path1)
	}
	st, err = c.Client.BGPStatus(ctx(t), &graygwv1.BGPStatusRequest{})
	if err != nil || len(st.GetAnnounced()) != 1 || len(st.GetWithdrawn()) != 0 || len(st.GetNeighbors()) != 1 {
		t.Fatalf("status: %v %v", st, err)
	}
	p := st.GetAnnounced()[0]
	if p.GetVipName() != "vpc" || p.GetGateway() != "gw1" || p.GetMed() != 50 || !slices.Equal(p.GetCommunities(), []string{"65000:100"}) ||
		!strings.Contains(p.GetDetail(), "reconciled on this session") || st.GetHealthCheck() != announce.HealthReconciled {
		t.Fatalf("announced path: %v", p)
	}
	if g := st.GetGateways()[0]; !g.GetP4RuntimeConnected() || !g.GetHealthy() || g.GetDrained() {
		t.Fatalf("gateway: %v", g)
	}

	// Drain: withdrawn by the time the call returns.
	dr, err := c.Client.DrainGateway(ctx(t), &graygwv1.DrainGatewayRequest{Gateway: "gw1", Actor: "alice", Reason: "maintenance"})
	if err != nil || !dr.GetChanged() {
		t.Fatalf("drain: %v %v", dr, err)
	}
	if got := announced(t, sp); len(got) != 0 {
		t.Fatalf("announced after the drain returned: %v", got)
	}
	w := dr.GetBgp().GetWithdrawn()
	if len(w) != 1 || !slices.Equal(w[0].GetReasons(), []string{"drained"}) || !strings.Contains(w[0].GetDetail(), "drained by alice") ||
		!strings.Contains(w[0].GetDetail(), "(maintenance)") || !dr.GetBgp().GetGateways()[0].GetDrained() {
		t.Fatalf("withdrawn: %v", dr.GetBgp())
	}
	if dr, err := c.Client.DrainGateway(ctx(t), &graygwv1.DrainGatewayRequest{Gateway: "gw1"}); err != nil || dr.GetChanged() {
		t.Fatalf("second drain: %v %v", dr, err)
	}
	if _, err := c.Client.DrainGateway(ctx(t), &graygwv1.DrainGatewayRequest{Gateway: "gw9"}); status.Code(err) != codes.NotFound {
		t.Fatalf("drain of an unknown gateway: %v", err)
	}

	// A restarted controller keeps the gateway drained from its first decision.
	c.Stop()
	sp = newSpeaker(t)
	c = startControllerWith(t, ctlOpts{dir: dir, bgp: bgpConfig(sp)})
	if err := c.Service.StartBGP(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := announced(t, sp); len(got) != 0 {
		t.Fatalf("a drained gateway announced after a restart: %v", got)
	}
	dr, err = c.Client.UndrainGateway(ctx(t), &graygwv1.UndrainGatewayRequest{Gateway: "gw1", Actor: "alice"})
	if err != nil || !dr.GetChanged() || len(dr.GetBgp().GetAnnounced()) != 1 {
		t.Fatalf("undrain: %v %v", dr, err)
	}

	// Losing the agent withdraws the path; it comes back once reconciled.
	a.Stop()
	took := waitPaths(t, sp, "agent stopped")
	t.Logf("agent stopped -> path withdrawn in %s", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("withdrawal after the agent loss took %s", took)
	}
	st, _ = c.Client.BGPStatus(ctx(t), &graygwv1.BGPStatusRequest{})
	if w := st.GetWithdrawn(); len(w) != 1 || !slices.Equal(w[0].GetReasons(), []string{"p4runtime-disconnected"}) ||
		!strings.Contains(w[0].GetDetail(), "P4Runtime session to "+a.Addr+" down") {
		t.Fatalf("after the agent loss: %v", st)
	}
	a.Start()
	waitPaths(t, sp, "agent back", path1)
	if s := c.Engine.Status()[0]; !s.Synced {
		t.Fatalf("announced before reconciled: %+v", s)
	}

	// Stop with withdraw empties the speaker.
	if err := c.Service.StopBGP(ctx(t), true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.DrainGateway(ctx(t), &graygwv1.DrainGatewayRequest{Gateway: "gw1"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("drain after StopBGP: %v", err)
	}
}

// TestBGPCallsWithoutBGP: a controller without BGP says so.
func TestBGPCallsWithoutBGP(t *testing.T) {
	c := startController(t)
	if _, err := c.Client.BGPStatus(ctx(t), &graygwv1.BGPStatusRequest{}); status.Code(err) != codes.Unimplemented ||
		!strings.Contains(err.Error(), "runs without BGP") {
		t.Fatalf("BGPStatus: %v", err)
	}
	if _, err := c.Client.DrainGateway(ctx(t), &graygwv1.DrainGatewayRequest{Gateway: "gw1"}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("DrainGateway: %v", err)
	}
}

// TestBGPConfigChecked: a bad community or health check is refused by New.
func TestBGPConfigChecked(t *testing.T) {
	for _, cfg := range []announce.Config{
		{Speaker: newSpeaker(t), VIPs: map[string]bgp.Attributes{"vpc": {Communities: []string{"65000"}}}},
		{Speaker: newSpeaker(t), HealthCheck: "ping"},
		{},
	} {
		eng, err := engine.New(engine.Config{P4Info: stack.P4Info(t), ElectionID: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := service.New(service.Config{Store: store.NewMemory(), Engine: eng, BGP: &cfg}); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
}
