package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	graygwv1 "github.com/graygw/graygw/api/graygw/v1"
	"github.com/graygw/graygw/api/service"
	"github.com/graygw/graygw/controller/compile"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/intent"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/pipeline"
)

func vmFlow() *graygwv1.TraceRequest {
	return &graygwv1.TraceRequest{Vni: 5001, Src: "10.0.0.5", Dst: "10.0.0.1", Proto: 6, Sport: 40000, Dport: 22}
}

// TestTraceThroughTheAPI traces a moved VM's flow over the tables the agent
// holds; then, with the VM rule repointed on the agent behind the
// controller's back, the trace follows the agent's tables, names the entry
// that differs and says the gateway disagrees with the intent.
func TestTraceThroughTheAPI(t *testing.T) {
	ag := stack.StartAgent(t, stack.AgentConfig{})
	c := startController(t)
	if _, err := c.Client.Trace(ctx(t), vmFlow()); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("Trace before any intent: %v", err)
	}
	mustApply(t, c, intentYAML(ag.Addr), "alice")

	resp, err := c.Client.Trace(ctx(t), vmFlow())
	if err != nil || len(resp.GetGateways()) != 1 {
		t.Fatalf("Trace = %v, %v", resp, err)
	}
	g := resp.GetGateways()[0]
	if g.GetError() != "" || !g.GetInSync() || g.GetDrift() != nil || g.GetIntentVersion() != 1 || len(g.GetVips()) != 1 {
		t.Fatalf("gateway %v", g)
	}
	p := g.GetVips()[0]
	if p.GetVip() != "vpc" || p.GetTenant() != "acme" || p.GetRule() != "vm-10.0.0.5" || !strings.HasPrefix(p.GetPool(), "gray") ||
		p.GetBackend() != "gray-1" || p.GetRewrite().GetOuterDst() != "10.3.0.21" || !p.GetAgreesWithIntent() {
		t.Fatalf("path %v", p)
	}

	for _, bad := range []struct {
		req  *graygwv1.TraceRequest
		code codes.Code
	}{
		{&graygwv1.TraceRequest{Vni: 5001, Src: "10.0.0"}, codes.InvalidArgument},
		{&graygwv1.TraceRequest{Vni: 5001, Src: "10.0.0.5", Proto: 1, Dport: 3}, codes.InvalidArgument},
		{&graygwv1.TraceRequest{Vni: 5001, Src: "10.0.0.5", Proto: 300}, codes.InvalidArgument},
		{&graygwv1.TraceRequest{Vni: 5001, Src: "10.0.0.5", Gateway: "gw9"}, codes.NotFound},
		{&graygwv1.TraceRequest{Vni: 5001, Src: "10.0.0.5", Vip: "nat"}, codes.NotFound},
	} {
		if _, err := c.Client.Trace(ctx(t), bad.req); status.Code(err) != bad.code {
			t.Errorf("Trace(%v) = %v, want %v", bad.req, err, bad.code)
		}
	}

	// Behind the controller's back: the VM rule sent to the base pool, with
	// the engine's own election id, so the engine's session sees nothing.
	rb, err := c.Engine.ReadBack(ctx(t), "gw1")
	if err != nil {
		t.Fatal(err)
	}
	var rule compile.Entry
	var basePool []byte
	for _, e := range rb.Have {
		switch {
		case e.Origin == "rule vm-10.0.0.5":
			rule = e
		case e.Table == pipeline.TableVIP:
			dp, _ := e.Param(pipeline.ParamDefaultPool.Name)
			basePool = dp.Value
		}
	}
	i := slices.IndexFunc(rule.Params, func(p compile.Param) bool { return p.Name == pipeline.ParamPoolID.Name })
	if i < 0 || basePool == nil {
		t.Fatalf("rule %v, base pool %x", rule, basePool)
	}
	rule.Params = slices.Clone(rule.Params)
	rule.Params[i].Value = basePool
	te, err := c.Engine.Codec().ToP4(&rule)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ag.Server().Write(ctx(t), &p4v1.WriteRequest{DeviceId: 1, ElectionId: &p4v1.Uint128{Low: 10},
		Updates: []*p4v1.Update{{Type: p4v1.Update_MODIFY, Entity: &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: te}}}}})
	if err != nil {
		t.Fatal(err)
	}

	resp, err = c.Client.Trace(ctx(t), vmFlow())
	if err != nil {
		t.Fatal(err)
	}
	g = resp.GetGateways()[0]
	d := g.GetDrift()
	if g.GetInSync() || d.GetDifferCount() != 1 || d.GetMissingCount()+d.GetExtraCount() != 0 ||
		!strings.HasPrefix(d.GetDiffer()[0], "rule vm-10.0.0.5: ") || !strings.Contains(d.GetDiffer()[0], "the intent wants") {
		t.Fatalf("drift not flagged: %v", g)
	}
	p = g.GetVips()[0]
	if p.GetRule() != "vm-10.0.0.5" || !strings.HasPrefix(p.GetPool(), "base") || !strings.HasPrefix(p.GetBackend(), "base-") ||
		p.GetAgreesWithIntent() || p.GetIntent().GetBackend() != "gray-1" {
		t.Fatalf("path over the changed tables %v", p)
	}

	// A gateway that cannot be read is answered with its error, not a guess.
	ag.Stop()
	start := time.Now()
	resp, err = c.Client.Trace(ctx(t), vmFlow())
	if err != nil || len(resp.GetGateways()) != 1 || !strings.Contains(resp.GetGateways()[0].GetError(), "read back gw1") ||
		len(resp.GetGateways()[0].GetVips()) != 0 {
		t.Fatalf("Trace with the agent down = %v, %v", resp, err)
	}
	t.Logf("agent down: answered in %s: %s", time.Since(start).Round(time.Millisecond), resp.GetGateways()[0].GetError())
}

