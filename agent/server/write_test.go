package server_test

import (
	"slices"
	"strings"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
)

// TestWriteErrorCodes checks the canonical code of each kind of bad update, one
// update per batch, against an agent holding one VIP and one gray rule.
func TestWriteErrorCodes(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	b := h.b()
	vip := b.VIP(0x0aff0001, 1, 1)
	rule := b.Rule(10, []fm{tern("vni", 5001, 0xffffff)}, 2)
	h.mustWrite(a, ins(vip), ins(rule))

	vipT := b.Table("GrayIngress.vip")
	rulesT := b.Table("GrayIngress.gray_rules")
	with := func(te *p4v1.TableEntry, f func(te *p4v1.TableEntry)) *p4v1.TableEntry {
		te = clone(te)
		f(te)
		return te
	}
	vip6Addr := p4rtest.Addr6(t, "2001:db8:ff::9")
	exactVal := func(v []byte) func(te *p4v1.TableEntry) {
		return func(te *p4v1.TableEntry) { te.Match[0].GetExact().Value = v }
	}
	cases := []struct {
		name string
		u    *p4v1.Update
		code codes.Code
		msg  string // part of the message
	}{
		{"insert existing", ins(vip), codes.AlreadyExists, "already exists"},
		{"insert existing rule", ins(rule), codes.AlreadyExists, "already exists"},
		{"modify missing", mod(b.VIP(0x0aff0002, 1, 1)), codes.NotFound, "no such entry"},
		{"delete missing", del(b.VIP(0x0aff0002, 1, 1)), codes.NotFound, "no such entry"},
		{"delete rule, other priority", del(with(rule, func(te *p4v1.TableEntry) { te.Priority = 11 })), codes.NotFound, "no such entry"},
		{"table id 0", ins(with(vip, func(te *p4v1.TableEntry) { te.TableId = 0 })), codes.InvalidArgument, "table_id 0"},
		{"unknown table id", ins(with(vip, func(te *p4v1.TableEntry) { te.TableId = 0x02000099 })), codes.InvalidArgument, "not a table"},
		{"unknown field id", ins(with(vip, func(te *p4v1.TableEntry) { te.Match[0].FieldId = 2 })), codes.InvalidArgument, "no match field id 2"},
		{"field twice", ins(with(vip, func(te *p4v1.TableEntry) { te.Match = append(te.Match, te.Match[0]) })), codes.InvalidArgument, "given twice"},
		{"exact field missing", ins(with(vip, func(te *p4v1.TableEntry) { te.Match = nil })), codes.InvalidArgument, "missing"},
		{"ternary for exact", ins(with(vip, func(te *p4v1.TableEntry) {
			te.Match[0].FieldMatchType = &p4v1.FieldMatch_Ternary_{Ternary: &p4v1.FieldMatch_Ternary{Value: []byte{1}, Mask: []byte{1}}}
		})), codes.InvalidArgument, "TERNARY match given for a EXACT field"},
		{"no match kind", ins(with(vip, func(te *p4v1.TableEntry) { te.Match[0].FieldMatchType = nil })), codes.InvalidArgument, "no match kind"},
		{"value wider than bitwidth", ins(with(vip, exactVal([]byte{1, 0, 0, 0, 0}))), codes.InvalidArgument, "33 significant bits for bit<32>"},
		{"empty value", ins(with(vip, exactVal([]byte{}))), codes.InvalidArgument, "empty byte string"},
		{"vni wider than 24 bits", ins(b.Entry("GrayIngress.vni_tenant", 0, []fm{exact("vni", 1<<24)}, "GrayIngress.set_tenant", p("tenant_id", 1))),
			codes.InvalidArgument, "25 significant bits for bit<24>"},
		{"ternary all-zero mask", ins(b.Rule(5, []fm{tern("vni", 0, 0)}, 2)), codes.InvalidArgument, "all-zero mask"},
		{"ternary value outside mask", ins(b.Rule(5, []fm{tern("inner_src", 0x0a000001, 0xffffff00)}, 2)), codes.InvalidArgument, "outside mask"},
		{"ternary mask too wide", ins(b.Rule(5, []fm{tern("inner_proto", 1, 0x1ff)}, 2)), codes.InvalidArgument, "bit<8>"},
		{"priority on exact table", ins(with(b.VIP(0x0aff0009, 1, 1), func(te *p4v1.TableEntry) { te.Priority = 1 })), codes.InvalidArgument, "priority must be 0"},
		{"zero priority on ternary table", ins(b.Rule(0, []fm{tern("vni", 1, 0xffffff)}, 2)), codes.InvalidArgument, "priority must be > 0"},
		{"negative priority", ins(b.Rule(-3, []fm{tern("vni", 1, 0xffffff)}, 2)), codes.InvalidArgument, "priority must be > 0"},
		{"insert without action", ins(with(b.VIP(0x0aff0009, 1, 1), func(te *p4v1.TableEntry) { te.Action = nil })), codes.InvalidArgument, "needs an action"},
		{"action of another table", ins(with(b.VIP(0x0aff0009, 1, 1), func(te *p4v1.TableEntry) {
			te.Action = b.Action("GrayIngress.set_tenant", p("tenant_id", 1))
		})), codes.InvalidArgument, "is not an action of table"},
		// The IPv6 tables have their own actions (docs/p4-targets.md "IPv6"):
		// vip's set_vip on vip_v6, gray_rules' set_pool on gray_rules_v6 and
		// the other way round are refused, nothing written.
		{"set_vip on vip_v6", ins(b.Entry("GrayIngress.vip_v6", 0, []fm{{Name: "dst_addr", Value: vip6Addr}},
			"GrayIngress.set_vip", p("vip_id", 1), p("default_pool", 1))), codes.InvalidArgument, "is not an action of table GrayIngress.vip_v6"},
		{"set_vip_v6 on vip", ins(b.Entry("GrayIngress.vip", 0, []fm{exact("dst_addr", 9)},
			"GrayIngress.set_vip_v6", p("vip_id", 1), p("default_pool", 1))), codes.InvalidArgument, "is not an action of table GrayIngress.vip"},
		{"set_pool on gray_rules_v6", ins(b.Entry("GrayIngress.gray_rules_v6", 10, []fm{tern("vni", 5001, 0xffffff)},
			"GrayIngress.set_pool", p("pool_id", 2))), codes.InvalidArgument, "is not an action of table GrayIngress.gray_rules_v6"},
		{"split_pool_v6 on gray_rules", ins(b.Entry("GrayIngress.gray_rules", 10, []fm{tern("vni", 5002, 0xffffff)},
			"GrayIngress.split_pool_v6", p("pool_gray", 2), p("threshold", 1))), codes.InvalidArgument, "is not an action of table GrayIngress.gray_rules"},
		{"unknown action id", ins(with(b.VIP(0x0aff0009, 1, 1), func(te *p4v1.TableEntry) {
			te.Action.GetAction().ActionId = 0x01000099
		})), codes.InvalidArgument, "is not an action of table"},
		{"action profile member", ins(with(b.VIP(0x0aff0009, 1, 1), func(te *p4v1.TableEntry) {
			te.Action = &p4v1.TableAction{Type: &p4v1.TableAction_ActionProfileMemberId{ActionProfileMemberId: 1}}
		})), codes.InvalidArgument, "direct table"},
		{"default-only action on an entry", ins(with(b.VIP(0x0aff0009, 1, 1), func(te *p4v1.TableEntry) {
			te.Action = b.Action("NoAction")
		})), codes.PermissionDenied, "default-only"},
		{"param missing", ins(b.Entry("GrayIngress.vip", 0, []fm{exact("dst_addr", 9)}, "GrayIngress.set_vip", p("vip_id", 1))),
			codes.InvalidArgument, "default_pool missing"},
		{"param twice", ins(b.Entry("GrayIngress.vip", 0, []fm{exact("dst_addr", 9)}, "GrayIngress.set_vip", p("vip_id", 1), p("vip_id", 1), p("default_pool", 1))),
			codes.InvalidArgument, "given twice"},
		{"unknown param id", ins(with(b.VIP(9, 1, 1), func(te *p4v1.TableEntry) {
			te.Action.GetAction().Params = append(te.Action.GetAction().Params, &p4v1.Action_Param{ParamId: 9, Value: []byte{1}})
		})), codes.InvalidArgument, "no parameter id 9"},
		{"param wider than bitwidth", ins(b.Backend(7, 512, 1)), codes.InvalidArgument, "port (bit<9>)"},
		{"param empty", ins(with(b.VIP(9, 1, 1), func(te *p4v1.TableEntry) { te.Action.GetAction().Params[0].Value = nil })),
			codes.InvalidArgument, "empty byte string"},
		{"is_const", ins(with(b.VIP(9, 1, 1), func(te *p4v1.TableEntry) { te.IsConst = true })), codes.InvalidArgument, "is_const"},
		{"idle timeout", ins(with(b.VIP(9, 1, 1), func(te *p4v1.TableEntry) { te.IdleTimeoutNs = 1000 })), codes.InvalidArgument, "idle timeout"},
		{"meter config", ins(with(b.VIP(9, 1, 1), func(te *p4v1.TableEntry) { te.MeterConfig = &p4v1.MeterConfig{Cir: 1} })), codes.InvalidArgument, "no direct meter"},
		{"counter_data without direct counter", ins(with(b.Entry("GrayIngress.vni_tenant", 0, []fm{exact("vni", 5)}, "GrayIngress.set_tenant", p("tenant_id", 1)),
			func(te *p4v1.TableEntry) { te.CounterData = &p4v1.CounterData{} })), codes.InvalidArgument, "no direct counter"},
		{"default entry insert", ins(&p4v1.TableEntry{TableId: vipT.ID, IsDefaultAction: true, Action: b.Action("NoAction")}), codes.InvalidArgument, "only MODIFY"},
		{"default entry delete", del(&p4v1.TableEntry{TableId: vipT.ID, IsDefaultAction: true}), codes.InvalidArgument, "only MODIFY"},
		{"default entry with match", mod(with(vip, func(te *p4v1.TableEntry) { te.IsDefaultAction = true })), codes.InvalidArgument, "no match"},
		{"const default action modify", mod(&p4v1.TableEntry{TableId: rulesT.ID, IsDefaultAction: true, Action: b.Action("NoAction")}),
			codes.PermissionDenied, "default action is const"},
		{"update type unspecified", &p4v1.Update{Entity: ent(vip)}, codes.InvalidArgument, "update type"},
		{"no entity", &p4v1.Update{Type: p4v1.Update_INSERT}, codes.InvalidArgument, "without an entity"},
		{"meter entity", &p4v1.Update{Type: p4v1.Update_MODIFY, Entity: &p4v1.Entity{Entity: &p4v1.Entity_MeterEntry{MeterEntry: &p4v1.MeterEntry{MeterId: 1}}}},
			codes.InvalidArgument, "MeterEntry"},
	}
	for _, c := range cases {
		pe := h.updateErr(a, c.u)
		if pe == nil {
			t.Errorf("%s: accepted, want %v", c.name, c.code)
			continue
		}
		if codes.Code(pe.GetCanonicalCode()) != c.code || !strings.Contains(pe.GetMessage(), c.msg) {
			t.Errorf("%s: %v %q, want %v containing %q", c.name, codes.Code(pe.GetCanonicalCode()), pe.GetMessage(), c.code, c.msg)
		}
		if pe.GetSpace() != "graygw-agent" {
			t.Errorf("%s: space %q", c.name, pe.GetSpace())
		}
	}
	// Nothing above changed the state.
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{})), []*p4v1.Entity{ent(vip), ent(rule)})
}

