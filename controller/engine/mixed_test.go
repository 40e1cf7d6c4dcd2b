package engine_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/controller/trace"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/pipeline"
)

// tofino emulates a Tofino target over the XDP agent: it takes the TNA build's
// P4Info (what bf-p4c emits: p4src/tna/graygw_tna.p4info.txtpb) in
// SetForwardingPipelineConfig, keeps it, hands the agent the project's P4Info
// with the same table sizes (the agent runs only the project's P4Info), and
// returns the P4Info it was given in GetForwardingPipelineConfig. Entries go
// through unchanged (table, action and field ids are the same); counters are
// read by the TNA build's own ids, as on a real Tofino: the emulator maps them
// to the agent's, and an id the TNA build does not have is NOT_FOUND.
type tofino struct {
	p4v1.P4RuntimeServer
	agentInfo *p4configv1.P4Info
	counters  map[uint32]uint32 // TNA build's counter id -> the agent's

	mu     sync.Mutex
	pushed []*p4configv1.P4Info
}

func newTofino(t *testing.T, tna, agentInfo *p4info.Info) *tofino {
	t.Helper()
	ids := map[uint32]uint32{}
	for _, c := range tna.Counters() {
		ac, err := agentInfo.Counter(strings.TrimPrefix(c.Name, p4info.TNAPrefix))
		if err != nil {
			t.Fatal(err)
		}
		ids[c.ID] = ac.ID
	}
	return &tofino{agentInfo: agentInfo.P4Info(), counters: ids}
}

func (s *tofino) SetForwardingPipelineConfig(ctx context.Context, req *p4v1.SetForwardingPipelineConfigRequest) (*p4v1.SetForwardingPipelineConfigResponse, error) {
	req = proto.Clone(req).(*p4v1.SetForwardingPipelineConfigRequest)
	if cfg := req.GetConfig(); cfg.GetP4Info() != nil {
		s.mu.Lock()
		s.pushed = append(s.pushed, cfg.GetP4Info())
		s.mu.Unlock()
		cfg.P4Info = s.agentInfo
	}
	return s.P4RuntimeServer.SetForwardingPipelineConfig(ctx, req)
}

func (s *tofino) Read(req *p4v1.ReadRequest, stream p4v1.P4Runtime_ReadServer) error {
	req = proto.Clone(req).(*p4v1.ReadRequest)
	for _, e := range req.GetEntities() {
		if ce := e.GetCounterEntry(); ce != nil && ce.GetCounterId() != 0 {
			id, ok := s.counters[ce.GetCounterId()]
			if !ok {
				return status.Errorf(codes.NotFound, "no counter with id %#x", ce.GetCounterId())
			}
			ce.CounterId = id
		}
	}
	return s.P4RuntimeServer.Read(req, &tofinoRead{P4Runtime_ReadServer: stream, s: s})
}

// tofinoRead answers with the TNA build's counter ids.
type tofinoRead struct {
	p4v1.P4Runtime_ReadServer
	s *tofino
}

func (r *tofinoRead) Send(resp *p4v1.ReadResponse) error {
	for _, e := range resp.GetEntities() {
		if ce := e.GetCounterEntry(); ce != nil {
			for tnaID, id := range r.s.counters {
				if ce.GetCounterId() == id {
					ce.CounterId = tnaID
				}
			}
		}
	}
	return r.P4Runtime_ReadServer.Send(resp)
}

func (s *tofino) GetForwardingPipelineConfig(ctx context.Context, req *p4v1.GetForwardingPipelineConfigRequest) (*p4v1.GetForwardingPipelineConfigResponse, error) {
	resp, err := s.P4RuntimeServer.GetForwardingPipelineConfig(ctx, req)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && resp.GetConfig().GetP4Info() != nil && len(s.pushed) > 0 {
		resp.Config.P4Info = s.pushed[len(s.pushed)-1]
	}
	return resp, err
}

func (s *tofino) received() []*p4configv1.P4Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*p4configv1.P4Info(nil), s.pushed...)
}

// pushedP4Info is the P4Info the agent runs, as GetForwardingPipelineConfig says.
func pushedP4Info(t *testing.T, a *agent) *p4configv1.P4Info {
	t.Helper()
	a.mu.Lock()
	srv := a.srv
	a.mu.Unlock()
	resp, err := srv.GetForwardingPipelineConfig(ctx(t), &p4v1.GetForwardingPipelineConfigRequest{DeviceId: 1,
		ResponseType: p4v1.GetForwardingPipelineConfigRequest_P4INFO_AND_COOKIE})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetConfig().GetP4Info()
}

