package engine_test

import (
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/controller/engine"
	"github.com/graygw/graygw/controller/store"
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
	apply(t, e, load(t, intentYAML([]string{a.addr}, threeBackends())), 1)
	waitVersion(t, e, 1)
	got := a.sessions(t)
	if len(got) != 1 || !proto.Equal(got[0], engine.MirrorSession("v1model")) {
		t.Fatalf("clone sessions %v, want %v", got, engine.MirrorSession("v1model"))
	}
	if st := pass(t, e); st.LastResult != engine.ResultOK || len(a.sessions(t)) != 1 {
		t.Fatalf("after another pass: %+v, %d sessions", st, len(a.sessions(t)))
	}
}