func TestDeleteIgnoresNonKeyFields(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	vip := h.b().VIP(0x0aff0001, 1, 1)
	h.mustWrite(a, ins(vip))
	d := clone(vip)
	d.Action = &p4v1.TableAction{Type: &p4v1.TableAction_Action{Action: &p4v1.Action{ActionId: 12345}}}
	d.IdleTimeoutNs = 5
	h.mustWrite(a, del(d))
	h.wantEntries(t, 0, "after deleting with other non-key fields")
}

func TestBatchContinueOnError(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	b := h.b()
	v1, v2 := b.VIP(1, 1, 1), b.VIP(2, 2, 1)
	got := h.updateCodes(a,
		ins(v1),                    // OK
		ins(v1),                    // ALREADY_EXISTS (inserted by the update before)
		del(b.VIP(3, 1, 1)),        // NOT_FOUND
		ins(v2),                    // OK
		mod(b.VIP(2, 2, 7)),        // OK: sees the insert before it
		ins(b.Backend(7, 1000, 1)), // INVALID_ARGUMENT
		del(v1),                    // OK
		mod(v1),                    // NOT_FOUND: deleted just before
	)
	want := []codes.Code{codes.OK, codes.AlreadyExists, codes.NotFound, codes.OK, codes.OK, codes.InvalidArgument, codes.OK, codes.NotFound}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("update %d: %v, want %v", i, got[i], want[i])
		}
	}
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{})), []*p4v1.Entity{ent(b.VIP(2, 2, 7))})
	if st := h.mem.State(); len(st.VIPs) != 1 || st.VIPs[2].DefaultPool != 7 {
		t.Fatalf("dataplane VIPs %v", st.VIPs)
	}
}

