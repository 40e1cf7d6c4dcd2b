package server

import (
	"fmt"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4info/p4infotest"
	"github.com/graygw/graygw/model"
)

// seedRequests are valid and invalid write batches over every table; they seed
// FuzzWriteRequest (testdata/fuzz/FuzzWriteRequest holds them, and more).
func seedRequests(t testing.TB) []*p4v1.WriteRequest {
	info := p4infotest.Committed(t)
	tid := func(name string) uint32 {
		tb, err := info.Table(name)
		if err != nil {
			t.Fatal(err)
		}
		return tb.ID
	}
	aid := func(name string) uint32 {
		a, err := info.Action(name)
		if err != nil {
			t.Fatal(err)
		}
		return a.ID
	}
	exact := func(id uint32, v ...byte) *p4v1.FieldMatch {
		return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Exact_{Exact: &p4v1.FieldMatch_Exact{Value: v}}}
	}
	tern := func(id uint32, v, m []byte) *p4v1.FieldMatch {
		return &p4v1.FieldMatch{FieldId: id, FieldMatchType: &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: v, Mask: m}}}
	}
	act := func(name string, params ...[]byte) *p4v1.TableAction {
		a := &p4v1.Action{ActionId: aid(name)}
		for i, v := range params {
			a.Params = append(a.Params, &p4v1.Action_Param{ParamId: uint32(i + 1), Value: v})
		}
		return &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: a}}
	}
	te := func(table string, prio int32, a *p4v1.TableAction, m ...*p4v1.FieldMatch) *p4v1.Entity {
		return &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{TableId: tid(table), Match: m, Priority: prio, Action: a}}}
	}
	u := func(typ p4v1.Update_Type, e *p4v1.Entity) *p4v1.Update { return &p4v1.Update{Type: typ, Entity: e} }
	vip := te("GrayIngress.vip", 0, act("GrayIngress.set_vip", []byte{1}, []byte{1}), exact(1, 10, 255, 0, 1))
	rule := te("GrayIngress.gray_rules", 10, act("GrayIngress.split_pool", []byte{2}, []byte{0x80, 0}),
		tern(2, []byte{0x13, 0x89}, []byte{0xff, 0xff, 0xff}), tern(4, []byte{10, 0, 0, 0}, []byte{255, 0, 0, 0}))
	ins, mod, del := p4v1.Update_INSERT, p4v1.Update_MODIFY, p4v1.Update_DELETE
	return []*p4v1.WriteRequest{
		{Updates: []*p4v1.Update{u(ins, vip), u(ins, rule)}},
		{Updates: []*p4v1.Update{u(ins, vip), u(mod, vip), u(del, vip), u(del, vip)}},
		{Updates: []*p4v1.Update{
			u(ins, te("GrayIngress.vni_tenant", 0, act("GrayIngress.set_tenant", []byte{7}), exact(1, 0x13, 0x89))),
			u(ins, te("GrayIngress.pool_hash", 0, act("GrayIngress.set_hash_mask", []byte{0xff, 0xff, 0xff}, []byte{0}, []byte{0xff, 0xff, 0xff, 0xff},
				[]byte{0}, []byte{0}, []byte{0}, []byte{0}), exact(1, 2))),
			u(ins, te("GrayIngress.backend_select", 0, act("GrayIngress.set_backend", []byte{11}), exact(1, 1), exact(2, 0x0f, 0xff))),
			u(ins, te("GrayIngress.backend", 0, act("GrayIngress.to_backend", []byte{1, 0xff}, []byte{2, 0, 0, 0, 1, 1}, []byte{2, 0, 0, 0, 0xb, 0xb},
				[]byte{10, 2, 0, 11}), exact(1, 11))),
		}},
		{Updates: []*p4v1.Update{u(ins, te("GrayIngress.gray_rules", 0, act("GrayIngress.set_pool", []byte{2}), tern(1, []byte{0}, []byte{0})))}},
		{Updates: []*p4v1.Update{u(mod, &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{
			CounterId: 0x12000001, Index: &p4v1.Index{Index: 3}, Data: &p4v1.CounterData{PacketCount: 1}}}}),
			u(mod, &p4v1.Entity{Entity: &p4v1.Entity_DirectCounterEntry{DirectCounterEntry: &p4v1.DirectCounterEntry{
				TableEntry: vip.GetTableEntry(), Data: &p4v1.CounterData{ByteCount: 5}}}})}},
		{Updates: []*p4v1.Update{u(mod, &p4v1.Entity{Entity: &p4v1.Entity_TableEntry{TableEntry: &p4v1.TableEntry{
			TableId: tid("GrayIngress.vip"), IsDefaultAction: true, Action: act("NoAction")}}})}},
	}
}

