package engine_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	p4configv1 "github.com/p4lang/p4runtime/go/p4/config/v1"
	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/pipeline"
)

// tofino emulates a Tofino target over the XDP agent: it takes the TNA build's
// P4Info ("pipe." names) in SetForwardingPipelineConfig, keeps it, hands the
// agent the same P4Info under the v1model names (the agent runs only the
// project's names), and returns the P4Info it was given in
// GetForwardingPipelineConfig. Entries go through unchanged: ids are the same.
type tofino struct {
	p4v1.P4RuntimeServer
	mu     sync.Mutex
	pushed []*p4configv1.P4Info
}

func (s *tofino) SetForwardingPipelineConfig(ctx context.Context, req *p4v1.SetForwardingPipelineConfigRequest) (*p4v1.SetForwardingPipelineConfigResponse, error) {
	req = proto.Clone(req).(*p4v1.SetForwardingPipelineConfigRequest)
	if cfg := req.GetConfig(); cfg.GetP4Info() != nil {
		s.mu.Lock()
		s.pushed = append(s.pushed, cfg.GetP4Info())
		s.mu.Unlock()
		cfg.P4Info = p4info.TrimNamePrefix(cfg.GetP4Info(), p4info.TNAPrefix)
	}
	return s.P4RuntimeServer.SetForwardingPipelineConfig(ctx, req)
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
// 1, emulated) the TNA build's, names under "pipe." and gray_rules 8192. Each
// receives its own in SetForwardingPipelineConfig; an intent that fits both
// converges on both; one with 9000 more rules converges on gw1 and is refused on
// gw2 from the size its P4Info declares, nothing written there.
func TestMixedFleetP4InfoPerGateway(t *testing.T) {
	tna := tnaInfo(t, nil)
	xdp := startAgent(t, nil)
	tof := &tofino{}
	tofAgent := &agent{t: t, addr: "127.0.0.1:0", dp: dataplane.NewMemory(dataplane.Limits{}), dir: t.TempDir(),
		info: smallInfo(t, map[string]int64{pipeline.TableGrayRules: 8192}),
		wrap: func(s p4v1.P4RuntimeServer) p4v1.P4RuntimeServer { tof.P4RuntimeServer = s; return tof }}
	tofAgent.start()
	t.Cleanup(tofAgent.kill)

	e, err := engine.New(engine.Config{P4Info: projectInfo(t), ElectionID: 10, Interval: time.Hour,
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
	doc := intentYAML(addrs, threeBackends())
	p := apply(t, e, load(t, doc), 1)
	waitVersion(t, e, 1)
	sameEntries(t, xdp.entries(t), desired(t, p.Result(), "gw1"))
	sameEntries(t, tofAgent.entries(t), desired(t, p.Result(), "gw2"))
	if d := p4info.Diff(projectInfo(t).P4Info(), pushedP4Info(t, xdp)); d != nil {
		t.Fatalf("gw1 runs another P4Info than the project's: %v", d)
	}
	got := tof.received()
	if len(got) != 1 || !proto.Equal(got[0], tna.P4Info()) {
		t.Fatalf("gw2 received %d P4Infos, want exactly the TNA one", len(got))
	}

	// 9000 more rules: past gw2's 8192.
	var b strings.Builder
	b.WriteString(doc)
	for i := range 9000 {
		src := fmt.Sprintf("10.1.%d.%d", i/256, i%256)
		b.WriteString("  - name: vm-" + src + "\n    match: {vip: vpc, vni: 5001, src: " + src + "}\n    pool: gray\n")
	}
	p2 := apply(t, e, load(t, b.String()), 2)
	gatewayStatus(t, e, "gw1", func(st engine.GatewayStatus) bool { return st.InSync && st.Version == 2 })
	sameEntries(t, xdp.entries(t), desired(t, p2.Result(), "gw1"))
	st := gatewayStatus(t, e, "gw2", failed)
	want := "gray_rules: intent version 2 needs 9001 entries, gateway gw2 holds 8192 (its P4Info size); remove rules or use a larger build"
	if !strings.Contains(st.LastError, want) {
		t.Fatalf("gw2 error\n got %q\nwant %q", st.LastError, want)
	}
	sameEntries(t, tofAgent.entries(t), desired(t, p.Result(), "gw2")) // still version 1: nothing written
	if n := len(tof.received()); n != 1 {
		t.Fatalf("gw2 received %d pipeline pushes, want 1 (its cookie matched)", n)
	}
}

// A gateway whose P4Info does not pass CheckP4Info gets no push and no write;
// its status names the mismatch.
func TestIncompatibleGatewayP4InfoWritesNothing(t *testing.T) {
	bad := tnaInfo(t, func(pi *p4configv1.P4Info) { tnaTable(pi, pipeline.TableVNITenant).MatchFields[0].Bitwidth = 16 })
	a := startAgent(t, nil)
	e, err := engine.New(engine.Config{P4Info: projectInfo(t), ElectionID: 10, Interval: time.Hour,
		Retry: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Logger: logger(t), P4InfoFor: func(string) *p4info.Info { return bad }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	apply(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	st := gatewayStatus(t, e, "gw1", failed)
	want := "the P4Info of gateway gw1: engine: incompatible P4Info: table GrayIngress.vni_tenant: match field vni is 16 bits, want 24"
	if !strings.Contains(st.LastError, want) {
		t.Fatalf("gw1 error\n got %q\nwant %q", st.LastError, want)
	}
	if pi := pushedP4Info(t, a); pi != nil { // and so no entry either: the agent takes none before a pipeline
		t.Fatal("a P4Info was pushed to gw1")
	}
}