func TestAtomicityModesUnimplemented(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	for _, m := range []p4v1.WriteRequest_Atomicity{p4v1.WriteRequest_ROLLBACK_ON_ERROR, p4v1.WriteRequest_DATAPLANE_ATOMIC} {
		req := a.writeReq(ins(h.b().VIP(1, 1, 1)))
		req.Atomicity = m
		if _, err := h.c.Write(ctx(t), req); status.Code(err) != codes.Unimplemented {
			t.Errorf("%v: %v, want UNIMPLEMENTED", m, err)
		}
	}
	h.wantEntries(t, 0, "after refused batches")
}

func TestTableFull(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	b := h.b()
	var ups []*p4v1.Update
	for i := 0; i < pipeline.VIPTableSize; i++ {
		ups = append(ups, ins(b.VIP(uint32(0x0a000000+i), uint64(i), 1)))
	}
	h.mustWrite(a, ups...)
	got := h.updateCodes(a, ins(b.VIP(0x0b000000, 1, 1)), mod(b.VIP(0x0a000000, 9, 9)))
	if got[0] != codes.ResourceExhausted || got[1] != codes.OK {
		t.Fatalf("insert into a full table: %v, want RESOURCE_EXHAUSTED then OK for a modify", got)
	}
	// Deleting one makes room, within the same batch.
	got = h.updateCodes(a, del(b.VIP(0x0a000000, 9, 9)), ins(b.VIP(0x0b000000, 1, 1)), ins(b.VIP(0x0b000001, 1, 1)))
	if got[0] != codes.OK || got[1] != codes.OK || got[2] != codes.ResourceExhausted {
		t.Fatalf("delete then two inserts: %v", got)
	}
}