// A mixed fleet: gw1 (an XDP agent) gets the project's P4Info, gw2 (a Tofino
// 1, emulated) the P4Info bf-p4c really emits for the TNA build (gray_rules
// 9216, counter ids of its own; the IPv6 tables as v1model's). Each receives its own in
// SetForwardingPipelineConfig; an intent that fits both converges on both, and
// gw2's drop counters are read by gw2's ids; one with more rules than gw2 holds
// converges on gw1 and is refused on gw2 from the size its P4Info declares,
// nothing written there.
func TestMixedFleetP4InfoPerGateway(t *testing.T) {
	tna := realTNAInfo(t)
	grayRules, err := tna.Table(pipeline.TableGrayRules)
	if err != nil {
		t.Fatal(err)
	}
	xdp := startAgent(t, nil)
	agentInfo := stack.SizedP4Info(t, map[string]int64{pipeline.TableGrayRules: grayRules.Size})
	tof := newTofino(t, tna, agentInfo)
	tofAgent := &agent{t: t, addr: "127.0.0.1:0", dp: dataplane.NewMemory(dataplane.Limits{}), dir: t.TempDir(),
		info: agentInfo,
		wrap: func(s p4v1.P4RuntimeServer) p4v1.P4RuntimeServer { tof.P4RuntimeServer = s; return tof }}
	tofAgent.start()
	t.Cleanup(tofAgent.kill)

	e, err := engine.New(engine.Config{P4Info: stack.P4Info(t), ElectionID: 10, Interval: time.Hour,
		Retry: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Store: store.NewMemory(), Logger: logger(t),
		P4InfoFor: func(gw string) *p4info.Info {
			if gw == "gw2" {
				return tna
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })

	addrs := []string{xdp.addr, tofAgent.addr}
	// With a mirror: the TNA build has set_pool_mirror (docs/p4-targets.md,
	// "Mirror"), so gw2 takes the rule and gets the mirror session on its
	// recirculation port.
	doc := intentYAML(addrs, threeBackends()) + "  - name: shadow\n    match: {vip: vpc, vni: 5002}\n    pool: base\n    mirror: {pool: gray, rate: 4}\n"
	p := stack.Commit(t, e, load(t, doc), 1)
	stack.WaitVersion(t, e, 1)
	sameEntries(t, xdp.entries(t), desired(t, p.Result(), "gw1"))
	// gw2's TNA build has the IPv6 tables with the actions the engine writes
	// (set_pool_v6 ..., the same P4Info shape as v1model: docs/p4-targets.md
	// "IPv6"), so it takes every entry, the gray_rules_v6 one of the rule
	// without an address too.
	want2 := desired(t, p.Result(), "gw2")
	sameEntries(t, tofAgent.entries(t), want2)
	tnaB := p4rtest.Builder{T: t, Info: tna}
	v6 := tnaB.Table(pipeline.TableGrayRulesV6)
	var on6 []*p4v1.TableEntry
	for _, te := range tofAgent.entries(t) {
		if te.GetTableId() == v6.ID {
			on6 = append(on6, te)
		}
	}
	if len(on6) != 1 || on6[0].GetAction().GetAction().GetActionId() != tnaB.Action(pipeline.ActionSetPoolV6).GetAction().GetActionId() {
		t.Fatalf("gw2's gray_rules_v6 holds %v, want rule shadow's set_pool_v6 entry", on6)
	}
	mirrored := 0
	for _, u := range desired(t, p.Result(), "gw2") {
		if a, _ := stack.P4Info(t).Action(pipeline.ActionSetPoolMirror); u.GetAction().GetAction().GetActionId() == a.ID {
			mirrored++
		}
	}
	if mirrored != 1 {
		t.Fatalf("gw2 holds %d set_pool_mirror entries, want 1", mirrored)
	}
	for _, c := range []struct {
		a    *agent
		arch string
		port uint32
	}{{xdp, "v1model", 0}, {tofAgent, "tna", pipeline.MirrorPortTofino}} {
		got := c.a.sessions(t)
		if len(got) != 1 || !proto.Equal(got[0], engine.MirrorSession(c.arch)) ||
			got[0].GetPacketReplicationEngineEntry().GetCloneSessionEntry().GetReplicas()[0].GetEgressPort() != c.port {
			t.Fatalf("%s clone sessions %v, want one to port %d", c.arch, got, c.port)
		}
	}
	if d := p4info.Diff(stack.P4Info(t).P4Info(), pushedP4Info(t, xdp)); d != nil {
		t.Fatalf("gw1 runs another P4Info than the project's: %v", d)
	}
	got := tof.received()
	if len(got) != 1 || !proto.Equal(got[0], tna.P4Info()) {
		t.Fatalf("gw2 received %d P4Infos, want exactly the TNA one", len(got))
	}
	if _, err := e.Counters(ctx(t), "gw2"); err != nil {
		t.Fatalf("counters of gw2 (read by the TNA build's ids): %v", err)
	}

	// More rules than gw2's gray_rules holds.
	extra := int(grayRules.Size) + 8
	var b strings.Builder
	b.WriteString(doc)
	for i := range extra {
		src := fmt.Sprintf("10.%d.%d.%d", 1+i/65536, i/256%256, i%256)
		b.WriteString("  - name: vm-" + src + "\n    match: {vip: vpc, vni: 5001, src: " + src + "}\n    pool: gray\n")
	}
	p2 := stack.Commit(t, e, load(t, b.String()), 2)
	gatewayStatus(t, e, "gw1", func(st engine.GatewayStatus) bool { return st.InSync && st.Version == 2 })
	sameEntries(t, xdp.entries(t), desired(t, p2.Result(), "gw1"))
	st := gatewayStatus(t, e, "gw2", failed)
	want := fmt.Sprintf("gray_rules: intent version 2 needs %d entries, gateway gw2 holds %d (its P4Info size); remove rules or use a larger build",
		extra+2, grayRules.Size) // and vm-10.0.0.5, shadow
	if !strings.Contains(st.LastError, want) {
		t.Fatalf("gw2 error\n got %q\nwant %q", st.LastError, want)
	}
	sameEntries(t, tofAgent.entries(t), want2) // still version 1: nothing written
	// graygw trace tells it: gw2 (the Tofino build) lacks the new rules, each
	// named, and sends a newly moved VM's flow to base where the intent sends
	// it to gray; gw1 holds the intent.
	q := &trace.Query{VNI: 5001, Src: netip.MustParseAddr("10.1.0.0"), Dst: netip.MustParseAddr("10.0.0.1"), Proto: 6, SPort: 1000, DPort: 80}
	for _, gw := range []string{"gw1", "gw2"} {
		rb, err := e.ReadBack(ctx(t), gw)
		if err != nil {
			t.Fatal(err)
		}
		g, err := trace.FromReadBack(rb, q)
		if err != nil {
			t.Fatal(err)
		}
		v := g.VIPs[0]
		switch {
		case gw == "gw1" && (!g.InSync || v.Rule != "vm-10.1.0.0" || v.Pool != "gray" || !v.AgreesWithIntent):
			t.Fatalf("trace through gw1: %+v", g)
		case gw == "gw2" && (g.InSync || g.Drift.MissingCount != extra || g.Drift.DifferCount+g.Drift.ExtraCount != 0 ||
			!strings.HasPrefix(g.Drift.Missing[0], "rule vm-10.") || v.Rule != "" || v.Pool != "base" ||
			v.Intent.Rule != "vm-10.1.0.0" || v.Intent.Pool != "gray" || v.AgreesWithIntent):
			t.Fatalf("trace through gw2: drift %+v, path %+v", g.Drift, v)
		}
	}
	if n := len(tof.received()); n != 1 {
		t.Fatalf("gw2 received %d pipeline pushes, want 1 (its cookie matched)", n)
	}
}

// A gateway whose P4Info does not pass CheckP4Info gets no push and no write;
// its status names the mismatch.
func TestIncompatibleGatewayP4InfoWritesNothing(t *testing.T) {
	bad := tnaInfo(t, func(pi *p4configv1.P4Info) { tnaTable(pi, pipeline.TableVNITenant).MatchFields[0].Bitwidth = 16 })
	a := startAgent(t, nil)
	e, err := engine.New(engine.Config{P4Info: stack.P4Info(t), ElectionID: 10, Interval: time.Hour,
		Retry: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Logger: logger(t), P4InfoFor: func(string) *p4info.Info { return bad }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	st := gatewayStatus(t, e, "gw1", failed)
	want := "the P4Info of gateway gw1: engine: incompatible P4Info: table GrayIngress.vni_tenant: match field vni is 16 bits, want 24"
	if !strings.Contains(st.LastError, want) {
		t.Fatalf("gw1 error\n got %q\nwant %q", st.LastError, want)
	}
	if pi := pushedP4Info(t, a); pi != nil { // and so no entry either: the agent takes none before a pipeline
		t.Fatal("a P4Info was pushed to gw1")
	}
}