// TestStandbyTraces: a warm follower answers Trace itself, from its standby
// engine's sessions (reads need no mastership), while a follower without
// one sends the caller to the leader.
func TestStandbyTraces(t *testing.T) {
	ag := stack.StartAgent(t, stack.AgentConfig{})
	c := startController(t)
	mustApply(t, c, intentYAML(ag.Addr), "alice")

	eng, err := engine.New(engine.Config{P4Info: stack.P4Info(t), Standby: true, ElectionID: 5, Interval: time.Hour, // below the leader's 10
		Retry: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(context.Background()) })
	serve := func(withEngine bool) graygwv1.ControllerClient {
		sb := service.NewStandby(store.NewMemory(), func(context.Context) (string, uint64, string, bool) {
			return "ctl-a", 3, "unix:///nonexistent/leader.sock", true
		}, logger(t))
		if withEngine {
			sb.ServeTrace(eng)
		}
		conn, err := grpc.NewClient("unix://"+stack.ServeStandby(t, sb), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return graygwv1.NewControllerClient(conn)
	}
	in, err := intent.Load([]byte(intentYAML(ag.Addr)))
	if err != nil {
		t.Fatal(err)
	}
	// Before its engine follows an intent, the follower sends the caller on.
	if _, err := serve(true).Trace(ctx(t), vmFlow()); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "the leader is ctl-a") {
		t.Fatalf("Trace on a warm follower with no intent yet: %v", err)
	}
	stack.Commit(t, eng, in, 1)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st := eng.Status(); len(st) == 1 && st[0].Connected && !st[0].Primary && st[0].Standby {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby engine never connected: %+v", eng.Status())
		}
	}

	resp, err := serve(true).Trace(ctx(t), vmFlow())
	if err != nil || len(resp.GetGateways()) != 1 {
		t.Fatalf("Trace on the warm follower = %v, %v", resp, err)
	}
	g := resp.GetGateways()[0]
	if g.GetError() != "" || !g.GetInSync() || g.GetVips()[0].GetBackend() != "gray-1" || !g.GetVips()[0].GetAgreesWithIntent() {
		t.Fatalf("trace from the follower %v", g)
	}
	if _, err := serve(false).Trace(ctx(t), vmFlow()); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "the leader is ctl-a") {
		t.Fatalf("Trace on a cold follower: %v", err)
	}
}