// TestTargetLimits: what the P4Info allows but the XDP target cannot hold,
// imitated by the Memory dataplane's XDPLimits: buckets >= 4096 (OUT_OF_RANGE),
// a 65th pool owning buckets and more gray rule masks than the tuple-space
// search visits (RESOURCE_EXHAUSTED). Any pool id owns buckets.
func TestTargetLimits(t *testing.T) {
	l := dataplane.XDPLimits()
	l.MaxMasks = 1
	h := newHarness(t, withLimits(l))
	a := h.ready()
	b := h.b()
	var ups []*p4v1.Update
	for i := range 63 {
		ups = append(ups, ins(b.Bucket(uint64(0x8000+i), 0, 1)))
	}
	if got := h.updateCodes(a, ups...); slices.ContainsFunc(got, func(c codes.Code) bool { return c != codes.OK }) {
		t.Fatalf("63 pools: %v", got)
	}
	got := h.updateCodes(a, ins(b.Bucket(0xffff, 4095, 1)), ins(b.Bucket(0xffff, 4094, 1)), ins(b.Bucket(7, 0, 1)),
		ins(b.Bucket(0xffff, 4096, 1)),
		ins(b.Rule(5, []fm{tern("vni", 1, 0xffffff)}, 2)), ins(b.Rule(6, []fm{tern("vni", 2, 0xffffff)}, 2)),
		ins(b.Rule(7, []fm{tern("inner_src", 1, 0xffffffff)}, 2)),
		del(b.Bucket(0x8000, 0, 1)), ins(b.Bucket(7, 0, 1)))
	want := []codes.Code{codes.OK, codes.OK, codes.ResourceExhausted, codes.OutOfRange,
		codes.OK, codes.OK, codes.ResourceExhausted,
		codes.OK, codes.OK} // pool 0x8000's last bucket gone: room for pool 7
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("update %d: %v, want %v", i, got[i], want[i])
		}
	}
	h.wantEntries(t, 63+2+2, "the accepted ones")
}

