package server_test

import (
	"encoding/hex"
	"maps"
	"net/netip"
	"testing"

	p4v1 "github.com/p4lang/p4runtime/go/p4/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/graygw/graygw/agent/dataplane"
	"github.com/graygw/graygw/agent/p4rtest"
	"github.com/graygw/graygw/internal/testpkt"
	"github.com/graygw/graygw/model"
	"github.com/graygw/graygw/pipeline"
	"github.com/graygw/graygw/testvectors"
)

var (
	ip32         = p4rtest.IP32
	stateUpdates = p4rtest.StateUpdates
)

// TestTestVectorsThroughP4Runtime writes every test-vector state through the
// agent and checks that the dataplane it programmed decides every case as
// expected: the translation from P4Runtime entries to the dataplane is right
// for every table, action and parameter.
func TestTestVectorsThroughP4Runtime(t *testing.T) {
	f, f6 := testvectors.Both(t)
	t.Run("pipeline.json", func(t *testing.T) { vectorsThroughP4Runtime(t, f) })
	t.Run("ipv6.json", func(t *testing.T) { vectorsThroughP4Runtime(t, f6) })
}

func vectorsThroughP4Runtime(t *testing.T, f *testvectors.File) {
	for name, st := range f.States {
		h := newHarness(t)
		a := h.ready()
		h.mustWrite(a, stateUpdates(t, h.b(), st)...)
		// The programmed dataplane equals the model's reading of the state.
		want, err := st.Model()
		if err != nil {
			t.Fatal(err)
		}
		got := h.mem.State()
		if len(got.VIPs) != len(want.VIPs) || len(got.GrayRules) != len(want.GrayRules) || len(got.BackendSelect) != len(want.BackendSelect) ||
			len(got.Backends) != len(want.Backends) || len(got.Tenants) != len(want.Tenants) || len(got.PoolHash) != len(want.PoolHash) ||
			len(got.VLANAccept) != len(want.VLANAccept) || len(got.PortVLAN) != len(want.PortVLAN) ||
			!maps.Equal(got.VIPsV6, want.VIPsV6) || len(got.GrayRulesV6) != len(want.GrayRulesV6) {
			t.Fatalf("state %s: dataplane table sizes differ from the model's", name)
		}
		for i := range want.GrayRules {
			if got.GrayRules[i] != want.GrayRules[i] {
				t.Errorf("state %s: gray rule %d = %+v, want %+v", name, i, got.GrayRules[i], want.GrayRules[i])
			}
		}
		for i := range want.GrayRulesV6 {
			if model.RuleIDV6(got.GrayRulesV6[i]) != model.RuleIDV6(want.GrayRulesV6[i]) || got.GrayRulesV6[i].Pool != want.GrayRulesV6[i].Pool {
				t.Errorf("state %s: gray rule v6 %d = %+v, want %+v", name, i, got.GrayRulesV6[i], want.GrayRulesV6[i])
			}
		}
		for k, v := range want.Backends {
			if got.Backends[k] != v {
				t.Errorf("state %s: backend %d = %+v, want %+v", name, k, got.Backends[k], v)
			}
		}
		n := 0
		for _, c := range f.Cases {
			if c.State != name {
				continue
			}
			n++
			frame, err := c.Frame()
			if err != nil {
				t.Fatal(err)
			}
			r := h.mem.ProcessPort(c.InPort, frame)
			e := c.Expect
			if r.IPv6 {
				r.Rule = r.RuleV6 // Expect.Rule indexes gray_rules_v6 for an IPv6 flow
			}
			if r.Verdict.String() != e.Verdict || r.Reason.String() != e.Reason || r.Port != e.Port || r.Rule != e.Rule ||
				r.Pool != e.Pool || r.BackendID != e.BackendID || r.Bucket != e.Bucket {
				t.Errorf("case %s: got %v/%v port %d rule %d pool %d bucket %d backend %d; want %s/%s port %d rule %d pool %d bucket %d backend %d",
					c.Name, r.Verdict, r.Reason, r.Port, r.Rule, r.Pool, r.Bucket, r.BackendID,
					e.Verdict, e.Reason, e.Port, e.Rule, e.Pool, e.Bucket, e.BackendID)
			}
			if e.Packet != "" && hex.EncodeToString(r.Frame) != e.Packet {
				t.Errorf("case %s: rewritten frame differs", c.Name)
			}
		}
		if n == 0 {
			t.Fatalf("state %s has no cases", name)
		}
	}
}

