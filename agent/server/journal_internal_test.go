package server

import (
	"io"
	"log/slog"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/journal"
	"github.com/graygw/graygw/agent/p4info"
	"github.com/graygw/graygw/agent/p4info/p4infotest"
	"github.com/graygw/graygw/pipeline"
)

func newTestServer(t testing.TB, dp dataplane.Dataplane, dir string) *Server {
	t.Helper()
	s, err := New(Config{P4Info: p4infotest.Committed(t), Dataplane: dp, StateDir: dir, Generation: "g",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// vipOp builds the journal op inserting vip addr -> (id, pool).
func vipOp(t *testing.T, s *Server, addr, id uint64) jop {
	t.Helper()
	tbl, _ := s.schema.info.Table(pipeline.TableVIP)
	ti := s.schema.tables[tbl.ID]
	act, _ := s.schema.info.Action(pipeline.ActionSetVIP)
	te := &p4v1.TableEntry{TableId: tbl.ID, Match: []*p4v1.FieldMatch{{FieldId: 1,
		FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: p4info.EncodeUint(addr)}}}},
		Action: &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: act.ID, Params: []*p4v1.Action_Param{
			{ParamId: 1, Value: p4info.EncodeUint(id)}, {ParamId: 2, Value: []byte{1}}}}}}}
	e, uerr := parseMatch(ti, te)
	if uerr != nil {
		t.Fatal(uerr)
	}
	e.action, e.params, uerr = parseAction(ti, te.Action)
	if uerr != nil {
		t.Fatal(uerr)
	}
	v := e.value()
	return jop{table: tbl.ID, key: e.key(), value: &v}
}

// TestReplayRollsForwardAnUnfinishedBatch: the agent journals a batch, then dies
// before (or while) applying it. On restart the batch counts as done and the
// dataplane is brought to it; a batch whose failures were journaled skips them.
func TestReplayRollsForwardAnUnfinishedBatch(t *testing.T) {
	dir := t.TempDir()
	mem := dataplane.NewMemory(dataplane.Limits{})
	s := newTestServer(t, mem, dir)
	cfg := &p4v1.ForwardingPipelineConfig{P4Info: s.schema.info.P4Info()}
	if e := s.setPipeline(pipeCommitted, cfg, false); e != nil {
		t.Fatal(e)
	}
	s.Close()

	j, _, err := journal.Open(dir, journal.Options{Generation: "g"}, func([]byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	// Batch 1: two inserts, the second failed at the dataplane (journaled).
	// Batch 2: one insert, never finished.
	if err := j.Append(encodeBatch([]jop{vipOp(t, s, 1, 1), vipOp(t, s, 2, 2)}), encodeFailed([]int{1}),
		encodeBatch([]jop{vipOp(t, s, 3, 3)})); err != nil {
		t.Fatal(err)
	}
	j.Close()

	s2 := newTestServer(t, mem, dir)
	defer s2.Close()
	st := mem.State()
	_, has1 := st.VIPs[1]
	_, has2 := st.VIPs[2]
	_, has3 := st.VIPs[3]
	if !has1 || has2 || !has3 {
		t.Fatalf("dataplane VIPs after replay: %v (want 1 and 3)", st.VIPs)
	}
	if n := s2.entryCount(); n != 2 {
		t.Fatalf("view has %d entries, want 2", n)
	}
}

func TestBatchEncodingRoundTrip(t *testing.T) {
	v := "value"
	ops := []jop{{table: 1, key: "k1", value: &v}, {table: 2, key: ""}, {table: 0x02000005, key: string([]byte{0, 1, 2})}}
	got, err := decodeBatch(encodeBatch(ops)[1:])
	if err != nil || len(got) != 3 || got[0].key != "k1" || *got[0].value != "value" || got[1].value != nil || got[2].table != 0x02000005 {
		t.Fatalf("decodeBatch = %+v, %v", got, err)
	}
	for i := 1; i < len(encodeBatch(ops)); i++ {
		if _, err := decodeBatch(encodeBatch(ops)[1:i]); err == nil {
			t.Fatalf("truncated batch (%d bytes) decoded", i)
		}
	}
}