// failingDP refuses backend 666, to show a dataplane error fails one update.
type failingDP struct{ *dataplane.Memory }

func (f failingDP) SetBackendEntry(id uint16, b model.Backend) error {
	if id == 666 {
		return errBoom
	}
	return f.Memory.SetBackendEntry(id, b)
}

var errBoom = status.Error(codes.Aborted, "boom")

func TestDataplaneFailureIsPerUpdate(t *testing.T) {
	mem := dataplane.NewMemory(dataplane.Limits{})
	h := newHarness(t, withDataplane(failingDP{mem}), withStateDir(t.TempDir()))
	a := h.ready()
	b := h.b()
	got := h.updateCodes(a, ins(b.Backend(1, 1, 1)), ins(b.Backend(666, 1, 1)), ins(b.Backend(2, 1, 1)))
	if got[0] != codes.OK || got[1] != codes.Internal || got[2] != codes.OK {
		t.Fatalf("codes %v, want OK INTERNAL OK", got)
	}
	want := []*p4v1.Entity{ent(b.Backend(1, 1, 1)), ent(b.Backend(2, 1, 1))}
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{})), want)
	// The failure is journaled: a restart does not resurrect the entry.
	h.restart()
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{})), want)
}

func TestNonCanonicalBytesAccepted(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	b := h.b()
	// Leading zero bytes are accepted (spec §8.3 Bytestrings) and read back canonical.
	padded := b.Entry("GrayIngress.backend_select", 0,
		[]fm{{Name: "pool_id", Value: []byte{0, 0, 0, 1}}, {Name: "bucket", Value: []byte{0, 0}}},
		"GrayIngress.set_backend", param{Name: "backend_id", Value: []byte{0, 0, 0, 0, 7}})
	h.mustWrite(a, ins(padded))
	canon := b.Bucket(1, 0, 7)
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{})), []*p4v1.Entity{ent(canon)})
	// And the canonical form names the same entry.
	h.mustWrite(a, del(canon))
	rule := b.Entry("GrayIngress.gray_rules", 3, []fm{{Name: "vni", Value: []byte{0, 0, 0, 0x13, 0x89}, Mask: []byte{0, 0xff, 0xff, 0xff}}},
		"GrayIngress.set_pool", p("pool_id", 2))
	h.mustWrite(a, ins(rule))
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{})), []*p4v1.Entity{ent(b.Rule(3, []fm{tern("vni", 5001, 0xffffff)}, 2))})
	if st := h.mem.State(); len(st.GrayRules) != 1 || st.GrayRules[0].Match.VNI != 5001 || st.GrayRules[0].Mask.VNI != 0xffffff {
		t.Fatalf("dataplane rule %+v", st.GrayRules)
	}
}