func counterEntity(id uint32, idx *p4v1.Index) *p4v1.Entity {
	return &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{CounterId: id, Index: idx}}}
}

func directEntity(te *p4v1.TableEntry) *p4v1.Entity {
	return &p4v1.Entity{Entity: &p4v1.Entity_DirectCounterEntry{DirectCounterEntry: &p4v1.DirectCounterEntry{TableEntry: te}}}
}

func TestCountersFollowTraffic(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	b := h.b()
	f, err := testvectors.Committed()
	if err != nil {
		t.Fatal(err)
	}
	h.mustWrite(a, stateUpdates(t, b, f.States["basic"])...)

	// Run every basic case 3 times and keep our own tally from the results.
	drops := map[pipeline.Reason]dataplane.Counter{}
	vips := map[uint32]dataplane.Counter{}
	backends := map[uint16]dataplane.Counter{}
	rules := map[int]dataplane.Counter{}
	add := func(c dataplane.Counter, n int) dataplane.Counter {
		return dataplane.Counter{Packets: c.Packets + 1, Bytes: c.Bytes + uint64(n)}
	}
	for round := 0; round < 3; round++ {
		for _, c := range f.Cases {
			frame, _ := c.Frame()
			r := h.mem.Process(frame)
			if r.Reason != pipeline.None {
				drops[r.Reason] = add(drops[r.Reason], len(frame))
			}
			if r.VIPHit {
				dst := model.Parse(frame).OuterDst
				vips[dst] = add(vips[dst], len(frame))
			}
			if r.Rule >= 0 {
				rules[r.Rule] = add(rules[r.Rule], len(frame))
			}
			if r.Verdict == model.Forward {
				backends[r.BackendID] = add(backends[r.BackendID], len(frame))
			}
		}
	}
	if len(drops) < 5 || len(vips) == 0 || len(backends) == 0 || len(rules) == 0 {
		t.Fatalf("the cases did not exercise every counter: %d reasons, %d vips, %d backends, %d rules", len(drops), len(vips), len(backends), len(rules))
	}

	dr, _ := b.Info.Counter("GrayIngress.drop_reasons")
	// All cells, by wildcard counter id and by id.
	for _, q := range []*p4v1.Entity{counterEntity(0, nil), counterEntity(dr.ID, nil)} {
		all := h.read(q)
		var got []*p4v1.Entity
		for _, e := range all {
			if e.GetCounterEntry().GetCounterId() == dr.ID {
				got = append(got, e)
			}
		}
		// The wildcard reads the mirror counters' cells too.
		if q.GetCounterEntry().GetCounterId() == 0 && len(all) != pipeline.NumReasons+pipeline.MirrorIDs+pipeline.BackendTableSize {
			t.Fatalf("wildcard counter read: %d cells, want drop_reasons, mirror_counter and mirror_backend_counter", len(all))
		}
		if len(got) != pipeline.NumReasons {
			t.Fatalf("drop_reasons read: %d cells", len(got))
		}
		for _, e := range got {
			ce := e.GetCounterEntry()
			want := drops[pipeline.Reason(ce.GetIndex().GetIndex())]
			if ce.GetCounterId() != dr.ID || ce.GetData().GetPacketCount() != int64(want.Packets) || ce.GetData().GetByteCount() != int64(want.Bytes) {
				t.Errorf("drop_reasons[%d] = %v, want %+v", ce.GetIndex().GetIndex(), ce.GetData(), want)
			}
		}
	}
	one := h.read(counterEntity(dr.ID, &p4v1.Index{Index: int64(pipeline.NotVIP)}))
	if len(one) != 1 || one[0].GetCounterEntry().GetData().GetPacketCount() != int64(drops[pipeline.NotVIP].Packets) {
		t.Fatalf("drop_reasons[NOT_VIP] = %v", one)
	}
	for _, c := range []struct {
		idx  int64
		code codes.Code
	}{{pipeline.NumReasons, codes.OutOfRange}, {1 << 40, codes.OutOfRange}, {-1, codes.InvalidArgument}} {
		// One entity: the RPC's own status carries the code (the issue: a read
		// past the array answered UNKNOWN), and the detail too.
		_, err := h.readErr(counterEntity(dr.ID, &p4v1.Index{Index: c.idx}))
		if pes := p4Errors(err); len(pes) != 1 || codes.Code(pes[0].GetCanonicalCode()) != c.code || status.Code(err) != c.code {
			t.Errorf("drop_reasons[%d]: %v, want %v", c.idx, err, c.code)
		}
	}
	_, err = h.readErr(counterEntity(0x12000099, nil))
	if pes := p4Errors(err); len(pes) != 1 || codes.Code(pes[0].GetCanonicalCode()) != codes.InvalidArgument {
		t.Errorf("unknown counter id: %v", err)
	}

	// Direct counters: by DirectCounterEntry and by TableEntry.counter_data.
	vipT := b.Table("GrayIngress.vip")
	for addr, want := range vips {
		key := b.VIP(addr, 0, 0)
		got := h.read(directEntity(&p4v1.TableEntry{TableId: vipT.ID, Match: key.Match}))
		if len(got) != 1 || got[0].GetDirectCounterEntry().GetData().GetPacketCount() != int64(want.Packets) ||
			got[0].GetDirectCounterEntry().GetData().GetByteCount() != int64(want.Bytes) {
			t.Errorf("vip %#x counter = %v, want %+v", addr, got, want)
		}
		withData := h.read(ent(&p4v1.TableEntry{TableId: vipT.ID, Match: key.Match, CounterData: &p4v1.CounterData{}}))
		if len(withData) != 1 || withData[0].GetTableEntry().GetCounterData().GetPacketCount() != int64(want.Packets) ||
			withData[0].GetTableEntry().GetAction() == nil {
			t.Errorf("vip %#x entry with counter_data = %v", addr, withData)
		}
	}
	beT := b.Table("GrayIngress.backend")
	for _, e := range h.read(directEntity(&p4v1.TableEntry{TableId: beT.ID})) {
		d := e.GetDirectCounterEntry()
		id := d.GetTableEntry().GetMatch()[0].GetExact().GetValue()
		want := backends[uint16(id[0])]
		if d.GetData().GetPacketCount() != int64(want.Packets) {
			t.Errorf("backend %v counter %v, want %+v", id, d.GetData(), want)
		}
	}
	// Gray rules: the rule at state index i was the i-th inserted.
	basic := f.States["basic"]
	for i, r := range basic.GrayRules {
		ups := stateUpdates(t, b, testvectors.State{GrayRules: []testvectors.RuleEntry{r}})
		te := ups[0].GetEntity().GetTableEntry()
		got := h.read(directEntity(&p4v1.TableEntry{TableId: te.TableId, Match: te.Match, Priority: te.Priority}))
		if len(got) != 1 || got[0].GetDirectCounterEntry().GetData().GetPacketCount() != int64(rules[i].Packets) {
			t.Errorf("gray rule %d counter = %v, want %+v", i, got, rules[i])
		}
	}
	// Every direct counter of every table.
	if n := len(h.read(directEntity(&p4v1.TableEntry{}))); n != len(basic.VIP)+len(basic.GrayRules)+len(basic.Backend) {
		t.Errorf("wildcard direct counter read: %d entries", n)
	}
	// Errors: a table without direct counter, an entry that does not exist.
	_, err = h.readErr(directEntity(&p4v1.TableEntry{TableId: b.Table("GrayIngress.vni_tenant").ID}))
	if pes := p4Errors(err); len(pes) != 1 || codes.Code(pes[0].GetCanonicalCode()) != codes.InvalidArgument {
		t.Errorf("direct counter of vni_tenant: %v", err)
	}
	_, err = h.readErr(directEntity(&p4v1.TableEntry{TableId: vipT.ID, Match: b.VIP(0x01020304, 0, 0).Match}))
	if pes := p4Errors(err); len(pes) != 1 || codes.Code(pes[0].GetCanonicalCode()) != codes.NotFound {
		t.Errorf("direct counter of a missing vip: %v", err)
	}

	// More traffic: the counters increase by exactly what was sent.
	frame := testvectors.PlainTo(testvectors.NotAVIP, testpktTCP())
	for i := 0; i < 10; i++ {
		h.mem.Process(frame)
	}
	got := h.read(counterEntity(dr.ID, &p4v1.Index{Index: int64(pipeline.NotVIP)}))
	if d := got[0].GetCounterEntry().GetData(); d.GetPacketCount() != int64(drops[pipeline.NotVIP].Packets)+10 ||
		d.GetByteCount() != int64(drops[pipeline.NotVIP].Bytes)+10*int64(len(frame)) {
		t.Errorf("NOT_VIP after 10 more packets = %v", d)
	}
}

