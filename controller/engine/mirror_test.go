package engine_test

import (
	"context"
	"testing"
	"time"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
	"github.com/graygw/graygw/internal/stack"
	"github.com/graygw/graygw/pipeline"
)

// sessions reads the agent's clone sessions.
func (a *agent) sessions(t *testing.T) []*p4v1.Entity {
	t.Helper()
	return a.read(t, &p4v1.Entity{Entity: &p4v1.Entity_PacketReplicationEngineEntry{PacketReplicationEngineEntry: &p4v1.PacketReplicationEngineEntry{}}})
}

// A gateway whose pipeline has the mirror gets its clone session with the
// pipeline, and a later pass keeps it (one session, the pass OK).
func TestMirrorSessionWrittenWithThePipeline(t *testing.T) {
	a := startAgent(t, nil)
	e := newEngine(t, store.NewMemory(), 10)
	stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	stack.WaitVersion(t, e, 1)
	got := a.sessions(t)
	if len(got) != 1 || !proto.Equal(got[0], engine.MirrorSession("v1model")) {
		t.Fatalf("clone sessions %v, want %v", got, engine.MirrorSession("v1model"))
	}
	if st := pass(t, e); st.LastResult != engine.ResultOK || len(a.sessions(t)) != 1 {
		t.Fatalf("after another pass: %+v, %d sessions", st, len(a.sessions(t)))
	}
}

// A Tofino gateway gets the mirror session on its recirculation port, its
// P4Info's names under an older bf-p4c's "pipe." prefix too.
func TestMirrorSessionOnTofino(t *testing.T) {
	tna := tnaInfo(t, nil) // "pipe." names, arch tna
	agentInfo := stack.SizedP4Info(t, map[string]int64{pipeline.TableGrayRules: 8192})
	tof := newTofino(t, tna, agentInfo)
	a := &agent{t: t, addr: "127.0.0.1:0", dp: dataplane.NewMemory(dataplane.Limits{}), dir: t.TempDir(), info: agentInfo,
		wrap: func(s p4v1.P4RuntimeServer) p4v1.P4RuntimeServer { tof.P4RuntimeServer = s; return tof }}
	a.start()
	t.Cleanup(a.kill)
	e, err := engine.New(engine.Config{P4Info: stack.P4Info(t), ElectionID: 10, Interval: time.Hour,
		Retry: 50 * time.Millisecond, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Store: store.NewMemory(), Logger: logger(t), P4InfoFor: func(string) *p4info.Info { return tna }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	stack.Commit(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	stack.WaitVersion(t, e, 1)
	got := a.sessions(t)
	if len(got) != 1 || !proto.Equal(got[0], engine.MirrorSession("tna")) ||
		got[0].GetPacketReplicationEngineEntry().GetCloneSessionEntry().GetReplicas()[0].GetEgressPort() != pipeline.MirrorPortTofino {
		t.Fatalf("clone sessions %v, want one to port %d", got, pipeline.MirrorPortTofino)
	}
}