func TestWriteWrongDeviceAndEmptyBatch(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	if err := h.write(a); err != nil {
		t.Fatalf("empty batch = %v", err)
	}
	req := a.writeReq(ins(h.b().VIP(1, 1, 1)))
	req.DeviceId = 9
	if _, err := h.c.Write(ctx(t), req); status.Code(err) != codes.NotFound {
		t.Fatalf("device 9: %v, want NOT_FOUND", err)
	}
}

// refuseFirst refuses the first SetBackendEntry of backend 666 and accepts the rest.
type refuseFirst struct {
	*dataplane.Memory
	refused *bool
}

func (f refuseFirst) SetBackendEntry(id uint16, b model.Backend) error {
	if id == 666 && !*f.refused {
		*f.refused = true
		return errBoom
	}
	return f.Memory.SetBackendEntry(id, b)
}

// TestRefusedUpdateIsNotSeenByLaterOnes: updates of a batch see the earlier
// ones that succeeded, not one the dataplane refused (CONTINUE_ON_ERROR, spec
// §12.2): the refused insert neither makes the table full for the next insert
// nor makes a second insert of its key ALREADY_EXISTS. And a restart replays
// exactly what was applied.
func TestRefusedUpdateIsNotSeenByLaterOnes(t *testing.T) {
	h := newHarness(t, withDataplane(refuseFirst{dataplane.NewMemory(dataplane.Limits{}), new(bool)}), withStateDir(t.TempDir()))
	a := h.ready()
	b := h.b()
	var fill []*p4v1.Update
	for id := range pipeline.BackendTableSize - 1 { // one place left
		fill = append(fill, ins(b.Backend(uint64(1000+id), 1, 1)))
	}
	h.mustWrite(a, fill...)
	got := h.updateCodes(a, ins(b.Backend(666, 1, 1)), ins(b.Backend(667, 1, 1)), ins(b.Backend(666, 1, 1)))
	want := []codes.Code{codes.Internal, codes.OK, codes.ResourceExhausted}
	if !slices.Equal(got, want) {
		t.Fatalf("refused insert, insert into the last place, insert into a full table: %v, want %v", got, want)
	}
	got = h.updateCodes(a, del(b.Backend(667, 1, 1)), ins(b.Backend(666, 2, 2)), mod(b.Backend(666, 3, 3)), ins(b.Backend(666, 3, 3)))
	want = []codes.Code{codes.OK, codes.OK, codes.OK, codes.AlreadyExists}
	if !slices.Equal(got, want) {
		t.Fatalf("delete, insert, modify, insert again: %v, want %v", got, want)
	}
	before := h.read(ent(&p4v1.TableEntry{TableId: b.Backend(1, 1, 1).TableId}))
	if len(before) != pipeline.BackendTableSize {
		t.Fatalf("%d backends, want %d", len(before), pipeline.BackendTableSize)
	}
	h.restart()
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{TableId: b.Backend(1, 1, 1).TableId})), before)
}

// TestRefusedUpdateThenSameKey: a second insert of the key the dataplane
// refused in the same batch is tried, not refused as ALREADY_EXISTS.
func TestRefusedUpdateThenSameKey(t *testing.T) {
	h := newHarness(t, withDataplane(refuseFirst{dataplane.NewMemory(dataplane.Limits{}), new(bool)}), withStateDir(t.TempDir()))
	a := h.ready()
	b := h.b()
	got := h.updateCodes(a, ins(b.Backend(666, 1, 1)), ins(b.Backend(666, 2, 2)), ins(b.Backend(1, 1, 1)))
	want := []codes.Code{codes.Internal, codes.OK, codes.OK}
	if !slices.Equal(got, want) {
		t.Fatalf("codes %v, want %v", got, want)
	}
	wantEnts := []*p4v1.Entity{ent(b.Backend(1, 1, 1)), ent(b.Backend(666, 2, 2))}
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{})), wantEnts)
	h.restart()
	p4rtest.SameEntities(t, h.read(ent(&p4v1.TableEntry{})), wantEnts)
}