func TestCounterWrites(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	b := h.b()
	dr, _ := b.Info.Counter("GrayIngress.drop_reasons")
	vip := b.VIP(0x0aff0001, 1, 1)
	h.mustWrite(a, ins(vip))
	modCounter := func(idx *p4v1.Index, d *p4v1.CounterData) *p4v1.Update {
		return &p4v1.Update{Type: p4v1.Update_MODIFY, Entity: &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{
			CounterId: dr.ID, Index: idx, Data: d}}}}
	}
	h.mustWrite(a, modCounter(nil, &p4v1.CounterData{PacketCount: 1, ByteCount: 2}), modCounter(&p4v1.Index{Index: 4}, &p4v1.CounterData{PacketCount: 5, ByteCount: 500}))
	for _, e := range h.read(counterEntity(dr.ID, nil)) {
		ce := e.GetCounterEntry()
		want := int64(1)
		if ce.GetIndex().GetIndex() == 4 {
			want = 5
		}
		if ce.GetData().GetPacketCount() != want {
			t.Errorf("cell %d = %v", ce.GetIndex().GetIndex(), ce.GetData())
		}
	}
	dce := &p4v1.DirectCounterEntry{TableEntry: &p4v1.TableEntry{TableId: vip.TableId, Match: vip.Match}, Data: &p4v1.CounterData{PacketCount: 9, ByteCount: 90}}
	h.mustWrite(a, &p4v1.Update{Type: p4v1.Update_MODIFY, Entity: &p4v1.Entity{Entity: &p4v1.Entity_DirectCounterEntry{DirectCounterEntry: dce}}})
	if got := h.read(directEntity(&p4v1.TableEntry{TableId: vip.TableId, Match: vip.Match})); got[0].GetDirectCounterEntry().GetData().GetByteCount() != 90 {
		t.Errorf("vip counter after write = %v", got)
	}
	// INSERT with counter_data sets the initial value.
	v2 := b.VIP(0x0aff0002, 2, 1)
	v2.CounterData = &p4v1.CounterData{PacketCount: 3, ByteCount: 3}
	h.mustWrite(a, ins(v2))
	if got := h.read(directEntity(&p4v1.TableEntry{TableId: v2.TableId, Match: v2.Match})); got[0].GetDirectCounterEntry().GetData().GetPacketCount() != 3 {
		t.Errorf("initial counter = %v", got)
	}

	missing := clone(dce)
	missing.TableEntry.Match = b.VIP(7, 0, 0).Match
	codesGot := h.updateCodes(a,
		&p4v1.Update{Type: p4v1.Update_INSERT, Entity: counterEntity(dr.ID, &p4v1.Index{Index: 1})},
		&p4v1.Update{Type: p4v1.Update_DELETE, Entity: counterEntity(dr.ID, nil)},
		modCounter(&p4v1.Index{Index: pipeline.NumReasons}, &p4v1.CounterData{}),
		modCounter(&p4v1.Index{Index: -2}, &p4v1.CounterData{}),
		&p4v1.Update{Type: p4v1.Update_MODIFY, Entity: &p4v1.Entity{Entity: &p4v1.Entity_DirectCounterEntry{DirectCounterEntry: missing}}},
		&p4v1.Update{Type: p4v1.Update_INSERT, Entity: &p4v1.Entity{Entity: &p4v1.Entity_DirectCounterEntry{DirectCounterEntry: dce}}},
	)
	want := []codes.Code{codes.InvalidArgument, codes.InvalidArgument, codes.OutOfRange, codes.InvalidArgument, codes.NotFound, codes.InvalidArgument}
	for i := range want {
		if codesGot[i] != want[i] {
			t.Errorf("counter update %d: %v, want %v", i, codesGot[i], want[i])
		}
	}
}