// fuzzServer is a server without journal over a small-limits Memory dataplane.
func fuzzServer(t testing.TB) *Server {
	return newTestServer(t, dataplane.NewMemory(dataplane.Limits{MaxPools: 64, MaxMasks: 4}), "")
}

// FuzzWriteRequest feeds arbitrary WriteRequests to the write path and checks it
// never panics and keeps its invariants: one outcome per update; no table over
// its size; the dataplane holds exactly what the view says; everything the view
// holds reads back as a valid entry whose canonical form is its stored key.
func FuzzWriteRequest(f *testing.F) {
	for _, r := range seedRequests(f) {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req p4v1.WriteRequest
		if proto.Unmarshal(data, &req) != nil {
			return
		}
		s := fuzzServer(t)
		s.pipe.committed = &p4v1.ForwardingPipelineConfig{P4Info: s.schema.info.P4Info()}
		for round := 0; round < 2; round++ {
			errs := s.writeBatch(req.GetUpdates())
			if len(errs) != len(req.GetUpdates()) {
				t.Fatalf("%d outcomes for %d updates", len(errs), len(req.GetUpdates()))
			}
			if err := checkInvariants(s); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func checkInvariants(s *Server) error {
	want := model.NewState()
	for _, t := range s.schema.order {
		if int64(len(s.view[t.ID])) > t.Size {
			return fmt.Errorf("table %s holds %d > %d", t.Name, len(s.view[t.ID]), t.Size)
		}
		es, err := s.entries(t)
		if err != nil {
			return err
		}
		for _, e := range es {
			te := e.proto()
			again, uerr := parseMatch(t, te)
			if uerr != nil {
				return fmt.Errorf("table %s: stored entry does not validate: %v", t.Name, uerr)
			}
			if again.key() != e.key() {
				return fmt.Errorf("table %s: key not canonical", t.Name)
			}
			if _, _, uerr := parseAction(t, te.GetAction()); uerr != nil {
				return fmt.Errorf("table %s: stored action does not validate: %v", t.Name, uerr)
			}
			t.bind.fill(want, e)
		}
	}
	got := s.dp.(*dataplane.Memory).State()
	if len(got.VIPs) != len(want.VIPs) || len(got.Tenants) != len(want.Tenants) || len(got.PoolHash) != len(want.PoolHash) ||
		len(got.BackendSelect) != len(want.BackendSelect) || len(got.Backends) != len(want.Backends) || len(got.GrayRules) != len(want.GrayRules) {
		return fmt.Errorf("dataplane and view differ in size")
	}
	for k, v := range want.VIPs {
		if got.VIPs[k] != v {
			return fmt.Errorf("vip %#x: dataplane %+v, view %+v", k, got.VIPs[k], v)
		}
	}
	for k, v := range want.BackendSelect {
		if got.BackendSelect[k] != v {
			return fmt.Errorf("bucket %+v: dataplane %d, view %d", k, got.BackendSelect[k], v)
		}
	}
	for k, v := range want.Backends {
		if got.Backends[k] != v {
			return fmt.Errorf("backend %d differs", k)
		}
	}
	ids := map[model.GrayRule]model.GrayRule{}
	for _, r := range got.GrayRules {
		ids[model.RuleID(r)] = r
	}
	for _, r := range want.GrayRules {
		g, ok := ids[model.RuleID(r)]
		if !ok || g.Action != r.Action || g.Pool != r.Pool || g.Threshold != r.Threshold {
			return fmt.Errorf("gray rule %+v: dataplane %+v", r, g)
		}
	}
	return nil
}