// readOnlyCounters hides Memory's CounterWriter, like the XDP dataplane.
type readOnlyCounters struct{ dataplane.Dataplane }

func TestCounterWritesUnimplementedWithoutCounterWriter(t *testing.T) {
	h := newHarness(t, withDataplane(readOnlyCounters{dataplane.NewMemory(dataplane.Limits{})}))
	a := h.ready()
	b := h.b()
	dr, _ := b.Info.Counter("GrayIngress.drop_reasons")
	vip := b.VIP(1, 1, 1)
	withZero := clone(vip)
	withZero.CounterData = &p4v1.CounterData{}
	h.mustWrite(a, ins(withZero)) // a zero initial value needs no counter write
	v2 := b.VIP(2, 1, 1)
	v2.CounterData = &p4v1.CounterData{PacketCount: 1}
	got := h.updateCodes(a,
		&p4v1.Update{Type: p4v1.Update_MODIFY, Entity: &p4v1.Entity{Entity: &p4v1.Entity_CounterEntry{CounterEntry: &p4v1.CounterEntry{
			CounterId: dr.ID, Data: &p4v1.CounterData{}}}}},
		ins(v2))
	if got[0] != codes.Unimplemented || got[1] != codes.Unimplemented {
		t.Fatalf("counter writes without a CounterWriter: %v, want UNIMPLEMENTED", got)
	}
	// Reading still works.
	if _, err := h.readErr(counterEntity(dr.ID, nil)); err != nil {
		t.Fatal(err)
	}
	_ = status.Code
}

func testpktTCP() testpkt.L4 { return testpkt.L4{Proto: testpkt.ProtoTCP, SPort: 1, DPort: 80} }

// The IPv6 tables through P4Runtime: vip_v6, gray_rules_v6 and a
// to_backend_v6 backend are installed, read back as written (canonical 128-bit
// byte strings), count the traffic the dataplane sends through them, and go
// on DELETE.
func TestIPv6EntriesThroughP4Runtime(t *testing.T) {
	h := newHarness(t)
	a := h.ready()
	b := h.b()
	vip, vm, under := "2001:db8:ffff::1", "2001:db8:a::5", "2001:db8:2::7"
	all := p4rtest.Addr6(t, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
	vip6 := b.Entry(pipeline.TableVIPv6, 0, []p4rtest.FM{{Name: pipeline.MatchDstAddr6.Name, Value: p4rtest.Addr6(t, vip)}},
		pipeline.ActionSetVIPv6, p4rtest.P(pipeline.ParamVIPID.Name, 2), p4rtest.P(pipeline.ParamDefaultPool.Name, 1))
	rule6 := b.Entry(pipeline.TableGrayRulesV6, 10, []p4rtest.FM{{Name: pipeline.MatchInnerSrc6.Name, Value: p4rtest.Addr6(t, vm), Mask: all}},
		pipeline.ActionSetPoolV6, p4rtest.P(pipeline.ParamPoolID.Name, 2))
	backend6 := b.Entry(pipeline.TableBackend, 0, []p4rtest.FM{p4rtest.Exact(pipeline.MatchBackendID.Name, 6)},
		pipeline.ActionToBackendV6, p4rtest.P(pipeline.ParamPort.Name, 1), p4rtest.P(pipeline.ParamSMAC.Name, 2),
		p4rtest.P(pipeline.ParamDMAC.Name, 3), p4rtest.Param{Name: pipeline.ParamUnderlayIP6.Name, Value: p4rtest.Addr6(t, under)})
	ups := []*p4v1.Update{ins(vip6), ins(rule6), ins(backend6)}
	for bk := range uint64(pipeline.Buckets) {
		ups = append(ups, ins(b.Bucket(2, bk, 6)))
	}
	h.mustWrite(a, ups...)
	for _, te := range []*p4v1.TableEntry{vip6, rule6, backend6} {
		got := h.read(p4rtest.Ent(&p4v1.TableEntry{TableId: te.GetTableId(), Match: te.GetMatch(), Priority: te.GetPriority()}))
		if len(got) != 1 || !proto.Equal(got[0].GetTableEntry(), te) {
			t.Errorf("read back %v, want %v", got, te)
		}
	}
	f := testpkt.Plain6(testpkt.Eth{}, testpkt.IP6{Src: netip.MustParseAddr(vm), Dst: netip.MustParseAddr(vip)}, testpktTCP())
	if r := h.mem.Process(f); r.Verdict != model.Forward || r.BackendID != 6 {
		t.Fatalf("the VM's frame: %+v, want forwarded to backend 6", r)
	}
	for _, te := range []*p4v1.TableEntry{vip6, rule6, backend6} {
		got := h.read(directEntity(&p4v1.TableEntry{TableId: te.GetTableId(), Match: te.GetMatch(), Priority: te.GetPriority()}))
		if len(got) != 1 || got[0].GetDirectCounterEntry().GetData().GetPacketCount() != 1 {
			t.Errorf("direct counter of %v: %v, want 1 packet", te.GetTableId(), got)
		}
	}
	h.mustWrite(a, p4rtest.Del(rule6), p4rtest.Del(vip6))
	if st := h.mem.State(); len(st.VIPsV6) != 0 || len(st.GrayRulesV6) != 0 {
		t.Fatalf("after DELETE: %v %v", st.VIPsV6, st.GrayRulesV6)
	}
}
